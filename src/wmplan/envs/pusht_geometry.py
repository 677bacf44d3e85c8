"""PushT's geometry, shared by the task and its scripted pusher: the world's size and the T block's shape.

Block poses are [x, y, angle]: the body origin (the middle of the bar's top edge) and its rotation; in
block-local coordinates the bar spans y in [0, scale] and the stem hangs below it to y = 4 scale.
"""

from __future__ import annotations

import numpy as np

WORLD_SIZE = 512.0


def tee_boxes(scale: float) -> tuple[tuple[float, float, float, float], ...]:
    """The T as two boxes (centre x, centre y, half width, half height) in block-local coordinates."""
    return ((0.0, scale / 2, 2 * scale, scale / 2), (0.0, 2.5 * scale, scale / 2, 1.5 * scale))


def tee_outline(scale: float) -> np.ndarray:
    """(8, 2) corners of the T's outline in block-local coordinates, counter-clockwise on screen."""
    s = scale
    return np.array(
        [(-2 * s, 0), (-2 * s, s), (-s / 2, s), (-s / 2, 4 * s), (s / 2, 4 * s), (s / 2, s), (2 * s, s), (2 * s, 0)],
        float,
    )


def block_distance(points: np.ndarray, block: np.ndarray, scale: float) -> np.ndarray:
    """Signed distance (N, M) from world points (N, M, 2) to the T of block poses (N, 3) [x, y, angle]:
    negative inside. Exact inside and off the faces, a slight underestimate off the corners."""
    cos, sin = np.cos(block[:, 2:3]), np.sin(block[:, 2:3])
    dx, dy = points[..., 0] - block[:, 0:1], points[..., 1] - block[:, 1:2]
    lx, ly = np.abs(cos * dx + sin * dy), cos * dy - sin * dx
    return np.min([np.maximum(lx - hx, np.abs(ly - cy) - hy) for _, cy, hx, hy in tee_boxes(scale)], axis=0)


def rotate(vectors: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Vectors (N, 2) rotated by angles (N,): block-local directions to world ones (y points down)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([cos * vectors[:, 0] - sin * vectors[:, 1], sin * vectors[:, 0] + cos * vectors[:, 1]], axis=1)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles mapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi
