"""Anti-aliased PushT images drawn in numpy, for N states at once.

Each pixel's coverage by a shape comes from the signed distance of its centre to the shape (a box's
distance is max(|x| - half width, |y| - half height) in the box frame, exact inside and along the edges):
coverage = clamp(0.5 - distance / pixel size, 0, 1). The T is the union of its two boxes (the minimum of
their distances), evaluated on the pixel grid mapped into each block's frame, so one rotation per copy
handles every pixel. Coverages are quantised to `LEVELS` steps and a lookup table holds the blended
colour of every (wall, block, agent) coverage triple, which turns compositing into a single gather.
"""

from __future__ import annotations

import numpy as np

LEVELS = 16
BACKGROUND = (255, 255, 255)
WALL_COLOR = (211, 211, 211)  # diffusion policy's LightGray
BLOCK_COLOR = (119, 136, 153)  # LightSlateGray
AGENT_COLOR = (65, 105, 225)  # RoyalBlue


def _colour_table() -> np.ndarray:
    """(17**3, 4) uint8 RGBA: the colour of wall, block and agent coverages composited over the table."""
    level = np.arange(LEVELS + 1) / LEVELS
    w, b, a = np.meshgrid(level, level, level, indexing="ij")
    rgb = np.array(BACKGROUND, float)
    rgb = rgb * (1 - w[..., None]) + np.array(WALL_COLOR) * w[..., None]
    rgb = rgb * (1 - b[..., None]) + np.array(BLOCK_COLOR) * b[..., None]
    rgb = rgb * (1 - a[..., None]) + np.array(AGENT_COLOR) * a[..., None]
    out = np.zeros((rgb.shape[0] ** 3, 4), np.uint8)
    out[:, :3] = np.round(rgb.reshape(-1, 3))
    return out


class PushTRenderer:
    """Draws states of a `world`-unit square into `size` x `size` RGB images."""

    def __init__(self, size: int, world: float, boxes, agent_radius: float, walls, wall_radius: float):
        self.size = size
        self.boxes = boxes
        self.agent_radius = agent_radius
        self.px = px = size / world  # pixels per world unit
        self.centres = ((np.arange(size) + 0.5) / px).astype(np.float32)  # pixel centres in world units
        # level = round(LEVELS * (0.5 - distance * px)), written as offset - distance * gain.
        self.gain = np.float32(LEVELS * px)
        self.offset = np.float32(LEVELS * 0.5 + 0.5)
        self.table = _colour_table()[:, :3].copy()
        wall_level = self._levels(self._wall_distance(walls, wall_radius))
        self.base = wall_level.astype(np.int32) * (LEVELS + 1) ** 2  # (H, W) static part of the index
        # Each shape is drawn in a square window around its origin that holds every pixel it can touch.
        block_reach = max(np.hypot(abs(cx) + hx, abs(cy) + hy) for cx, cy, hx, hy in boxes)
        self.block_window = self._window(block_reach)
        self.agent_window = self._window(agent_radius)

    def _window(self, reach: float) -> int:
        return min(self.size, 2 * (int(np.ceil(reach * self.px)) + 1) + 1)

    def _levels(self, distance: np.ndarray) -> np.ndarray:
        level = self.offset - distance * self.gain
        np.clip(level, 0, LEVELS, out=level)
        return level.astype(np.int32)

    def _wall_distance(self, walls, radius: float) -> np.ndarray:
        x, y = np.meshgrid(self.centres, self.centres)  # (H, W): rows are y
        dist = np.full(x.shape, np.inf, np.float32)
        for (ax, ay), (bx, by) in walls:
            seg = np.array([bx - ax, by - ay], float)
            t = np.clip(((x - ax) * seg[0] + (y - ay) * seg[1]) / (seg @ seg), 0, 1)
            dist = np.minimum(dist, np.hypot(x - ax - t * seg[0], y - ay - t * seg[1]) - radius)
        return dist

    def _grid(self, xy: np.ndarray, window: int):
        """Top-left pixel (N, 2) [col, row] of the window around each point, and the offsets (world units)
        of its pixel centres from the point, along x (N, 1, window) and y (N, window, 1). A window sliding
        past the image's edge is pushed back inside: it still holds every visible pixel of the shape."""
        corner = np.floor(xy * self.px).astype(np.int64) - window // 2
        corner = np.clip(corner, 0, self.size - window)
        offsets = self.centres[corner[:, None, :] + np.arange(window)[None, :, None]] - xy[:, None, :].astype(
            np.float32
        )
        return corner, offsets[:, None, :, 0], offsets[:, :, None, 1]

    def _paste(self, index: np.ndarray, corner: np.ndarray, values: np.ndarray) -> None:
        """Add windows `values` (N, w, w) into `index` (N, H, W) at their corners [col, row]. Large
        windows go one contiguous slice per copy; small ones in one scatter, which then costs less than
        the Python loop."""
        n, w = len(values), values.shape[-1]
        if w > 12:
            for i, (col, row) in enumerate(corner.tolist()):
                index[i, row : row + w, col : col + w] += values[i]
            return
        span = np.arange(w)
        rows = corner[:, 1, None, None] + span[None, :, None]
        cols = corner[:, 0, None, None] + span[None, None, :]
        flat = (np.arange(n)[:, None, None] * self.size + rows) * self.size + cols
        index.reshape(-1)[flat] += values

    def draw(self, agent_xy: np.ndarray, block_xy: np.ndarray, angle: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) from agent positions (N, 2), block positions (N, 2) and angles (N,)."""
        n = len(angle)
        index = np.repeat(self.base[None], n, axis=0)
        corner, dx, dy = self._grid(np.asarray(block_xy, float), self.block_window)
        cos, sin = np.cos(angle).astype(np.float32)[:, None, None], np.sin(angle).astype(np.float32)[:, None, None]
        # Pixel centres in each block's frame: world = pos + R(angle) local, so local = R(-angle)(world - pos).
        lx = np.abs(cos * dx + sin * dy)  # both boxes are centred on x = 0
        ly = cos * dy - sin * dx
        dist: np.ndarray | None = None
        for _, cy, hx, hy in self.boxes:
            d = np.maximum(lx - hx, np.abs(ly - cy) - hy)
            dist = d if dist is None else np.minimum(dist, d, out=dist)
        assert dist is not None  # the T has boxes
        self._paste(index, corner, self._levels(dist) * (LEVELS + 1))
        corner, dx, dy = self._grid(np.asarray(agent_xy, float), self.agent_window)
        self._paste(index, corner, self._levels(np.sqrt(dx**2 + dy**2) - self.agent_radius))
        return np.take(self.table, index, axis=0)
