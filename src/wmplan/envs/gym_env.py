"""A single-copy gymnasium view of any Task.

Observations are the rendered uint8 image (H, W, 3); `info` carries the state and proprio.
`reset(options={"state": ..., "goal": ...})` starts from a given state; with a goal, the reward is
the negative task distance and the episode terminates on success.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wmplan.envs.registry import make_task
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
        self.render_mode = render_mode
        self._goal: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "state" in options:
            state = np.asarray(options["state"], dtype=float)[None]
            goal = options.get("goal")
        else:
            state, sampled_goal = self.task.sample_start_goal(self.np_random, 1)
            goal = options.get("goal", sampled_goal[0])
        self.task.reset_to(state)
        self._goal = None if goal is None else np.asarray(goal, dtype=float)
        return self._observe()

    def step(self, action):
        self.task.step(np.asarray(action, dtype=float)[None])
        obs, info = self._observe()
        reward, terminated = 0.0, False
        if self._goal is not None:
            state = self.task.get_state()
            reward = -float(self.task.distance(state, self._goal[None])[0])
            terminated = bool(self.task.is_success(state, self._goal[None])[0])
        return obs, reward, terminated, False, info

    def render(self):
        return self.task.render()[0]

    def _observe(self):
        state = self.task.get_state()
        info = {"state": state[0].copy(), "proprio": self.task.proprio(state)[0]}
        if self._goal is not None:
            info["goal"] = self._goal.copy()
        return self.task.render()[0], info
