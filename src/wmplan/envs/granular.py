"""Granular: a pile of small spheres on a table, moved by a pusher (DINO-WM's Granular task, on MuJoCo).

See wmplan.envs.pushing for the table, the pusher, the action and the step. 200 particles of radius
0.02 (table units) by default: enough for a pile that flows around the pusher, few enough for a
fast CPU simulation. State (N, 400) = particle xy; no proprioception.

Evaluation protocol (DINO-WM's): a start is a loose random pile (particles placed uniformly in a disc
without overlap, about a third of its area covered); its goal is the same pile gathered (scaled by
0.6-0.9 about its centroid) and shifted, kept on the table and at least 0.2 from the start.
Success: Chamfer distance to the goal below 0.1. A goal scaled by 0.6 covers about 0.32 / 0.36 =
89% of its disc, as dense as discs pack, so near that scale the best reachable distance is above
zero.

Example:
    >>> import numpy as np
    >>> task = GranularTask()
    >>> start, goal = task.sample_start_goal(np.random.default_rng(0), 2)
    >>> task.reset_to(start)
    >>> task.step(np.array([[-0.5, 0.0, 0.3, 0.0], [0.0, -0.6, 0.0, 0.2]])).shape
    (2, 400)
    >>> task.render().shape
    (2, 64, 64, 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.pushing import PushingSettings, PushingTask


@dataclass(frozen=True)
class GranularSettings(PushingSettings):
    """Granular task settings (lengths in table units); see PushingSettings for the shared ones."""

    n_particles: int = 200
    particle_radius: float = 0.02
    pusher_radius: float = 0.1
    """Wider than the rope's: a loose pile only moves where the pusher sweeps it."""
    success_threshold: float = 0.1
    """Two random arrangements of one pile shape are about 0.05 apart, so success asks for the shape
    (within about 0.05 of shift), not the exact grains."""
    particle_colour: tuple[int, int, int] = (60, 60, 70)
    pile_radius: float = 0.5
    """Starts: particles uniform in a disc of this radius (200 particles cover about 32% of it)."""
    pile_centre_range: float = 0.3
    """Starts: the pile's centre is uniform in [-range, range]^2."""
    goal_scale: tuple[float, float] = (0.6, 0.9)
    """Goals: the start pile scaled about its centroid by a factor uniform in this range..."""
    goal_shift: float = 0.4
    """...then shifted by a vector uniform in [-shift, shift]^2 (redrawn until the goal is on the table
    and at least goal_min_distance from the start)."""


class GranularTask(PushingTask):
    """N piles of spheres pushed on a table; state (N, 2K) = sphere xy."""

    name = "granular"
    distance_name = "Chamfer distance"  # what `distance` measures, for reports
    config: GranularSettings  # set by PushingTask.__init__

    def __init__(self, settings: GranularSettings | None = None, **overrides: Any):
        base = settings or GranularSettings()
        super().__init__(dataclasses.replace(base, **overrides) if overrides else base)

    def random_pile(self, rng: np.random.Generator) -> np.ndarray:
        """(K, 2) non-overlapping particle centres uniform in a disc (random sequential addition)."""
        c = self.config
        centre = rng.uniform(-c.pile_centre_range, c.pile_centre_range, 2)
        min_sep = 2.0 * c.particle_radius
        pts = np.zeros((0, 2))
        while len(pts) < c.n_particles:
            rad = (c.pile_radius - c.particle_radius) * np.sqrt(rng.random())
            ang = rng.uniform(0, 2 * np.pi)
            p = centre + rad * np.array([np.cos(ang), np.sin(ang)])
            if len(pts) == 0 or np.min(np.linalg.norm(pts - p, axis=1)) >= min_sep:
                pts = np.vstack([pts, p])
        return np.clip(pts, -self._lim, self._lim)

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n loose piles and their gathered, shifted goals (each (n, 2K)); a pure function of rng."""
        c = self.config
        starts, goals = [], []
        for _ in range(n):
            pile = self.random_pile(rng)
            centroid = pile.mean(0)
            for _ in range(1000):
                scale = rng.uniform(*c.goal_scale)
                goal = centroid + scale * (pile - centroid) + rng.uniform(-c.goal_shift, c.goal_shift, 2)
                if self.valid_goal(pile, goal):
                    break
            else:
                raise RuntimeError("Granular.sample_start_goal: no goal fits the table; lower goal_shift")
            starts.append(pile.reshape(-1))
            goals.append(goal.reshape(-1))
        return np.stack(starts), np.stack(goals)
