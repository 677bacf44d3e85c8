"""The gymnasium view's input rules, for every task through the id `import wmplan` registers: an action
outside the action space is clipped onto it (an action inside it reaches the simulator unchanged), and a
non-finite action, goal or state is refused with a ValueError naming the value and the space."""

import re

import gymnasium
import numpy as np
import pytest

import wmplan  # noqa: F401  (registers the gymnasium ids)
from wmplan.envs import make_task
from wmplan.gymnasium_ids import gym_id
from wmplan.tasks import task_names

ALL_TASKS = task_names()


def _env_and_pair(task: str):
    """The task's env and one evaluation (start, goal) pair of its own."""
    env = gymnasium.make(gym_id(task))
    start, goal = env.unwrapped.task.sample_start_goal(np.random.default_rng(0), 1)
    return env, start[0], goal[0]


def _state_after(env, start: np.ndarray, action) -> np.ndarray:
    env.reset(options={"state": start})
    return env.step(action)[4]["state"]


@pytest.mark.parametrize("task", ALL_TASKS)
def test_an_action_outside_the_space_steps_as_the_clipped_action(task):
    env, start, _ = _env_and_pair(task)
    space = env.action_space
    # Far outside (a Wall move this long once overflowed the count of its pieces and left the dot in
    # place) and a little outside; its clipped form is the space's corner (high, low, high, ...).
    big = np.where(np.arange(space.shape[0]) % 2 == 0, 1e30, -3.0)
    clipped = np.clip(big, space.low, space.high)
    assert not space.contains(big.astype(np.float32)) and space.contains(clipped.astype(np.float32))
    np.testing.assert_array_equal(_state_after(env, start, big), _state_after(env, start, clipped))


@pytest.mark.parametrize("task", ALL_TASKS)
def test_an_action_inside_the_space_reaches_the_simulator_unchanged(task):
    env, start, _ = _env_and_pair(task)
    action = np.random.default_rng(1).uniform(env.action_space.low, env.action_space.high)
    batched = make_task(task)  # the simulator evaluation steps, batched over episodes
    batched.reset_to(start[None])
    np.testing.assert_array_equal(_state_after(env, start, action), batched.step(action[None])[0])


@pytest.mark.parametrize("task", ALL_TASKS)
def test_a_non_finite_action_is_refused_naming_it_and_the_space(task):
    env, start, _ = _env_and_pair(task)
    env.reset(options={"state": start})
    for bad in (np.nan, np.inf):
        action = np.zeros(env.action_space.shape)
        action[-1] = bad
        with pytest.raises(ValueError, match=rf"action \[.*{bad}\].* not finite .*{_escaped(env.action_space)}"):
            env.step(action)
    np.testing.assert_array_equal(env.unwrapped.task.get_state()[0], start)  # nothing stepped


@pytest.mark.parametrize("task", ALL_TASKS)
def test_a_non_finite_goal_is_refused_naming_it_and_the_space(task):
    env, start, goal = _env_and_pair(task)
    env.reset(options={"state": start, "goal": goal})
    bad_goal = goal.copy()
    bad_goal[0] = np.nan
    space = _escaped(env.unwrapped.state_space)
    for options in ({"state": start, "goal": bad_goal}, {"goal": bad_goal}):  # a given start, or a sampled one
        with pytest.raises(ValueError, match=rf"goal \[nan.* not finite \(at index 0\); .*{space}"):
            env.reset(options=options)
    np.testing.assert_array_equal(env.unwrapped._goal, goal)  # the episode under way keeps its goal


@pytest.mark.parametrize("task", ALL_TASKS)
def test_a_non_finite_state_is_refused_naming_it_and_the_space(task):
    env, start, _ = _env_and_pair(task)
    bad_state = start.copy()
    bad_state[-1] = -np.inf
    space = _escaped(env.unwrapped.state_space)
    with pytest.raises(ValueError, match=rf"state \[.*-inf\] is not finite .*{space}"):
        env.reset(options={"state": bad_state})
    with pytest.raises(ValueError, match=rf"state .* has shape \(1,\); .*{space}"):
        env.reset(options={"state": start[:1]})


def _escaped(space) -> str:
    return re.escape(str(space))


@pytest.mark.parametrize("task", ALL_TASKS)
def test_the_goal_image_is_the_observation_at_the_goal_in_every_info_of_the_episode(task):
    env, start, goal = _env_and_pair(task)
    at_goal, _ = env.reset(options={"state": goal})  # what the copy shows once it stands at the goal
    for options in ({"state": start, "goal": goal}, {"goal": goal}):  # a given start, or a sampled one
        _, info = env.reset(options=options)
        assert info["goal_image"].dtype == np.uint8
        np.testing.assert_array_equal(info["goal_image"], at_goal)
        np.testing.assert_array_equal(info["goal"], goal)
        info["goal_image"][:] = 0  # a caller's own copy: drawing on it changes no later info
        np.testing.assert_array_equal(env.step(np.zeros(env.action_space.shape))[4]["goal_image"], at_goal)
    _, info = env.reset(seed=0)  # a sampled goal has its image too
    np.testing.assert_array_equal(info["goal_image"], env.reset(options={"state": info["goal"]})[0])
    assert "goal_image" not in env.reset(options={"state": start})[1]  # no goal, no image
