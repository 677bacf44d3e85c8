"""A gymnasium vector env of num_envs copies of a Task, stepped as one batch by one simulator.

`gymnasium.make_vec("wmplan/Wall-v0", num_envs=8)` returns it (each id names it as its `vector_entry_point`;
`vectorization_mode="sync"` still gives gymnasium's SyncVectorEnv of TaskEnv copies). Each copy follows
TaskEnv's rules (wmplan.envs.gym_env): the same spaces, batched; actions clipped onto the task's bounds,
non-finite or misshapen inputs refused; reward the negative task distance to the copy's goal and termination
on success (0 and never without a goal); truncation after the id's `max_episode_steps`, the evaluation budget.

- reset(seed=, options=): `options["state"]` and `options["goal"]` are (num_envs, S) arrays; without a state
  every copy samples a start and a goal from the env's one generator (seeded by `seed`), so sampled pairs
  differ from those of num_envs TaskEnv copies seeded seed, seed + 1, ...; `options["reset_mask"]`
  (bool (num_envs,)) resets only those copies, taking their rows of the given arrays.
- step(actions (num_envs, A)) -> obs (N, H, W, 3) uint8, rewards (N,), terminations (N,), truncations (N,),
  infos. Autoreset is gymnasium's default, AutoresetMode.NEXT_STEP: the step after a copy terminated or
  truncated puts it at a fresh sampled start and goal, ignores its action and returns its reset observation,
  reward 0 and no end.
- infos: arrays over copies, each key with gymnasium's `_key` mask of the copies that have it: "state" (N, S),
  "proprio" (N, P), and for copies with a goal "goal" (N, S) and "goal_image" (N, H, W, 3) uint8 (black
  where a copy has none), each info its own arrays.

Resetting some copies re-places every copy through the task's `reset_to` (the Task protocol places all copies
at once), the others at their current states. Wall, PointMaze, Rope and Granular step as a pure function of
(state, action), so those copies carry on exactly. PushT gives every copy a fresh pymunk space, which drops
the contacts pymunk caches to warm-start its solver: a copy pushing the block at that moment may then drift
from a TaskEnv copy stepped alone (by a few world units over 20 steps when re-placed at every step).
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from wmplan.envs.gym_env import TaskEnv, checked, goal_images
from wmplan.gymnasium_ids import episode_budget, gym_id


class TaskVectorEnv(gym.vector.VectorEnv):
    def __init__(
        self,
        num_envs: int,
        task: str = "wall",
        settings: dict[str, Any] | None = None,
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
    ):
        self._name = gym_id(task)
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise ValueError(f"{self._name}: num_envs must be a whole number >= 1, got {num_envs!r}")
        budget = episode_budget(task) if max_episode_steps is None else max_episode_steps
        if not (isinstance(budget, int) and budget >= 1):
            raise ValueError(f"{self._name}: max_episode_steps must be a whole number >= 1, got {budget!r}")
        single = TaskEnv(task, settings, render_mode)  # one copy's spaces and metadata, and the one simulator
        self.task = single.task
        self.num_envs = num_envs
        self.max_episode_steps = budget
        self.render_mode = render_mode
        self.metadata = {**single.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(single.observation_space, num_envs)
        self.action_space = batch_space(single.action_space, num_envs)
        self.state_space = cast(gym.spaces.Box, batch_space(single.state_space, num_envs))
        n, s = num_envs, self.task.state_dim
        self._goal = np.zeros((n, s))
        self._has_goal = np.zeros(n, dtype=bool)
        self._goal_image = np.zeros((n, self.task.image_size, self.task.image_size, 3), dtype=np.uint8)
        self._elapsed = np.zeros(n, dtype=int)
        self._autoreset = np.zeros(n, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        rows = self._reset_rows(options.get("reset_mask"))
        if "state" in options:
            start = checked(self._name, options["state"], self.state_space, "state")[rows]
            goal = options.get("goal")
        else:
            start, sampled_goal = self.task.sample_start_goal(self.np_random, int(rows.sum()))
            goal = options.get("goal", sampled_goal)
        if goal is not None and "goal" in options:  # checked before any change
            goal = checked(self._name, goal, self.state_space, "goal")[rows]
        self._restart(rows, start, goal)
        return self.task.render(), self._infos()

    def step(self, actions):
        if self.task.num_envs != self.num_envs:
            raise gym.error.ResetNeeded(f"{self._name}: call reset() before step()")
        actions = checked(self._name, actions, self.action_space, "actions")
        restarting = self._autoreset.copy()
        # Every copy steps (the task steps all at once); the restarting ones are then put at their new starts,
        # so their actions change nothing, as NEXT_STEP autoreset asks.
        self.task.step(np.clip(actions, self.task.action_low, self.task.action_high))
        if restarting.any():
            self._restart(restarting, *self.task.sample_start_goal(self.np_random, int(restarting.sum())))
        state = self.task.get_state()
        rewards, terminations = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)
        scored = self._has_goal & ~restarting
        if scored.any():
            rewards[scored] = -self.task.distance(state[scored], self._goal[scored])
            terminations[scored] = self.task.is_success(state[scored], self._goal[scored])
        self._elapsed[~restarting] += 1
        truncations = (self._elapsed >= self.max_episode_steps) & ~restarting
        self._autoreset = terminations | truncations
        return self.task.render(), rewards, terminations, truncations, self._infos(state)

    def render(self) -> tuple[np.ndarray, ...]:
        return tuple(self.task.render())

    def _reset_rows(self, mask: Any) -> np.ndarray:
        """bool (num_envs,): the copies a reset puts at new starts (all, or `options["reset_mask"]`)."""
        if mask is None:
            return np.ones(self.num_envs, dtype=bool)
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,) or not mask.any():
            raise ValueError(
                f"{self._name}: options['reset_mask'] must be a bool array of shape ({self.num_envs},) with at "
                f"least one True, got {mask!r}"
            )
        if not mask.all() and self.task.num_envs != self.num_envs:
            raise ValueError(f"{self._name}: options['reset_mask'] resets some copies; reset all of them first")
        return mask

    def _restart(self, rows: np.ndarray, start: np.ndarray, goal: np.ndarray | None) -> None:
        """Put the copies `rows` (bool (num_envs,)) at `start` (k, S) with `goal` (k, S), or with no goal."""
        state = self.task.get_state() if self.task.num_envs == self.num_envs else np.zeros_like(self._goal)
        state[rows] = start
        self.task.reset_to(state)  # refuses a start it cannot simulate before anything here changes
        self._has_goal[rows] = goal is not None
        if goal is not None:
            self._goal[rows] = goal
        self._elapsed[rows] = 0
        self._autoreset[rows] = False
        if self._has_goal.any():  # drawn for every copy at once: a task's copies each have their own arena
            self._goal_image = goal_images(self.task, np.where(self._has_goal[:, None], self._goal, state))
            self._goal_image[~self._has_goal] = 0  # no goal: a black image, masked out by "_goal_image"

    def _infos(self, state: np.ndarray | None = None) -> dict[str, np.ndarray]:
        state = self.task.get_state() if state is None else state
        every = np.ones(self.num_envs, dtype=bool)
        infos = {"state": state, "_state": every, "proprio": self.task.proprio(state), "_proprio": every.copy()}
        if self._has_goal.any():
            infos |= {
                "goal": self._goal.copy(),
                "_goal": self._has_goal.copy(),
                "goal_image": self._goal_image.copy(),
                "_goal_image": self._has_goal.copy(),
            }
        return infos
