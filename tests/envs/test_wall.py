import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wmplan.envs  # noqa: F401  (registers the gymnasium ids)
from wmplan.envs.wall import WallSettings, WallTask

# DINO-WM's default arena: frame lines at 4 and 60, wall columns 29-35, door rows 26-34.
WALL_L, WALL_R, DOOR_LO, DOOR_HI, FRAME_LO, FRAME_HI = 29, 35, 26, 34, 4, 60


def test_step_moves_by_twice_the_action_in_free_space():
    task = WallTask()
    task.reset_to(np.array([[12.0, 20.0], [45.0, 45.0]]))
    new = task.step(np.array([[0.5, -0.25], [-1.0, 1.0]]))
    np.testing.assert_allclose(new, [[13.0, 19.5], [43.0, 47.0]])


def test_a_push_into_the_wall_stops_backs_off_and_drifts_half_a_pixel_along_it_per_step():
    task = WallTask()
    task.reset_to(np.array([[24.0, 12.0], [40.0, 50.0]]))
    path = [task.step(np.array([[1.0, 0.0], [-1.0, 0.0]])) for _ in range(6)]
    left, right = np.array([p[0] for p in path]), np.array([p[1] for p in path])
    # left dot: 26, 28, then it hits the face at x = 29, backs off to 28.5 and moves down by 0.5 each push
    np.testing.assert_allclose(left, [[26, 12], [28, 12], [28.5, 12.5], [28.5, 13], [28.5, 13.5], [28.5, 14]])
    np.testing.assert_allclose(right[2:], [[35.5, 50.5], [35.5, 51], [35.5, 51.5], [35.5, 52]])


def test_the_frame_stops_the_dot_the_same_way():
    task = WallTask()
    task.reset_to(np.array([[10.0, 5.0]]))
    np.testing.assert_allclose(task.step(np.array([[0.0, -1.0]])), [[10.5, 4.5]])  # hits y = 4, bounces


def test_a_vertical_move_from_the_door_never_enters_the_wall():
    """DINO-WM's slope-based hit test divides by a zero x step here and lets the dot into the wall."""
    task = WallTask()
    for x in (29.0, 30.0, 32.0, 34.0, 35.0):
        for direction, edge in ((1.0, DOOR_HI), (-1.0, DOOR_LO)):
            task.reset_to(np.array([[x, edge - direction]]))  # 1 px inside the door from its edge
            np.testing.assert_allclose(task.step(np.array([[0.0, direction]])), [[x + 0.5, edge - direction * 0.5]])
            for _ in range(6):  # pushing on drifts +x along the edge, out of the door at last: never in the wall
                assert not task.in_solid(task.step(np.array([[0.0, direction]])))[0]


def test_a_vertical_move_into_the_frame_stays_finite():
    """The same zero step makes DINO-WM's dot NaN at the frame."""
    task = WallTask()
    task.reset_to(np.array([[10.0, 58.5]]))
    state = task.step(np.array([[0.0, 1.0]]))
    assert np.isfinite(state).all() and state[0, 1] == FRAME_HI - 0.5


def test_the_door_lets_the_dot_through():
    task = WallTask()
    task.reset_to(np.array([[20.0, 30.0]]))
    for _ in range(12):
        task.step(np.array([[1.0, 0.0]]))
    assert task.side(task.get_state())[0] == 1


@settings(max_examples=60, deadline=None)
@given(
    start_y=st.floats(8.0, 56.0),
    start_left=st.booleans(),
    actions=st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)), min_size=1, max_size=60),
)
def test_no_action_sequence_crosses_the_wall_outside_the_door(start_y, start_left, actions):
    """A move is at most 2 sqrt(2) < 7 px, the wall's width: any change of side passes through a
    position inside the wall's columns, and every such position must be in the door."""
    task = WallTask()
    task.reset_to(np.array([[12.0 if start_left else 52.0, start_y]]))
    side = task.side(task.get_state())[0]
    for a in actions:
        state = task.step(np.array([a]))
        assert not task.in_solid(state)[0]
        new_side = task.side(state)[0]
        assert not (side * new_side == -1), "jumped from one side to the other in one step"
        if new_side == 0:
            assert DOOR_LO <= state[0, 1] <= DOOR_HI
        side = new_side


@settings(max_examples=40, deadline=None)
@given(actions=st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=1, max_size=20))
def test_huge_actions_never_enter_a_solid(actions):
    task = WallTask()
    task.reset_to(np.array([[12.0, 12.0]]))
    for a in actions:
        assert not task.in_solid(task.step(np.array([a])))[0]


def test_a_batch_steps_each_dot_as_if_alone():
    task = WallTask()
    starts = np.array([[12.0, 12.0], [27.5, 40.0], [33.0, 30.0]])
    actions = np.array([[9.0, 0.3], [1.0, 0.2], [-0.1, 1.0]])  # the first is split into pieces
    task.reset_to(starts)
    batch = task.step(actions)
    for s, a, b in zip(starts, actions, batch):
        task.reset_to(s[None])
        np.testing.assert_array_equal(task.step(a[None])[0], b)


def test_reset_to_inside_the_wall_or_outside_the_arena_raises():
    task = WallTask()
    with pytest.raises(ValueError, match="inside the wall"):
        task.reset_to(np.array([[32.0, 10.0]]))
    with pytest.raises(ValueError, match="outside the arena"):
        task.reset_to(np.array([[3.0, 30.0]]))
    task.reset_to(np.array([[32.0, 30.0]]))  # the door itself is free


def test_is_success_threshold():
    task = WallTask()
    goal = np.array([[20.0, 20.0], [20.0, 20.0]])
    state = np.array([[24.4, 20.0], [24.6, 20.0]])
    np.testing.assert_array_equal(task.is_success(state, goal), [True, False])


def test_pairs_are_seeded_on_opposite_sides_and_keep_two_dot_stds_from_solids():
    task = WallTask()
    s1, g1 = task.sample_start_goal(np.random.default_rng(7), 2000)
    s2, g2 = task.sample_start_goal(np.random.default_rng(7), 2000)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(g1, g2)
    assert np.all(task.side(s1) * task.side(g1) == -1)
    assert 0.45 < np.mean(task.side(s1) == -1) < 0.55  # either side first
    both = np.concatenate([s1, g1])
    pad = 2 * task.config.dot_std
    assert both.min() >= FRAME_LO + pad and both.max() <= FRAME_HI - pad
    x = both[:, 0]
    assert np.all((x <= WALL_L - pad) | (x >= WALL_R + pad))
    # no cap on the path: some pairs lie near opposite corners
    assert np.linalg.norm(s1 - g1, axis=1).max() > 60


def test_render_matches_dino_wm_colours_and_is_batched():
    task = WallTask()
    states = np.array([[12.0, 12.0], [40.5, 33.25], [32.0, 30.0]])
    batch = task.render(states)
    assert batch.shape == (3, 65, 65, 3) and batch.dtype == np.uint8
    for i, s in enumerate(states):
        np.testing.assert_array_equal(batch[i], task.render(s[None])[0])
    img = batch[0]
    np.testing.assert_array_equal(img[50, 20], [255, 255, 255])  # floor
    np.testing.assert_array_equal(img[10, WALL_L], [0, 0, 0])  # wall
    np.testing.assert_array_equal(img[DOOR_LO, WALL_L], [255, 255, 255])  # door
    np.testing.assert_array_equal(img[FRAME_LO, 20], [0, 0, 0])  # frame line ...
    np.testing.assert_array_equal(img[FRAME_LO + 1, 20], [255, 255, 255])  # ... one pixel thick
    np.testing.assert_array_equal(img[12, 12], [255, 0, 0])  # the dot's brightest pixel is pure red
    assert 0 < img[12, 14, 1] < 255 and img[12, 14, 0] == 255  # and fades into the floor
    # a dot between pixels still peaks at 255 at its nearest pixel (x = column, y = row)
    np.testing.assert_array_equal(batch[1, 33, 40], [255, 0, 0])


def test_random_layouts_are_drawn_per_copy_and_rendered():
    task = WallTask(random_layout=True)
    layout = task.sample_layout(np.random.default_rng(0), 8)
    assert len(np.unique(layout[:, 0])) > 1
    task.reset_to(np.full((8, 2), 8.0), layout)
    images = task.render()
    row = 8  # above every door
    black_cols = [np.flatnonzero(img[row, 6:58, 0] == 0)[0] + 6 for img in images]  # the wall's first column
    np.testing.assert_array_equal(black_cols, layout[:, 0].astype(int) - task.config.wall_half_width)


def test_settings_of_the_earlier_rules_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="earlier Wall rules.*collect the dataset again"):
        WallSettings.from_dict({"image_size": 64, "dot_radius": 1.5, "door_height": 12})


def test_settings_that_leave_no_room_are_refused():
    with pytest.raises(ValueError, match="wall_x"):
        WallSettings(wall_x=8).check()
    with pytest.raises(ValueError, match="door"):
        WallSettings(door_y=58).check()


def test_gymnasium_registration_and_reset_to_state():
    env = gymnasium.make("wmplan/Wall-v0")
    obs, info = env.reset(options={"state": [15.0, 20.0], "goal": [16.0, 20.0]})
    assert obs.shape == (65, 65, 3)
    np.testing.assert_allclose(info["state"], [15.0, 20.0])
    obs, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0], dtype=np.float32))
    np.testing.assert_allclose(info["state"], [16.0, 20.0])
    assert terminated and reward == 0.0


def test_pair_kinds_say_whether_the_straight_line_passes_the_door():
    task = WallTask()
    c = task.config
    left, right = c.wall_x - c.wall_half_width - 6.0, c.wall_x + c.wall_half_width + 6.0
    start = np.array([[left, c.door_y], [left, 10.0], [left, c.door_y - 3.0], [right, c.door_y + 1.0]])
    # straight through the door; far below it; entering inside the door but leaving above it; from the right
    goal = np.array([[right, c.door_y], [right, 50.0], [right, c.door_y + 12.0], [left, c.door_y - 1.0]])
    assert task.pair_kinds(start, goal).tolist() == ["direct", "detour", "detour", "direct"]


def test_a_huge_move_is_cut_to_the_longest_one_and_a_non_finite_one_is_refused():
    from wmplan.envs.wall import MAX_PIECE_PX, MAX_PIECES

    start = np.array([[15.0, 20.0]])
    longest = MAX_PIECES * MAX_PIECE_PX / WallTask().config.action_scale  # the longest action not cut

    def after(action):
        task = WallTask()
        task.reset_to(start)
        return task.step(np.array([action]))

    for huge in (1e6, 1e19, 1e30):  # 1e19 once overflowed the piece count and left the dot in place
        np.testing.assert_array_equal(after([huge, 0.0]), after([longest, 0.0]))
    assert not np.array_equal(after([1e30, 0.0]), start)
    np.testing.assert_array_equal(after([1.0, 0.5]), after([1.0, 0.5]))  # an ordinary move is not touched
    with pytest.raises(ValueError, match="action contains NaN or Inf values"):
        after([np.nan, 0.0])
