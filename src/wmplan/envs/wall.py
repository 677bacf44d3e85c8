"""Wall: a dot in a 2-D arena split by a vertical wall with a door, with DINO-WM's DotWall rules.

Coordinates are pixels: x is the column, y the row, pixel centres at integers. State = proprio = the
dot's centre (x, y). The rules follow DINO-WM's wall environment (its public source), fact for fact:
- a 65 px canvas; the frame is a 1-px line at rows and columns 4 and 60; the wall covers columns
  29-35 (7 px) except the door, rows 26-34 (9 rows, centred on row 30);
- the dot is a point: an env action a (2,) moves it to pos + 2a along a straight line. A move that
  crosses a solid's face stops at the hit point, backs off `bounce` px away from the face and moves
  `bounce` px along it, in the +x or +y direction (so repeated pushes into the wall drift along it);
  what is left of the move is lost. Inside the door passage, a move across the door's upper or lower
  edge stops there the same way;
- rendering: white floor, black solids, a red dot made by lowering green and blue by a Gaussian
  (std 1.7 px) scaled so that its brightest pixel is 255;
- evaluation pairs: start and goal uniform on opposite sides of the wall (either side first), 3.4 px
  (2 dot stds) from the wall and the frame, with no cap on the path between them.
Two faults of that source are not copied: a purely vertical move (its line slope is infinite) passes
into the wall from the door passage and turns into NaN at the frame; here the hit point is found
along the move itself, so both stop like any other move. Moves longer than an in-bounds action
(2 sqrt(2) px) are split into pieces of at most 3 px, so that no move, however large, skips over a solid;
a move longer than MAX_PIECES pieces (30,000 px, about 470 frame widths: only a planner that diverged asks
for one) is cut to that length, so that a step takes bounded time. Non-finite actions are refused.

Example:
    >>> import numpy as np
    >>> task = WallTask()
    >>> task.reset_to(np.array([[15.0, 20.0], [27.0, 40.0]]))
    >>> task.step(np.array([[1.0, 0.0], [1.0, 0.0]]))  # (N, 2) new states; the second hits the wall
    array([[17. , 20. ],
           [28.5, 40.5]])
    >>> task.render().shape
    (2, 65, 65, 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from wmplan.envs.base import as_batch, settings_from_dict

MAX_PIECE_PX = 3.0  # an in-bounds move is at most 2 sqrt(2) px; longer ones are split into pieces this long
MAX_PIECES = 10_000  # pieces of one move at most: a step's time stays bounded whatever the action
EDGE_GAP_PX = 0.3  # a dot pushed onto a face after its bounce is set this far off it (DINO-WM's rule)
_OLD_RULES_KEYS = {"border", "wall_width", "door_height", "dot_radius", "goal_max_path", "goal_wall_margin"}


@dataclass(frozen=True)
class WallSettings:
    """Geometry and dynamics of the Wall task (all lengths in pixels; defaults are DINO-WM's)."""

    image_size: int = 65
    """Side of the square RGB observation."""
    border_line: int = 4
    """The frame is a 1-px line at this row and column from each edge (4 and 60 on 65 px)."""
    wall_x: int = 32
    """Column at the centre of the wall (the default fixed layout)."""
    wall_half_width: int = 3
    """The wall covers columns wall_x - 3 .. wall_x + 3 (DINO-WM's `wall_width` 6, drawn 7 px wide)."""
    door_y: int = 30
    """Row at the centre of the door (the default fixed layout)."""
    door_half_height: int = 4
    """The door opens rows door_y - 4 .. door_y + 4 (DINO-WM's `door_space`)."""
    dot_std: float = 1.7
    """Standard deviation of the Gaussian blob drawn for the dot; evaluation pairs keep 2 stds from solids."""
    action_scale: float = 2.0
    """pos <- pos + action_scale * a."""
    bounce: float = 0.5
    """After a hit, the dot backs off this far from the face and moves this far along it."""
    random_layout: bool = False
    """If true, collectors draw wall_x and door_y per episode from the ranges below."""
    wall_x_range: tuple[int, int] = (24, 40)
    door_y_range: tuple[int, int] = (18, 46)
    success_threshold: float = 4.5
    """An episode succeeds when the dot is closer than this to the goal."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WallSettings:
        old = sorted(_OLD_RULES_KEYS & set(values) - {f.name for f in dataclasses.fields(cls)})
        if old:
            raise ValueError(
                f"Wall settings {old} belong to the earlier Wall rules (a 64 px arena where the dot slides along "
                "walls), which wmplan no longer simulates; collect the dataset again (`wmplan collect --env wall`) "
                "and train on it"
            )
        return settings_from_dict(cls, values, "Wall settings")

    def check(self) -> None:
        """ValueError naming the first setting that leaves no playable arena: room for starts and goals
        on both sides of the wall and a door inside the frame (for the fixed layout and the random ranges)."""
        for name, value in (
            ("dot_std", self.dot_std),
            ("action_scale", self.action_scale),
            ("success_threshold", self.success_threshold),
        ):
            if not value > 0:
                raise ValueError(f"Wall settings: {name} must be above 0, got {value}")
        if self.wall_half_width < 0 or self.door_half_height < 0 or not 0 <= self.bounce < 1:
            raise ValueError(
                "Wall settings: wall_half_width and door_half_height must be >= 0 and bounce in [0, 1), got "
                f"{self.wall_half_width}, {self.door_half_height}, {self.bounce}"
            )
        lo, hi = self.border_line, self.image_size - 1 - self.border_line
        if self.border_line < 0 or hi - lo < 16:
            raise ValueError(f"Wall settings: image_size {self.image_size} with border_line {lo} leaves no arena")
        pad = 2 * self.dot_std  # evaluation pairs keep this far from every solid
        layouts = [((self.wall_x,) * 2, (self.door_y,) * 2)] + (
            [(self.wall_x_range, self.door_y_range)] if self.random_layout else []
        )
        for xs, ys in layouts:
            if xs[0] > xs[1] or ys[0] > ys[1]:
                raise ValueError(f"Wall settings: a range runs backwards: wall_x {xs}, door_y {ys}")
            if xs[0] - self.wall_half_width - pad <= lo + pad or xs[1] + self.wall_half_width + pad >= hi - pad:
                raise ValueError(
                    f"Wall settings: a wall at x = {xs[0]}..{xs[1]}, {2 * self.wall_half_width + 1} px wide, leaves "
                    f"no room for starts and goals on both sides (frame lines at {lo} and {hi}); move wall_x or "
                    "wall_x_range towards the middle"
                )
            if ys[0] - self.door_half_height <= lo or ys[1] + self.door_half_height >= hi:
                raise ValueError(
                    f"Wall settings: a door at y = {ys[0]}..{ys[1]}, {2 * self.door_half_height + 1} rows high, "
                    f"leaves the arena (frame lines at {lo} and {hi}); lower door_half_height or move door_y"
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
        self._coords = np.arange(self.image_size, dtype=np.float32)

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

    def _layout_for(self, n: int, layout: np.ndarray | None) -> np.ndarray:
        if layout is not None:
            layout = as_batch(layout, 2, "layout")
            return np.broadcast_to(layout, (n, 2)) if len(layout) == 1 else layout
        if len(self._layout) == n:
            return self._layout
        return self.default_layout(n)

    # ----- geometry -------------------------------------------------------------------------------
    def _faces(self, layout: np.ndarray) -> _Faces:
        """The solids' faces for each copy's layout (N, 2)."""
        c = self.config
        return _Faces(
            lo=float(c.border_line),
            hi=float(c.image_size - 1 - c.border_line),
            wall_x=layout[:, 0],
            wall_l=layout[:, 0] - c.wall_half_width,
            wall_r=layout[:, 0] + c.wall_half_width,
            door_lo=layout[:, 1] - c.door_half_height,
            door_hi=layout[:, 1] + c.door_half_height,
        )

    def in_solid(self, state: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """bool (N,): whether each dot lies on or beyond the frame, or in the wall outside the door."""
        state = as_batch(state, 2, "state")
        f = self._faces(self._layout_for(len(state), layout))
        x, y = state[:, 0], state[:, 1]
        outside = (x <= f.lo) | (x >= f.hi) | (y <= f.lo) | (y >= f.hi)
        return outside | ((x >= f.wall_l) & (x <= f.wall_r) & ((y < f.door_lo) | (y > f.door_hi)))

    def side(self, state: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """int (N,): -1 left of the wall, +1 right of it, 0 inside the door passage."""
        state = as_batch(state, 2, "state")
        f = self._faces(self._layout_for(len(state), layout))
        return np.where(state[:, 0] < f.wall_l, -1, np.where(state[:, 0] > f.wall_r, 1, 0))

    # ----- the Task protocol ----------------------------------------------------------------------
    def reset_to(self, state: np.ndarray, layout: np.ndarray | None = None) -> None:
        """Place N dots at `state` (N, 2); `layout` (N, 2) or (2,) = [wall_x, door_y] per copy."""
        state = as_batch(state, 2, "state")
        lay = np.array(self._layout_for(len(state), layout), dtype=float)
        bad = self.in_solid(state, lay)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            f = self._faces(lay[i : i + 1])
            x, y = state[i]
            where = "outside the arena" if not (f.lo < x < f.hi and f.lo < y < f.hi) else "inside the wall"
            raise ValueError(
                f"Wall.reset_to: dot {i} at (x={x:.2f}, y={y:.2f}) is {where}; free x and y lie in "
                f"({f.lo:.0f}, {f.hi:.0f}) and the wall covers x in [{f.wall_l[0]:.0f}, {f.wall_r[0]:.0f}] "
                f"except the door y in [{f.door_lo[0]:.0f}, {f.door_hi[0]:.0f}]"
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
        length = np.abs(delta).max(axis=1)
        too_long = length > MAX_PIECES * MAX_PIECE_PX
        delta[too_long] *= (MAX_PIECES * MAX_PIECE_PX / length[too_long])[:, None]  # same direction, cut
        pieces = np.maximum(1, np.ceil(np.abs(delta).max(axis=1) / MAX_PIECE_PX)).astype(int)  # (N,)
        faces = self._faces(self._layout)
        pos = self._state.copy()
        for k in range(int(pieces.max(initial=1))):
            moving = pieces > k  # a dot's own pieces only, so a batch equals its dots stepped alone
            new = _move(pos, pos + delta / pieces[:, None], faces, self.config.bounce)
            pos[moving] = new[moving]
        self._state = pos
        return pos.copy()

    def render(self, state: np.ndarray | None = None, layout: np.ndarray | None = None) -> np.ndarray:
        """uint8 (N, H, W, 3): white floor, black frame and wall, the dot as a red Gaussian blob whose
        brightest pixel is pure red (green and blue lowered by up to 255; not drawn over solids)."""
        state = self._state if state is None else as_batch(state, 2, "state")
        solid = self._solid_masks(self._layout_for(len(state), layout))  # (1 or N, H, W)
        two_var = 2.0 * self.config.dot_std**2
        gx = np.exp(-((self._coords[None, :] - state[:, :1].astype(np.float32)) ** 2) / two_var)
        gy = np.exp(-((self._coords[None, :] - state[:, 1:].astype(np.float32)) ** 2) / two_var)
        blob = gy[:, :, None] * gx[:, None, :]  # (N, H, W) rows = y
        red = (255.0 * blob / blob.max(axis=(1, 2), keepdims=True)).astype(np.uint8)
        images = np.full((len(state), self.image_size, self.image_size, 3), 255, dtype=np.uint8)
        images[..., 1] -= red
        images[..., 2] -= red
        images[np.broadcast_to(solid, red.shape)] = 0
        return images

    def _solid_masks(self, layout: np.ndarray) -> np.ndarray:
        """bool (1, H, W) if every copy shares one layout, else (N, H, W): the frame lines and the wall."""
        c, idx = self.config, np.arange(self.image_size)
        if len(layout) and np.all(layout == layout[:1]):
            layout = layout[:1]
        f = self._faces(layout)
        cols = (idx[None] >= f.wall_l[:, None]) & (idx[None] <= f.wall_r[:, None])  # (L, W)
        door = (idx[None] >= f.door_lo[:, None]) & (idx[None] <= f.door_hi[:, None])  # (L, H)
        frame = (idx == c.border_line) | (idx == self.image_size - 1 - c.border_line)
        return (cols[:, None, :] & ~door[:, :, None]) | frame[None, :, None] | frame[None, None, :]

    def proprio(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state, dtype=np.float64)[..., :2].copy()

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(state, float)[..., :2] - np.asarray(goal, float)[..., :2], axis=-1)

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.distance(state, goal) < self.config.success_threshold

    def pair_kinds(self, start: np.ndarray, goal: np.ndarray, layout: np.ndarray | None = None) -> np.ndarray:
        """(N,) str: "direct" where the straight line from start to goal (N, 2) crosses the wall inside the
        door at both of its faces, else "detour" (a plan must leave that line to pass the door, so a cost
        that measures distance to the goal first rises or stalls at the wall)."""
        f = self._faces(np.array(self._layout_for(len(start), layout), dtype=float))
        dx = goal[:, 0] - start[:, 0]
        inside = np.ones(len(start), bool)
        for face in (f.wall_l, f.wall_r):
            y = start[:, 1] + (face - start[:, 0]) / np.where(dx == 0, np.inf, dx) * (goal[:, 1] - start[:, 1])
            inside &= (f.door_lo <= y) & (y <= f.door_hi)
        return np.where(inside, "direct", "detour")

    def sample_start_goal(
        self, rng: np.random.Generator, n: int, layout: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """n (start, goal) pairs, DINO-WM's way: one point uniform left of the wall and one right of it,
        both 2 dot stds from every solid, y uniform and independent, either side first. Pure function of
        the generator's state."""
        f = self._faces(np.array(self._layout_for(n, layout), dtype=float))
        pad = 2 * self.config.dot_std
        left_x = rng.uniform(f.lo + pad, f.wall_l - pad, n)
        right_x = rng.uniform(f.wall_r + pad, f.hi - pad, n)
        y = rng.uniform(f.lo + pad, f.hi - pad, (2, n))
        left_first = rng.random(n) < 0.5
        starts = np.stack([np.where(left_first, left_x, right_x), y[0]], axis=1)
        goals = np.stack([np.where(left_first, right_x, left_x), y[1]], axis=1)
        return starts, goals


@dataclass(frozen=True)
class _Faces:
    """Where the solids begin, per copy: the frame lines (scalars), the wall's columns and the door's rows."""

    lo: float
    hi: float
    wall_x: np.ndarray
    wall_l: np.ndarray
    wall_r: np.ndarray
    door_lo: np.ndarray
    door_hi: np.ndarray


def _move(p1: np.ndarray, p2: np.ndarray, f: _Faces, bounce: float) -> np.ndarray:
    """Every dot's straight move p1 -> p2 (N, 2), stopped by the first face it crosses, in DINO-WM's
    order: the door's edges from inside the passage first, then the nearer of the vertical faces (the
    wall's, open at the door, or the frame's) and the frame's horizontal faces."""
    d = p2 - p1
    out = p2.copy()
    # 1. Inside the door passage, across the door's upper or lower edge (into the wall): stop there,
    # back off into the passage and move +bounce in x.
    in_door = np.zeros(len(p1), bool)
    for edge, direction in ((f.door_hi, 1.0), (f.door_lo, -1.0)):
        crosses = (direction * (edge - p1[:, 1]) >= 0) & (direction * (p2[:, 1] - edge) > 0)  # from on it, too
        x = p1[:, 0] + (edge - p1[:, 1]) / np.where(crosses, d[:, 1], 1.0) * d[:, 0]
        hit = crosses & (x >= f.wall_l) & (x <= f.wall_r)
        out[hit] = np.stack([x + bounce, edge - direction * bounce], axis=1)[hit]
        in_door |= hit
    # 2. The vertical faces on either side of the dot and the frame's horizontal lines.
    left_of_wall = f.wall_x > p1[:, 0]
    face_l = np.where(left_of_wall, f.lo, f.wall_r)  # the wall's right face has the door in it
    face_r = np.where(left_of_wall, f.wall_l, f.hi)  # and so has its left face
    t_l = _crossing(p1, d, face_l, 0, np.where(left_of_wall, np.nan, f.door_lo), f.door_hi)
    t_r = _crossing(p1, d, face_r, 0, np.where(left_of_wall, f.door_lo, np.nan), f.door_hi)
    t_v = np.where(np.isfinite(t_l), t_l, t_r)
    t_h = np.fmin(_crossing(p1, d, np.full(len(p1), f.lo), 1), _crossing(p1, d, np.full(len(p1), f.hi), 1))
    vertical = np.isfinite(t_v) & (t_v < t_h)  # the nearer hit; a tie goes to the horizontal line
    horizontal = np.isfinite(t_h) & ~vertical
    hit_at = p1 + np.where(vertical, t_v, np.where(horizontal, t_h, 0.0))[:, None] * d
    away = np.sign(p1 - hit_at)  # back off towards where the dot came from, and slide +bounce
    nudge = np.where(
        vertical[:, None], np.stack([away[:, 0], np.ones(len(p1))], 1), np.stack([np.ones(len(p1)), away[:, 1]], 1)
    )
    x, y = (hit_at + bounce * nudge).T
    x = np.clip(x, face_l, face_r)
    y = np.clip(y, f.lo, f.hi)
    x = np.where(x <= face_l, face_l + EDGE_GAP_PX, np.where(x >= face_r, face_r - EDGE_GAP_PX, x))
    y = np.where(y <= f.lo, f.lo + EDGE_GAP_PX, np.where(y >= f.hi, f.hi - EDGE_GAP_PX, y))
    stopped = (vertical | horizontal) & ~in_door
    out[stopped] = np.stack([x, y], axis=1)[stopped]
    return out


def _crossing(
    p: np.ndarray, d: np.ndarray, face: np.ndarray, axis: int, door_lo: np.ndarray | None = None, door_hi=None
) -> np.ndarray:
    """(N,) fraction t in (0, 1] of each move p -> p + d at which it reaches `face` (a line across
    `axis`, per dot), inf where it does not, or where it passes through the door [door_lo, door_hi] on
    the other axis (NaN door_lo: no door in that face). A dot already on the face and leaving it does
    not cross it; the hit point comes from the move itself, so axis-parallel moves are exact."""
    start, step = p[:, axis], d[:, axis]
    crosses = (start != face) & ((start - face) * (start + step - face) <= 0)
    t = np.where(crosses, (face - start) / np.where(crosses, step, 1.0), np.inf)
    if door_lo is not None:
        other = p[:, 1 - axis] + np.where(crosses, t, 0.0) * d[:, 1 - axis]
        t = np.where((other >= door_lo) & (other <= door_hi), np.inf, t)  # NaN door_lo compares False
    return t
