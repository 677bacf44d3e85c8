import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wmplan.data import collect as collect_module
from wmplan.data.collect_pointmaze import PointMazeRandomConfig, random_pointmaze
from wmplan.envs import registry
from wmplan.envs.pointmaze import PointMazeSettings, PointMazeTask

WALL_RGB = np.array([178, 128, 76])  # (0.7, 0.5, 0.3) * 255, the default wall colour
FLOOR_RGB = np.array([51, 76, 102])
POINT_RGB = np.array([76, 153, 76])


@pytest.fixture(scope="module")
def task():
    return PointMazeTask()


@pytest.fixture(scope="module")
def gl_task():
    """A task rendering with MuJoCo's OpenGL renderer, or a skip where no context can be made."""
    gl = PointMazeTask(render="mujoco")
    gl.reset_to(np.array([[0.8, 0.8, 0.0, 0.0]]))
    try:
        gl.render()
    except (RuntimeError, ImportError) as exc:
        pytest.skip(f"no OpenGL context for MuJoCo rendering (MUJOCO_GL=egl needs libEGL): {exc}")
    return gl


def _point_centroid(image: np.ndarray) -> np.ndarray:
    """(column, row) centroid of the pixels nearest in colour to the point marker."""
    colours = np.stack([FLOOR_RGB, WALL_RGB, POINT_RGB])
    nearest = np.argmin(np.abs(image[..., None, :].astype(int) - colours).sum(-1), axis=-1)
    rows, cols = np.nonzero(nearest == 2)
    return np.array([cols.mean(), rows.mean()])


def test_settings_reject_unknown_keys_and_round_trip(task):
    with pytest.raises(ValueError, match="unknown PointMaze settings"):
        PointMazeSettings.from_dict({"gravity": 9.8})
    with pytest.raises(ValueError, match="render"):
        PointMazeSettings.from_dict({"render": "opengl"})
    assert PointMazeSettings.from_dict(task.settings) == task.config


def test_same_seed_same_trajectory():
    cfg = PointMazeRandomConfig(steps=30)
    a = random_pointmaze(PointMazeTask(), np.random.default_rng(5), 6, cfg)
    b = random_pointmaze(PointMazeTask(), np.random.default_rng(5), 6, cfg)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = random_pointmaze(PointMazeTask(), np.random.default_rng(6), 6, cfg)
    assert not np.allclose(a["state"], c["state"])


def test_a_step_depends_only_on_state_and_action(task):
    """reset_to(get_state()) before each step continues the trajectory exactly (no hidden solver state)."""
    starts, _ = task.sample_start_goal(np.random.default_rng(3), 8)
    actions = np.random.default_rng(4).uniform(-1, 1, (40, 8, 2))
    other = PointMazeTask()
    task.reset_to(starts)
    other.reset_to(starts)
    for a in actions:
        through = task.step(a)
        other.reset_to(other.get_state())
        np.testing.assert_array_equal(other.step(a), through)


def test_reset_to_renders_like_the_state_reached_by_stepping(task):
    task.reset_to(np.array([[0.8, 0.8, 0.0, 0.0], [2.8, 2.8, 1.0, -2.0]]))
    for _ in range(7):
        task.step(np.array([[1.0, 0.6], [-0.5, -1.0]]))
    reached, image = task.get_state(), task.render()
    fresh = PointMazeTask()
    fresh.reset_to(reached)
    np.testing.assert_array_equal(fresh.render(), image)
    np.testing.assert_array_equal(fresh.get_state(), reached)


def test_image_shows_the_u_maze_from_above_with_x_right_and_y_up(task):
    image = task.render(np.array([[2.8, 2.8, 0.0, 0.0]]))[0]  # the point in the top-right free cell
    size = task.image_size
    for (row, col), wall in np.ndenumerate(task.geometry.walls):  # layout row = world x, column = world y
        u, v = task.geometry.to_pixels(np.array([[row + 1 - 1.2, col + 1 - 1.2]]), size)[0].astype(int)
        expected = WALL_RGB if wall else (POINT_RGB if (row, col) == (3, 3) else FLOOR_RGB)
        np.testing.assert_allclose(image[v, u], expected, atol=2, err_msg=f"cell {(row, col)}")
    u, v = task.geometry.to_pixels(np.array([[2.8, 2.8]]), size)[0]
    assert u > size / 2 and v < size / 2  # larger x is further right, larger y further up
    np.testing.assert_allclose(_point_centroid(image), [u - 0.5, v - 0.5], atol=0.3)


@pytest.mark.parametrize("push", [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)])
def test_walls_stop_the_point_mass(task, push):
    """Pushed at full force for 300 steps from every free cell, no mass ever enters a wall: its centre
    stays out of every wall block, and soft contacts let it overlap a wall by less than 90% of its radius."""
    centres = task.free_cell_centres()
    task.reset_to(np.concatenate([centres, np.zeros_like(centres)], axis=1))
    action = np.tile(np.array(push, dtype=float), (len(centres), 1))
    for _ in range(300):
        state = task.step(action)
        assert task.geometry.clearance(state).min() > 0.1 * task.config.point_radius
    # Each mass ends pressed against a wall in the push direction: at rest, one radius from it.
    np.testing.assert_allclose(task.geometry.clearance(state), task.config.point_radius, atol=0.01)
    assert np.abs(state[:, 2:]).max() < 0.05


@settings(max_examples=25, deadline=None)
@given(
    start=st.integers(0, 6),
    actions=st.lists(
        st.tuples(st.sampled_from([-1.0, 0.0, 1.0]), st.sampled_from([-1.0, 0.0, 1.0])), min_size=1, max_size=80
    ),
    repeat=st.integers(1, 10),
)
def test_no_bang_bang_sequence_enters_a_wall(start, actions, repeat):
    task = PointMazeTask()
    centre = task.free_cell_centres()[start]
    task.reset_to(np.array([[*centre, 0.0, 0.0]]))
    for a in actions:
        for _ in range(repeat):
            state = task.step(np.array([a]))
            assert task.geometry.clearance(state)[0] > 0.1 * task.config.point_radius


def test_actions_are_clipped(task):
    task.reset_to(np.array([[0.8, 0.8, 0.0, 0.0], [0.8, 0.8, 0.0, 0.0]]))
    state = task.step(np.array([[1.0, 1.0], [50.0, 50.0]]))
    np.testing.assert_array_equal(state[0], state[1])


def test_reset_to_inside_a_wall_raises(task):
    with pytest.raises(ValueError, match="inside a wall"):
        task.reset_to(np.array([[1.8, 1.0, 0.0, 0.0]]))  # the U's inner wall block
    with pytest.raises(ValueError, match="outside the maze"):
        task.reset_to(np.array([[-3.0, 0.8, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        task.reset_to(np.zeros((2, 2)))


def test_success_and_distance(task):
    states = np.array([[0.8, 0.8, 1.0, 2.0], [2.8, 2.8, 0.0, 0.0]])
    np.testing.assert_array_equal(task.is_success(states, states), [True, True])
    goal = np.array([[0.8, 0.8, 0.0, 0.0]])
    near = np.array([[0.8 + 0.49, 0.8, 3.0, 3.0], [0.8, 0.8 + 0.51, 0.0, 0.0]])
    np.testing.assert_allclose(task.distance(near, goal), [0.49, 0.51])
    np.testing.assert_array_equal(task.is_success(near, goal), [True, False])  # velocities do not count


def test_sample_start_goal_is_seeded_free_at_rest_and_in_different_cells(task):
    s1, g1 = task.sample_start_goal(np.random.default_rng(7), 500)
    s2, g2 = task.sample_start_goal(np.random.default_rng(7), 500)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(g1, g2)
    for points in (s1, g1):
        assert points.shape == (500, 4) and np.all(points[:, 2:] == 0)
        assert task.geometry.clearance(points).min() >= task.config.spawn_clearance
        cells = {tuple(c) for c in task.geometry.cell_of(points)}
        assert cells == {tuple(c) for c in task.geometry.free_cells}  # every free cell is used
    assert np.all(np.any(task.geometry.cell_of(s1) != task.geometry.cell_of(g1), axis=1))
    assert not task.is_success(s1, g1).any()


def test_collector_shapes_nan_last_action_and_travel():
    task = PointMazeTask()
    data = random_pointmaze(task, np.random.default_rng(0), 16, PointMazeRandomConfig())
    assert data["obs"].shape == (16, 101, 64, 64, 3) and data["obs"].dtype == np.uint8
    for key, width in (("state", 4), ("proprio", 4), ("action", 2)):
        assert data[key].shape == (16, 101, width) and data[key].dtype == np.float32
    assert np.isnan(data["action"][:, -1]).all() and np.isfinite(data["action"][:, :-1]).all()
    assert np.abs(data["action"][:, :-1]).max() <= 1.0
    np.testing.assert_array_equal(data["proprio"], data["state"])
    np.testing.assert_array_equal(data["state"][:, 0, 2:], 0.0)  # starts at rest
    np.testing.assert_array_equal(data["obs"][:, 50], task.render(data["state"][:, 50]))
    path = np.linalg.norm(np.diff(data["state"][..., :2], axis=1), axis=-1).sum(axis=1)
    assert np.median(path) > 2.0  # the mass travels (more than two cells) instead of jittering in place
    lag1 = np.corrcoef(data["action"][:, 1:-1, 0].ravel(), data["action"][:, :-2, 0].ravel())[0, 1]
    assert 0.3 < lag1 < 0.7  # correlated as configured (0.5 before clipping)
    assert task.geometry.clearance(data["state"].reshape(-1, 4)).min() > 0


def test_collect_writes_a_store_and_the_gymnasium_view_works(tmp_path):
    store = collect_module.collect(
        "pointmaze", tmp_path / "pm", episodes=5, seed=1, batch=4, progress=False, collector_settings={"steps": 12}
    )
    assert store.n_episodes == 5 and store.read("obs").shape == (65, 64, 64, 3)
    assert registry.make_task("pointmaze", store.task_settings).config == PointMazeSettings()

    from wmplan.envs.gym_env import TaskEnv

    env = TaskEnv(task="pointmaze")
    obs, info = env.reset(options={"state": [0.8, 0.8, 0.0, 0.0], "goal": [0.9, 0.8, 0.0, 0.0]})
    assert obs.shape == (64, 64, 3)
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert info["state"][0] > 0.8 and terminated


def test_numpy_and_mujoco_renders_agree(task, gl_task):
    states, _ = task.sample_start_goal(np.random.default_rng(11), 24)
    states[:4, :2] = [[0.5, 0.5], [3.1, 3.1], [1.3, 2.6], [0.5, 3.1]]  # against walls and in corners
    drawn, rendered = task.render(states), gl_task.render(states)
    assert rendered.shape == drawn.shape and rendered.dtype == np.uint8
    diff = np.abs(drawn.astype(int) - rendered.astype(int)).sum(axis=-1)
    assert diff.mean() < 3.0  # same colours on the same pixels ...
    assert (diff > 60).mean() < 0.005  # ... except a few anti-aliased edge pixels
    for a, b in zip(drawn, rendered):
        np.testing.assert_allclose(_point_centroid(a), _point_centroid(b), atol=1.0)  # within a pixel


def test_mujoco_render_of_a_reset_state_matches_the_stepped_one(gl_task):
    gl_task.reset_to(np.array([[0.8, 0.8, 0.0, 0.0]]))
    for _ in range(10):
        gl_task.step(np.array([[0.7, 1.0]]))
    image = gl_task.render()
    gl_task.reset_to(gl_task.get_state())
    np.testing.assert_array_equal(gl_task.render(), image)
