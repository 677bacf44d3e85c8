"""Random PointMaze trajectories: uniform starts over the free cells, temporally correlated random forces.

The actions follow a stationary Gaussian AR(1) process clipped to [-1, 1]: the force keeps its
direction for a few steps, so the mass builds up speed, crosses cells and hits walls rather than
jittering in place, while every action in the box stays likely.

Example:
    >>> from wmplan.envs.pointmaze import PointMazeTask
    >>> data = random_pointmaze(PointMazeTask(), np.random.default_rng(0), 4, PointMazeRandomConfig(steps=10))
    >>> data["obs"].shape, data["action"].shape
    ((4, 11, 64, 64, 3), (4, 11, 2))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmplan.data.episode_arrays import episode_arrays
from wmplan.envs.pointmaze import PointMazeTask
from wmplan.range_checks import check_ranges


@dataclass(frozen=True)
class PointMazeRandomConfig:
    """Random forces applied to a point mass that starts at rest anywhere free."""

    steps: int = 100
    """Env steps per episode (an episode stores steps + 1 frames)."""
    correlation: float = 0.5
    """AR(1) coefficient between consecutive actions: 0 draws each step afresh, near 1 holds the force."""
    action_std: float = 0.7
    """Standard deviation of each action component before clipping to [-1, 1]."""

    def check(self) -> None:
        """Refuse settings that cannot make an episode, naming them."""
        check_ranges(self, {"steps": 1, "correlation": 0, "action_std": 0}, prefix="collector setting ")
        if not self.correlation < 1.0:  # the innovation's scale sqrt(1 - correlation^2) would vanish
            raise ValueError(f"collector setting correlation must lie in [0, 1), got {self.correlation}")


def random_pointmaze(
    task: PointMazeTask, rng: np.random.Generator, n: int, cfg: PointMazeRandomConfig
) -> dict[str, np.ndarray]:
    """n episodes at once; arrays (n, steps + 1, ...): obs uint8, state, proprio, action (last one NaN)."""
    cfg.check()
    start = np.concatenate([task.sample_free_positions(rng, n), np.zeros((n, 2))], axis=1)
    task.reset_to(start)
    states, images, actions = [task.get_state()], [task.render()], []
    innovation = np.sqrt(1.0 - cfg.correlation**2) * cfg.action_std  # keeps the process's spread at action_std
    force = rng.normal(0.0, cfg.action_std, (n, 2))
    for _ in range(cfg.steps):
        force = cfg.correlation * force + innovation * rng.normal(size=(n, 2))
        action = np.clip(force, -1.0, 1.0)
        actions.append(action)
        states.append(task.step(action))
        images.append(task.render())
    return episode_arrays(task, states, images, actions)
