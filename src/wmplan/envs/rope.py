"""Rope: a chain of beads on a table, moved by a pusher (DINO-WM's Rope task, on MuJoCo).

See wmplan.envs.pushing for the table, the pusher, the action and the step. The rope is 24 spheres
(radius 0.03, table units) whose consecutive centres are tied by inextensible strings of length
`link_length` (tendons with an upper limit), and whose contacts keep them from passing through each
other: it can bend freely but not stretch (a bead chain, without bending stiffness). Beads are
0.005 apart when the rope is taut, too little for the pusher or another bead to pass between them.
State (N, 48) = bead xy in chain order; no proprioception. Images draw the rope as a continuous
line (discs at the beads and between them).

Evaluation protocol (DINO-WM's): a start is a random smooth taut curve (heading turning by a normal
angle per link) somewhere on the table; its goal is the same rope rotated counter-clockwise by 0-90
degrees about its centroid and shifted, kept on the table and at least 0.2 from the start.
Success: Chamfer distance to the goal below 0.1.

Example:
    >>> import numpy as np
    >>> task = RopeTask()
    >>> start, goal = task.sample_start_goal(np.random.default_rng(0), 2)
    >>> task.reset_to(start)
    >>> task.step(np.array([[-0.5, 0.0, 0.3, 0.0], [0.0, -0.6, 0.0, 0.2]])).shape
    (2, 48)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.pushing import PushingSettings, PushingTask

DRAW_POINTS_PER_LINK = 4  # discs per link in images: enough for a line without gaps


@dataclass(frozen=True)
class RopeSettings(PushingSettings):
    """Rope task settings (lengths in table units); see PushingSettings for the shared ones."""

    n_particles: int = 24
    particle_radius: float = 0.03
    link_length: float = 0.065
    """Maximum distance between consecutive bead centres (the rope is 23 links = 1.5 long)."""
    pusher_radius: float = 0.05
    success_threshold: float = 0.1
    """About the rope shifted by a bead diameter or turned by 7 degrees."""
    particle_colour: tuple[int, int, int] = (180, 40, 40)
    bend_std: float = 0.15
    """Starts: standard deviation (radians) of the heading change from one link to the next."""
    start_centre_range: float = 0.3
    """Starts: the rope's centroid is uniform in [-range, range]^2 (redrawn until it is on the table)."""
    goal_rotation: tuple[float, float] = (0.0, 90.0)
    """Goals: the start rotated counter-clockwise about its centroid by degrees uniform in this range..."""
    goal_shift: float = 0.4
    """...then shifted by a vector uniform in [-shift, shift]^2 (redrawn until the goal is on the table
    and at least goal_min_distance from the start)."""


class RopeTask(PushingTask):
    """N ropes pushed on a table; state (N, 2K) = bead xy in chain order."""

    name = "rope"
    distance_name = "Chamfer distance"  # what `distance` measures, for reports
    config: RopeSettings  # set by PushingTask.__init__

    def __init__(self, settings: RopeSettings | None = None, **overrides: Any):
        base = settings or RopeSettings()
        cfg = dataclasses.replace(base, **overrides) if overrides else base
        if cfg.link_length < 2 * cfg.particle_radius:
            raise ValueError(
                f"link_length {cfg.link_length} must be at least the bead diameter {2 * cfg.particle_radius}"
            )
        super().__init__(cfg, link_length=cfg.link_length)

    def link_lengths(self, state: np.ndarray) -> np.ndarray:
        """(N, K-1) distances between consecutive beads."""
        p = self.particles(state)
        return np.linalg.norm(np.diff(p, axis=-2), axis=-1)

    def _drawn_points(self, particles: np.ndarray) -> np.ndarray:
        t = np.arange(DRAW_POINTS_PER_LINK)[:, None] / DRAW_POINTS_PER_LINK  # (D, 1)
        a, b = particles[:, :-1, None], particles[:, 1:, None]  # (N, K-1, 1, 2)
        between = (a + t * (b - a)).reshape(len(particles), -1, 2)
        return np.concatenate([between, particles[:, -1:]], axis=1)

    def random_rope(self, rng: np.random.Generator) -> np.ndarray:
        """(K, 2) a taut random smooth curve on the table that does not touch itself."""
        c = self.config
        k = c.n_particles
        for _ in range(1000):
            heading = rng.uniform(0, 2 * np.pi) + np.concatenate([[0.0], np.cumsum(rng.normal(0, c.bend_std, k - 2))])
            links = c.link_length * np.column_stack([np.cos(heading), np.sin(heading)])
            pts = np.vstack([np.zeros(2), np.cumsum(links, axis=0)])
            pts += rng.uniform(-c.start_centre_range, c.start_centre_range, 2) - pts.mean(0)
            gap = np.linalg.norm(pts[:, None] - pts[None], axis=-1)[np.triu_indices(k, 2)]
            if np.all(np.abs(pts) <= self._lim) and gap.min() > 2 * c.particle_radius + 1e-3:
                return pts
        raise RuntimeError("Rope.random_rope: no rope fits the table; lower bend_std or start_centre_range")

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n random ropes and their rotated, shifted goals (each (n, 2K)); a pure function of rng."""
        c = self.config
        starts, goals = [], []
        for _ in range(n):
            rope = self.random_rope(rng)
            centroid = rope.mean(0)
            for _ in range(1000):
                angle = np.deg2rad(rng.uniform(*c.goal_rotation))
                rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
                goal = centroid + (rope - centroid) @ rot.T + rng.uniform(-c.goal_shift, c.goal_shift, 2)
                if self.valid_goal(rope, goal):
                    break
            else:
                raise RuntimeError("Rope.sample_start_goal: no goal fits the table; lower goal_shift")
            starts.append(rope.reshape(-1))
            goals.append(goal.reshape(-1))
        return np.stack(starts), np.stack(goals)
