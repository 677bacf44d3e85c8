import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wmplan.envs  # noqa: F401  (registers the gymnasium ids)
from wmplan.envs.wall import WallTask


def test_step_moves_by_twice_the_action_in_free_space():
    task = WallTask()
    task.reset_to(np.array([[12.0, 20.0], [45.0, 45.0]]))
    new = task.step(np.array([[0.5, -0.25], [-1.0, 1.0]]))
    np.testing.assert_allclose(new, [[13.0, 19.5], [43.0, 47.0]])


def test_wall_blocks_outside_the_door_and_passes_through_it():
    task = WallTask()
    b = task._bounds(task.default_layout(1))
    # Far from the door (y = 12): pushing right stops on the wall's left face.
    task.reset_to(np.array([[20.0, 12.0]]))
    for _ in range(20):
        task.step(np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(task.get_state(), [[b["band_lo"][0], 12.0]])
    # At the door's height: the same push crosses to the other side.
    task.reset_to(np.array([[20.0, 32.0]]))
    for _ in range(20):
        task.step(np.array([[1.0, 0.0]]))
    assert task.get_state()[0, 0] > b["band_hi"][0]
    assert task.side(task.get_state())[0] == 1


def test_arena_border_keeps_the_dot_inside():
    task = WallTask()
    task.reset_to(np.array([[10.0, 10.0]]))
    for _ in range(30):
        task.step(np.array([[-1.0, -1.0]]))
    lo = task._bounds(task.default_layout(1))["lo"]
    np.testing.assert_allclose(task.get_state(), [[lo, lo]])


@settings(max_examples=60, deadline=None)
@given(
    start_y=st.floats(8.0, 56.0),
    start_left=st.booleans(),
    actions=st.lists(st.tuples(st.floats(-1.4, 1.4), st.floats(-1.4, 1.4)), min_size=1, max_size=60),
)
def test_no_action_sequence_crosses_the_wall_outside_the_door(start_y, start_left, actions):
    """Moves are at most 2 * 1.4 * sqrt(2) < 4 px, thinner than the wall band: any change of side
    must pass through a position inside the band, and every such position must be in the door."""
    task = WallTask()
    task.reset_to(np.array([[12.0 if start_left else 52.0, start_y]]))
    b = task._bounds(task.default_layout(1))
    side = task.side(task.get_state())[0]
    for a in actions:
        state = task.step(np.array([a]))
        assert not task.in_solid(state)[0]
        new_side = task.side(state)[0]
        assert not (side * new_side == -1), "jumped from one side to the other in one step"
        if new_side == 0:
            assert b["door_lo"][0] <= state[0, 1] <= b["door_hi"][0]
        side = new_side


@settings(max_examples=40, deadline=None)
@given(actions=st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=1, max_size=20))
def test_huge_actions_never_enter_a_solid(actions):
    task = WallTask()
    task.reset_to(np.array([[12.0, 12.0]]))
    for a in actions:
        assert not task.in_solid(task.step(np.array([a])))[0]


def test_reset_to_inside_the_wall_or_outside_the_arena_raises():
    task = WallTask()
    with pytest.raises(ValueError, match="inside the wall"):
        task.reset_to(np.array([[32.0, 10.0]]))
    with pytest.raises(ValueError, match="outside the arena"):
        task.reset_to(np.array([[2.0, 30.0]]))
    task.reset_to(np.array([[32.0, 32.0]]))  # the door itself is free


def test_is_success_threshold():
    task = WallTask()
    goal = np.array([[20.0, 20.0], [20.0, 20.0]])
    state = np.array([[24.4, 20.0], [24.6, 20.0]])
    np.testing.assert_array_equal(task.is_success(state, goal), [True, False])


def test_sample_start_goal_is_seeded_opposite_sides_and_reachable():
    task = WallTask()
    s1, g1 = task.sample_start_goal(np.random.default_rng(7), 200)
    s2, g2 = task.sample_start_goal(np.random.default_rng(7), 200)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(g1, g2)
    assert np.all(task.side(s1) * task.side(g1) == -1)
    assert 0.3 < np.mean(task.side(s1) == -1) < 0.7  # either side first
    assert np.all(task.path_length(s1, g1) <= task.config.goal_max_path)
    # reachable within 25 env steps of the largest action in bounds (2 * sqrt(2) px per step)
    assert np.all(task.path_length(s1, g1) <= 25 * 2 * np.sqrt(2))


def test_render_is_batched_and_matches_single_renders():
    task = WallTask()
    states = np.array([[12.0, 12.0], [40.5, 33.25], [32.0, 32.0]])
    batch = task.render(states)
    assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.uint8
    for i, s in enumerate(states):
        np.testing.assert_array_equal(batch[i], task.render(s[None])[0])
    # the dot's brightest pixel sits at its position (x = column, y = row)
    row, col = np.unravel_index(np.argmax(batch[1, ..., 0] * (batch[1, ..., 1] == 0)), (64, 64))
    assert (col, row) == (40, 33) or (col, row) == (41, 33)


def test_random_layouts_are_drawn_per_copy_and_rendered():
    task = WallTask(random_layout=True)
    layout = task.sample_layout(np.random.default_rng(0), 8)
    assert len(np.unique(layout[:, 0])) > 1
    task.reset_to(np.full((8, 2), 8.0), layout)
    images = task.render()
    grey_cols = [np.flatnonzero(img[8, 6:58, 1] == 150)[0] + 6 for img in images]  # the wall's first column
    np.testing.assert_array_equal(grey_cols, layout[:, 0].astype(int) - task.config.wall_width // 2)


def test_gymnasium_registration_and_reset_to_state():
    env = gymnasium.make("wmplan/Wall-v0")
    obs, info = env.reset(options={"state": [15.0, 20.0], "goal": [16.0, 20.0]})
    assert obs.shape == (64, 64, 3)
    np.testing.assert_allclose(info["state"], [15.0, 20.0])
    obs, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0], dtype=np.float32))
    np.testing.assert_allclose(info["state"], [16.0, 20.0])
    assert terminated and reward == 0.0
