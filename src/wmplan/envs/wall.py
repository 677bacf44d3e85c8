"""Wall: a dot in a 2-D arena split by a vertical wall with a door (DINO-WM's DotWall).

Coordinates are pixels: x is the column, y the row, pixel centres at integers. State = proprio = the
dot's centre (x, y). An env action a (2,) moves the dot by `action_scale * a`; the move is split into
sub-steps of at most half a pixel so that the dot can never tunnel through the wall, and a sub-step
that would enter a solid region is snapped back onto the solid's face (the dot slides along walls).

Example:
    >>> import numpy as np
    >>> task = WallTask()
    >>> task.reset_to(np.array([[15.0, 20.0], [45.0, 40.0]]))
    >>> task.step(np.array([[1.0, 0.0], [0.0, -1.0]]))  # (N, 2) new states
    array([[17., 20.],
           [45., 38.]])
    >>> task.render().shape
    (2, 64, 64, 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.base import as_batch, settings_from_dict

MAX_SUBSTEP_PX = 0.5  # smaller than any solid's thickness, so no move skips over a wall


@dataclass(frozen=True)
class WallSettings:
    """Geometry and dynamics of the Wall task (all lengths in pixels)."""

    image_size: int = 64
    """Side of the square RGB observation."""
    border: int = 5
    """Thickness of the solid frame around the arena."""
    wall_x: int = 32
    """Column at the centre of the wall (the default fixed layout)."""
    wall_width: int = 6
    """Thickness of the wall."""
    door_y: int = 32
    """Row at the centre of the door (the default fixed layout)."""
    door_height: int = 12
    """Height of the opening in the wall."""
    dot_std: float = 1.7
    """Standard deviation of the Gaussian blob drawn for the dot."""
    dot_radius: float = 1.5
    """Collision radius: the dot's centre keeps this distance from every solid."""
    action_scale: float = 2.0
    """pos <- pos + action_scale * a."""
    random_layout: bool = False
    """If true, collectors draw wall_x and door_y per episode from the ranges below."""
    wall_x_range: tuple[int, int] = (24, 40)
    door_y_range: tuple[int, int] = (18, 46)
    success_threshold: float = 4.5
    """An episode succeeds when the dot is closer than this to the goal."""
    goal_max_path: float = 36.0
    """Evaluation goals lie at most this path length (around the wall, through the door) from the start."""
    goal_wall_margin: float = 3.0
    """Evaluation starts and goals keep this distance from the wall's faces."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WallSettings:
        return settings_from_dict(cls, values, "Wall settings")

    def check(self) -> None:
        """ValueError naming the first setting that leaves no playable arena: the wall and its door
        inside the frame (for the fixed layout and the random ranges), a door the dot fits through."""
        inner = (self.border, self.image_size - self.border)  # the free rows and columns [lo, hi)
        if self.image_size < 16 or self.border < 0 or inner[1] - inner[0] < 8:
            raise ValueError(f"Wall settings: image_size {self.image_size} with border {self.border} leaves no arena")
        for name, value in (
            ("dot_std", self.dot_std),
            ("action_scale", self.action_scale),
            ("wall_width", self.wall_width),
            ("success_threshold", self.success_threshold),
            ("goal_max_path", self.goal_max_path),
        ):
            if not value > 0:
                raise ValueError(f"Wall settings: {name} must be above 0, got {value}")
        if not 0 <= self.dot_radius < self.door_height / 2:
            raise ValueError(
                f"Wall settings: door_height {self.door_height} must exceed the dot's diameter 2 x {self.dot_radius}"
            )
        layouts = [((self.wall_x,) * 2, (self.door_y,) * 2)] + (
            [(self.wall_x_range, self.door_y_range)] if self.random_layout else []
        )
        for xs, ys in layouts:
            if xs[0] > xs[1] or ys[0] > ys[1]:
                raise ValueError(f"Wall settings: a range runs backwards: wall_x {xs}, door_y {ys}")
            if xs[0] - self.wall_width / 2 <= inner[0] or xs[1] + self.wall_width / 2 >= inner[1]:
                raise ValueError(
                    f"Wall settings: a wall at x = {xs[0]}..{xs[1]}, {self.wall_width} wide, leaves the arena "
                    f"(free columns {inner[0]}..{inner[1] - 1}); move wall_x or wall_x_range inside it"
                )
            if ys[0] - self.door_height / 2 < inner[0] or ys[1] + self.door_height / 2 > inner[1]:
                raise ValueError(
                    f"Wall settings: a door at y = {ys[0]}..{ys[1]}, {self.door_height} high, leaves the arena "
                    f"(free rows {inner[0]}..{inner[1] - 1}); lower door_height or move door_y inside it"
                )


class WallTask:
    """N dots, each in its own copy of the arena, simulated and rendered at once in numpy."""

    name = "wall"
    distance_name = "distance (px)"  # what `distance` measures, for reports
    state_dim = 2
    proprio_dim = 2
    action_dim = 2

    def __init__(self, settings: WallSettings | None = None, **overrides: Any):
        base = settings or WallSettings()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.image_size = self.config.image_size
        self.action_low = np.full(2, -1.0)
        self.action_high = np.full(2, 1.0)
        self._state = np.zeros((0, 2))
        self._layout = np.zeros((0, 2))
        coords = np.arange(self.image_size, dtype=np.float32)
        self._coords = coords

    # ----- settings and layout -------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @property
    def num_envs(self) -> int:
        return len(self._state)

    def default_layout(self, n: int) -> np.ndarray:
        """(n, 2) layouts [wall_x, door_y] of the fixed default."""
        return np.tile([float(self.config.wall_x), float(self.config.door_y)], (n, 1))

    def sample_layout(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, 2) layouts: random per copy if `random_layout`, else the fixed default."""
        if not self.config.random_layout:
            return self.default_layout(n)
        (x0, x1), (y0, y1) = self.config.wall_x_range, self.config.door_y_range
        return np.stack([rng.integers(x0, x1 + 1, n), rng.integers(y0, y1 + 1, n)], axis=1).astype(float)

    @property
    def layout(self) -> np.ndarray:
        return self._layout.copy()

    # ----- geometry -------------------------------------------------------------------------------
    def _bounds(self, layout: np.ndarray) -> dict[str, np.ndarray | float]:
        """Free-space limits for the dot's centre; arrays are (N,) per copy."""
        c, r = self.config, self.config.dot_radius
        wall_x, door_y = layout[:, 0], layout[:, 1]
        return {
            "lo": c.border - 0.5 + r,
            "hi": c.image_size - c.border - 0.5 - r,
            "band_lo": wall_x - c.wall_width / 2 - 0.5 - r,
            "band_hi": wall_x + c.wall_width / 2 - 0.5 + r,
            "door_lo": door_y - c.door_height / 2 - 0.5 + r,
            "door_hi": door_y + c.door_height / 2 - 0.5 - r,
        }

    def in_solid(self, state: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """bool (N,): whether each dot centre lies where the dot would overlap a wall or the frame."""
        state = as_batch(state, 2, "state")
        b = self._bounds(self._layout_for(len(state), layout))
        x, y = state[:, 0], state[:, 1]
        outside = (x < b["lo"]) | (x > b["hi"]) | (y < b["lo"]) | (y > b["hi"])
        in_wall = (x > b["band_lo"]) & (x < b["band_hi"]) & ((y < b["door_lo"]) | (y > b["door_hi"]))
        return outside | in_wall

    def side(self, state: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """int (N,): -1 left of the wall, +1 right of it, 0 inside the door passage."""
        state = as_batch(state, 2, "state")
        b = self._bounds(self._layout_for(len(state), layout))
        return np.where(state[:, 0] <= b["band_lo"], -1, np.where(state[:, 0] >= b["band_hi"], 1, 0))

    def _layout_for(self, n: int, layout: np.ndarray | None) -> np.ndarray:
        if layout is not None:
            layout = as_batch(layout, 2, "layout")
            return np.broadcast_to(layout, (n, 2)) if len(layout) == 1 else layout
        if len(self._layout) == n:
            return self._layout
        return self.default_layout(n)

    # ----- the Task protocol ----------------------------------------------------------------------
    def reset_to(self, state: np.ndarray, layout: np.ndarray | None = None) -> None:
        """Place N dots at `state` (N, 2); `layout` (N, 2) or (2,) = [wall_x, door_y] per copy."""
        state = as_batch(state, 2, "state")
        lay = np.array(self._layout_for(len(state), layout), dtype=float)
        bad = self.in_solid(state, lay)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            b = self._bounds(lay[i : i + 1])
            x, y = state[i]
            where = (
                "outside the arena" if not (b["lo"] <= x <= b["hi"] and b["lo"] <= y <= b["hi"]) else "inside the wall"
            )
            raise ValueError(
                f"Wall.reset_to: dot {i} at (x={x:.2f}, y={y:.2f}) is {where}; free x and y lie in "
                f"[{b['lo']:.1f}, {b['hi']:.1f}] and the wall spans x in ({b['band_lo'][0]:.1f}, "
                f"{b['band_hi'][0]:.1f}) except the door y in [{b['door_lo'][0]:.1f}, {b['door_hi'][0]:.1f}]"
            )
        self._state = state.copy()
        self._layout = lay

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        action = as_batch(action, 2, "action")
        if len(action) != self.num_envs:
            raise ValueError(f"Wall.step: {len(action)} actions for {self.num_envs} dots")
        delta = self.config.action_scale * action
        n_sub = max(1, int(np.ceil(np.abs(delta).max(initial=0.0) / MAX_SUBSTEP_PX)))
        b = self._bounds(self._layout)
        pos = self._state
        for _ in range(n_sub):
            pos = _move_axis(pos, delta / n_sub, b, axis=0)
            pos = _move_axis(pos, delta / n_sub, b, axis=1)
        self._state = pos
        return pos.copy()

    def render(self, state: np.ndarray | None = None, layout: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3): the frame and wall in grey, the dot as a red Gaussian blob."""
        state = self._state if state is None else as_batch(state, 2, "state")
        lay = self._layout_for(len(state), layout)
        images = self._static_images(lay)
        if images.shape[0] != len(state):
            images = np.repeat(images, len(state), axis=0)
        two_var = 2.0 * self.config.dot_std**2
        gx = np.exp(-((self._coords[None, :] - state[:, :1].astype(np.float32)) ** 2) / two_var)
        gy = np.exp(-((self._coords[None, :] - state[:, 1:].astype(np.float32)) ** 2) / two_var)
        dot = (255.0 * gy[:, :, None] * gx[:, None, :]).astype(np.uint8)  # (N, H, W) rows = y
        np.maximum(images[..., 0], dot, out=images[..., 0])
        return images

    def _static_images(self, layout: np.ndarray) -> np.ndarray:
        """Frame and wall for each distinct layout: (1, H, W, 3) if all copies share one, else (N, H, W, 3)."""
        c, size = self.config, self.image_size
        if len(layout) and np.all(layout == layout[:1]):
            layout = layout[:1]
        idx = np.arange(size)
        wall_x, door_y = layout[:, :1].astype(int), layout[:, 1:].astype(int)
        cols = (idx[None] >= wall_x - c.wall_width // 2) & (idx[None] < wall_x - c.wall_width // 2 + c.wall_width)
        door = (idx[None] >= door_y - c.door_height // 2) & (idx[None] < door_y - c.door_height // 2 + c.door_height)
        wall = cols[:, None, :] & ~door[:, :, None]  # (L, H, W)
        frame = (idx < c.border) | (idx >= size - c.border)
        solid = wall | frame[None, :, None] | frame[None, None, :]
        return np.repeat((solid * np.uint8(150))[..., None], 3, axis=-1)

    def proprio(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float64)[..., :2].copy()

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(state, float)[..., :2] - np.asarray(goal, float)[..., :2], axis=-1)

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.distance(state, goal) < self.config.success_threshold

    def path_length(self, start: np.ndarray, goal: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """(N,) length of the shortest path from start to goal for dots on opposite sides (through the door)."""
        start, goal = as_batch(start, 2, "start"), as_batch(goal, 2, "goal")
        b = self._bounds(self._layout_for(len(start), layout))
        ts = np.linspace(0.0, 1.0, 41)[None, :]
        door_y = b["door_lo"][:, None] + ts * (b["door_hi"] - b["door_lo"])[:, None]  # (N, K) crossing heights
        left = np.where(start[:, :1] < goal[:, :1], start, goal)
        right = np.where(start[:, :1] < goal[:, :1], goal, start)
        into = np.hypot(b["band_lo"][:, None] - left[:, :1], door_y - left[:, 1:])
        out = np.hypot(right[:, :1] - b["band_hi"][:, None], right[:, 1:] - door_y)
        return (into + out).min(axis=1) + (b["band_hi"] - b["band_lo"])

    def sample_start_goal(
        self, rng: np.random.Generator, n: int, layout: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """n (start, goal) pairs on opposite sides of the wall (either side first), reachable by a path
        of at most `goal_max_path` px. Pure function of the generator's state."""
        lay = np.array(self._layout_for(n, layout), dtype=float)
        starts, goals = np.zeros((n, 2)), np.zeros((n, 2))
        todo = np.arange(n)
        c = self.config
        for _ in range(1000):
            if len(todo) == 0:
                return starts, goals
            b = self._bounds(lay[todo])
            k = len(todo)
            m = c.goal_wall_margin
            y = rng.uniform(b["lo"], b["hi"], (2, k))
            left_x = rng.uniform(b["lo"], b["band_lo"] - m)
            right_x = rng.uniform(b["band_hi"] + m, b["hi"])
            left_first = rng.random(k) < 0.5
            s = np.stack([np.where(left_first, left_x, right_x), y[0]], axis=1)
            g = np.stack([np.where(left_first, right_x, left_x), y[1]], axis=1)
            ok = self.path_length(s, g, lay[todo]) <= c.goal_max_path
            starts[todo[ok]], goals[todo[ok]] = s[ok], g[ok]
            todo = todo[~ok]
        raise RuntimeError("Wall.sample_start_goal: no reachable pairs found; raise goal_max_path")


def _move_axis(pos: np.ndarray, delta: np.ndarray, b: dict, axis: int) -> np.ndarray:
    """Move every dot along one axis by delta[:, axis], clipped to the arena and snapped at the wall."""
    new = pos.copy()
    new[:, axis] = np.clip(pos[:, axis] + delta[:, axis], b["lo"], b["hi"])
    x, y = new[:, 0], new[:, 1]
    blocked = (x > b["band_lo"]) & (x < b["band_hi"]) & ((y < b["door_lo"]) | (y > b["door_hi"]))
    if not blocked.any():
        return new
    if axis == 0:  # entering the wall sideways: stop on the face the dot came from
        face = np.where(pos[:, 0] <= b["band_lo"], b["band_lo"], b["band_hi"])
        new[:, 0] = np.where(blocked, face, new[:, 0])
    else:  # inside the door passage, moving up or down into the wall: stop at the door's edge
        new[:, 1] = np.where(blocked, np.clip(new[:, 1], b["door_lo"], b["door_hi"]), new[:, 1])
    return new
