import numpy as np
import pytest

from wmplan.data.collect_pusht import PushTPusherConfig, block_moved_fraction, scripted_pusher
from wmplan.envs.base import Task
from wmplan.envs.pusht import PushTSettings, PushTTask

# The T's stem hangs below its origin (256, 300) down to y = 420; an agent at y = 460 sits under it.
UNDER_STEM = [256.0, 460.0, 256.0, 300.0, 0.0, 0.0, 0.0]


def test_is_a_task_and_rejects_unknown_settings():
    assert isinstance(PushTTask(), Task)
    with pytest.raises(ValueError, match="unknown PushT settings"):
        PushTSettings.from_dict({"k_p": 50.0, "gravity": 9.8})
    assert PushTSettings.from_dict({"k_p": 50.0}).k_p == 50.0


def test_same_states_and_actions_give_the_same_trajectory():
    actions = np.random.default_rng(1).uniform(-1, 1, (15, 3, 2))
    runs = []
    for _ in range(2):
        task = PushTTask()
        task.reset_to(
            np.array([UNDER_STEM, [100.0, 100.0, 200.0, 200.0, 1.0, 5.0, -3.0], [400, 250, 300, 250, 3.0, 0, 0]])
        )
        runs.append(np.stack([task.step(a) for a in actions]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_direct_chipmunk_calls_match_the_public_pymunk_api(monkeypatch):
    """step() calls Chipmunk's C functions directly for speed; pymunk's wrappers must give the same."""
    from wmplan.envs import pusht

    actions = np.random.default_rng(2).uniform(-1, 1, (12, 2, 2))
    actions[:, 0] = actions[:, 0] * 0.2 + [0.0, -0.5]  # copy 0 pushes up into the stem, with a wobble
    start = np.array([UNDER_STEM, [300.0, 380.0, 250.0, 250.0, 0.7, 0.0, 0.0]])
    runs = []
    for raw in (pusht._chipmunk, None):
        monkeypatch.setattr(pusht, "_chipmunk", raw)
        task = PushTTask()
        task.reset_to(start)
        runs.append(np.stack([task.step(a) for a in actions]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.abs(runs[0][:, 0, 2:5] - start[0, 2:5]).max() > 10  # the block was pushed: contacts happened


def test_collector_is_deterministic_given_the_generator():
    cfg = PushTPusherConfig(steps=12)
    a = scripted_pusher(PushTTask(), np.random.default_rng(7), 3, cfg)
    b = scripted_pusher(PushTTask(), np.random.default_rng(7), 3, cfg)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_render_after_reset_to_equals_render_of_the_stepped_state():
    task = PushTTask()
    task.reset_to(np.array([UNDER_STEM, [300.0, 380.0, 250.0, 250.0, 0.7, 0.0, 0.0]]))
    for _ in range(6):
        task.step(np.array([[0.05, -0.5], [-0.3, -0.4]]))
    stepped_state, stepped_image = task.get_state(), task.render()
    fresh = PushTTask()
    fresh.reset_to(stepped_state)
    np.testing.assert_array_equal(fresh.render(), stepped_image)
    np.testing.assert_array_equal(fresh.render(stepped_state), stepped_image)
    assert stepped_image.dtype == np.uint8 and stepped_image.shape == (2, 64, 64, 3)


def test_reset_to_round_trips_and_sets_the_angle_before_the_position():
    state = np.array([[60.0, 60.0, 300.0, 200.0, 2.5, 0.0, 0.0], [450.0, 450.0, 150.0, 250.0, 5.9, 0.0, 0.0]])
    task = PushTTask()
    task.reset_to(state)
    np.testing.assert_array_equal(task.get_state(), state)
    # The block sits where asked inside pymunk too: setting the position before the angle would rotate the
    # block about its centre of gravity and move its origin by tens of units.
    for copy, row in zip(task._copies, state):
        np.testing.assert_allclose(tuple(copy.block.position), row[2:4], atol=1e-9)
        assert copy.block.angle == pytest.approx(row[4])
    # With the agent at rest far away, a step leaves the block exactly in place (read back from pymunk).
    after = task.step(np.zeros((2, 2)))
    np.testing.assert_allclose(after[:, 2:5], state[:, 2:5], atol=1e-9)
    np.testing.assert_allclose(after[:, :2], state[:, :2], atol=1e-9)


def test_angles_are_stored_in_zero_to_two_pi_and_compared_wrapped():
    task = PushTTask()
    task.reset_to(np.array([[60.0, 60.0, 300.0, 200.0, -0.01, 0.0, 0.0]]))
    assert task.get_state()[0, 4] == pytest.approx(2 * np.pi - 0.01)
    goal = np.array([60.0, 60.0, 300.0, 200.0, 0.01, 0.0, 0.0])
    assert task.is_success(task.get_state(), goal[None])[0]
    assert task.angle_error(task.get_state(), goal[None])[0] == pytest.approx(0.02)


def test_success_needs_both_position_and_angle():
    task = PushTTask()
    goal = np.array([[100.0, 100.0, 250.0, 250.0, 1.0, 0.0, 0.0]])
    near = goal + [[10.0, 0.0, 0.0, 10.0, 0.3, 50.0, 50.0]]  # velocity does not count
    assert task.is_success(near, goal)[0]
    assert task.distance(near, goal)[0] == pytest.approx(np.sqrt(200.0))
    assert not task.is_success(goal + [[0.0, 0.0, 25.0, 0.0, 0.0, 0.0, 0.0]], goal)[0]
    assert not task.is_success(goal + [[0.0, 0.0, 0.0, 0.0, 0.4, 0.0, 0.0]], goal)[0]


def test_sampled_goals_succeed_against_themselves_and_are_deterministic():
    task = PushTTask()
    task.reset_to(np.array([UNDER_STEM]))
    start, goal = task.sample_start_goal(np.random.default_rng(3), 12)
    again = task.sample_start_goal(np.random.default_rng(3), 12)
    np.testing.assert_array_equal(start, again[0])
    np.testing.assert_array_equal(goal, again[1])
    assert start.shape == goal.shape == (12, 7)
    assert task.is_success(goal, goal).all()
    assert not task.is_success(start, goal).all()
    np.testing.assert_array_equal(task.get_state(), [UNDER_STEM])  # its own copies are untouched


def test_pushing_moves_the_block_and_moving_away_does_not():
    task = PushTTask()
    task.reset_to(np.array([UNDER_STEM, UNDER_STEM]))
    for _ in range(10):
        state = task.step(np.array([[0.0, -0.5], [0.0, 0.5]]))  # copy 0 pushes up into the stem, 1 backs off
    assert state[0, 3] < 300.0 - 30.0  # pushed up by tens of units
    assert state[0, 1] < 420.0  # the agent went where the stem was
    np.testing.assert_allclose(state[1, 2:5], UNDER_STEM[2:5], atol=1e-9)
    # The agent's PD motion integrated in numpy is where pymunk put the body.
    for copy, row in zip(task._copies, state):
        np.testing.assert_allclose(tuple(copy.agent.position), row[:2], atol=1e-9)


def test_collector_shapes_and_most_episodes_move_the_block():
    data = scripted_pusher(PushTTask(), np.random.default_rng(0), 16, PushTPusherConfig(steps=60))
    assert data["obs"].shape == (16, 61, 64, 64, 3) and data["obs"].dtype == np.uint8
    assert data["state"].shape == (16, 61, 7) and data["proprio"].shape == (16, 61, 4)
    assert data["action"].shape == (16, 61, 2) and data["action"].dtype == np.float32
    assert np.isnan(data["action"][:, -1]).all() and np.isfinite(data["action"][:, :-1]).all()
    assert np.abs(data["action"][:, :-1]).max() <= 1.0
    np.testing.assert_array_equal(data["proprio"], data["state"][..., [0, 1, 5, 6]])
    assert block_moved_fraction(data["state"]) > 0.5


def test_block_moved_fraction_counts_shifts_and_turns():
    still = np.tile([100.0, 100.0, 250.0, 250.0, 6.2, 0.0, 0.0], (4, 5, 1))
    moved = still.copy()
    moved[0, 3, 2] += 11.0  # shifted
    moved[1, 2, 4] = 0.05  # turned 0.13 rad across the wrap
    moved[2, 4, 3] += 5.0  # too small
    assert block_moved_fraction(still) == 0.0
    assert block_moved_fraction(moved) == 0.5
    # The same episodes as a store holds them: frames concatenated, with exclusive episode ends.
    assert block_moved_fraction(moved.reshape(-1, 7), np.array([5, 10, 15, 20])) == 0.5
    assert block_moved_fraction(moved[:2].reshape(-1, 7), np.array([5, 10])) == 1.0
