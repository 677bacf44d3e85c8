"""A single-copy gymnasium view of any Task.

Observations are the rendered uint8 image (H, W, 3); `info` carries the state and proprio.
`reset(options={"state": ..., "goal": ...})` starts from a given state; with a goal, the reward is
the negative task distance and the episode terminates on success.

Goals: an episode has one when reset is given `options["goal"]`, or when reset samples the start (then the
goal comes with it, by the task's evaluation protocol). The info of that reset and of every step then holds
`info["goal"]`, the goal state (S,), and `info["goal_image"]`, the goal drawn as an observation is
(uint8 (H, W, 3), the same renderer, in the copy's own arena): what image-goal planners (DINO-WM's) compare
against. It is rendered once per episode; each info holds its own copy (gymnasium's checker asks that no
two infos share an object, since callers keep them).

Inputs:
- an action outside `action_space` (the task's bounds) is clipped onto it, coordinate by coordinate,
  before the simulator steps: a step costs the same whatever the action's size, and an action inside
  the space reaches the simulator unchanged;
- an action, a state or a goal with a NaN or infinite entry, or of the wrong shape, is refused with a
  ValueError that names the value and the space it must lie in (`action_space`, or `state_space` for
  states and goals: finite vectors of the task's state size; the task checks where a state may lie).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wmplan.envs.registry import make_task
from wmplan.gymnasium_ids import gym_id
from wmplan.tasks import task_spec


class TaskEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str = "wall", settings: dict[str, Any] | None = None, render_mode: str | None = None):
        self.task = make_task(task, settings)
        self.metadata = {**TaskEnv.metadata, "render_fps": task_spec(task).render_fps}
        size = self.task.image_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)
        self.action_space = gym.spaces.Box(
            self.task.action_low.astype(np.float32), self.task.action_high.astype(np.float32)
        )
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (self.task.state_dim,), dtype=np.float64)
        self.render_mode = render_mode
        self._name = gym_id(task)
        self._goal: np.ndarray | None = None
        self._goal_image: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "state" in options:
            state = self._checked(options["state"], self.state_space, "state")[None]
            goal = options.get("goal")
        else:
            state, sampled_goal = self.task.sample_start_goal(self.np_random, 1)
            goal = options.get("goal", sampled_goal[0])
        goal = None if goal is None else self._checked(goal, self.state_space, "goal")  # checked before any change
        self.task.reset_to(state)
        self._goal = goal
        self._goal_image = None if goal is None else goal_images(self.task, goal[None])[0]
        return self._observe()

    def step(self, action):
        action = self._checked(action, self.action_space, "action")
        # Clipped, not refused: gymnasium's convention for a Box, and a bounded move keeps a step's cost
        # constant (Wall splits a long move into pieces of a few pixels; PushT's PD target would leave the world).
        self.task.step(np.clip(action, self.task.action_low, self.task.action_high)[None])
        obs, info = self._observe()
        reward, terminated = 0.0, False
        if self._goal is not None:
            state = self.task.get_state()
            reward = -float(self.task.distance(state, self._goal[None])[0])
            terminated = bool(self.task.is_success(state, self._goal[None])[0])
        return obs, reward, terminated, False, info

    def render(self):
        return self.task.render()[0]

    def _checked(self, value: Any, space: gym.spaces.Box, what: str) -> np.ndarray:
        return checked(self._name, value, space, what)

    def _observe(self):
        state = self.task.get_state()
        info = {"state": state[0].copy(), "proprio": self.task.proprio(state)[0]}
        if self._goal is not None:
            info["goal"] = self._goal.copy()
            info["goal_image"] = self._goal_image.copy()
        return self.task.render()[0], info


def goal_images(task, goals: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3): goals (N, S) drawn as observations, by the task's renderer in the arenas of its N
    copies (Wall's layouts), so call it after `reset_to` placed those copies."""
    return task.render(goals)


def checked(env_name: str, value: Any, space: gym.spaces.Box, what: str) -> np.ndarray:
    """`value` as a float64 array of the space's shape with only finite entries, else a ValueError
    naming the env, the value and the space."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{env_name}: {what} {value!r} is not numeric; it must lie in {space}") from None
    if array.shape != space.shape:
        raise ValueError(f"{env_name}: {what} {_show(array)} has shape {array.shape}; it must lie in {space}")
    bad = [str(i[0]) if len(i) == 1 else str(tuple(i)) for i in np.argwhere(~np.isfinite(array)).tolist()]
    if bad:
        raise ValueError(
            f"{env_name}: {what} {_show(array)} is not finite (at index {', '.join(bad[:5])}"
            f"{', ...' if len(bad) > 5 else ''}); it must lie in {space}"
        )
    return array


def _show(array: np.ndarray) -> str:
    """A value on one line, [1, nan, 0.5], long ones (a Granular state has 400 numbers) shortened."""
    values = [f"{v:.6g}" for v in array.ravel().tolist()]
    return "[" + ", ".join(values if len(values) <= 8 else [*values[:3], "...", *values[-3:]]) + "]"
