"""Random-push trajectories of the pushing tasks (Rope, Granular), in the layout `collect` stores.

Uniformly random pushes would mostly sweep empty table, so most pushes are aimed at the material:
pick a random particle of the current state, a random direction, start a little behind the particle
(seen along that direction) and push through it. A fraction of pushes stays uniformly random over
the whole action box, so the data also shows what pushes that miss (or start on top of) the
material do.

Example:
    >>> from wmplan.envs.rope import RopeTask
    >>> data = random_pushes_rope(RopeTask(), np.random.default_rng(0), 4, RandomPushConfig(steps=3))
    >>> data["obs"].shape, data["state"].shape, data["proprio"].shape, data["action"].shape
    ((4, 4, 64, 64, 3), (4, 4, 48), (4, 4, 0), (4, 4, 4))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wmplan.data.episode_arrays import episode_arrays
from wmplan.envs.pushing import PushingTask
from wmplan.range_checks import check_interval, check_ranges


@dataclass(frozen=True)
class RandomPushConfig:
    """Random pushes aimed at the material (lengths in table units)."""

    steps: int = 20
    """Pushes per episode (an episode stores steps + 1 frames)."""
    length: tuple[float, float] = (0.1, 0.5)
    """Push length, uniform in this range."""
    lead: tuple[float, float] = (0.0, 0.15)
    """How far behind the aimed particle's surface (along the push) the pusher's edge starts, uniform."""
    random_fraction: float = 0.1
    """Fraction of pushes drawn uniformly from the whole action box instead."""

    def check(self) -> None:
        """Refuse settings that cannot make an episode, naming them."""
        check_ranges(self, {"steps": 1, "random_fraction": 0}, prefix="collector setting ")
        if not self.random_fraction <= 1:
            raise ValueError(f"collector setting random_fraction must lie in [0, 1], got {self.random_fraction}")
        for name in ("length", "lead"):
            low, high = getattr(self, name)
            check_interval(f"{name}[0]", low, f"{name}[1]", high)
            if low < 0:
                raise ValueError(f"collector setting {name} must not be negative, got {getattr(self, name)}")


def aimed_pushes(task: PushingTask, state: np.ndarray, rng: np.random.Generator, cfg: RandomPushConfig) -> np.ndarray:
    """(N, 4) one push per state (N, 2K), each through a random particle (or, with probability
    `random_fraction`, uniform in the action box); clipped to the action bounds."""
    n = len(state)
    particles = task.particles(state)
    target = particles[np.arange(n), rng.integers(0, task.config.n_particles, n)]  # (N, 2)
    angle = rng.uniform(0, 2 * np.pi, n)
    u = np.column_stack([np.cos(angle), np.sin(angle)])
    back = task.config.pusher_radius + task.config.particle_radius + rng.uniform(*cfg.lead, n)
    start = target - back[:, None] * u
    end = start + rng.uniform(*cfg.length, n)[:, None] * u
    action = np.concatenate([start, end], axis=1)
    uniform = rng.random(n) < cfg.random_fraction
    action[uniform] = rng.uniform(task.action_low, task.action_high, (int(uniform.sum()), 4))
    return np.clip(action, task.action_low, task.action_high)


def random_pushes(task: PushingTask, rng: np.random.Generator, n: int, cfg: RandomPushConfig) -> dict[str, np.ndarray]:
    """n episodes of aimed random pushes from the task's random starts; arrays (n, steps + 1, ...),
    the last action NaN."""
    start, _ = task.sample_start_goal(rng, n)
    task.reset_to(start)
    states, images, actions = [task.get_state()], [task.render()], []
    for _ in range(cfg.steps):
        action = aimed_pushes(task, states[-1], rng, cfg)
        actions.append(action)
        states.append(task.step(action))
        images.append(task.render())
    return episode_arrays(task, states, images, actions)


def random_pushes_rope(
    task: PushingTask, rng: np.random.Generator, n: int, cfg: RandomPushConfig
) -> dict[str, np.ndarray]:
    """Rope episodes: random taut curves pushed at random beads."""
    return random_pushes(task, rng, n, cfg)


def random_pushes_granular(
    task: PushingTask, rng: np.random.Generator, n: int, cfg: RandomPushConfig
) -> dict[str, np.ndarray]:
    """Granular episodes: loose piles pushed at random particles."""
    return random_pushes(task, rng, n, cfg)
