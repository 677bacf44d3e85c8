"""Per-feature statistics in LeRobot's meta/stats.json form (keys as in huggingface/lerobot's
compute_stats.py: min, max, mean, std, count and the quantiles q01, q10, q50, q90, q99).

Vectors give one value per dimension (shape (n,); a scalar column (1,)). Images give one value per
channel with shape (3, 1, 1), in [0, 1] (pixel / 255), as LeRobot normalises them; their quantiles come
exactly from a 256-bin histogram per channel, since the pixels are uint8. Video features are images here:
their stats come from the frames before encoding, as LeRobot computes them from the frames it encodes.

Each episode's stats also go into its row of meta/episodes, one column per feature and stat
("stats/<feature>/<stat>"), as LeRobot's save_episode flattens them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


class FeatureStats:
    """Accumulates one feature over episodes; `result()` gives its stats as JSON-ready lists."""

    def __init__(self, image: bool):
        self.image = image
        self.parts: list[np.ndarray] = []
        self.histogram = np.zeros((3, 256), dtype=np.int64)
        self.frames = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        self.frames += len(values)
        if self.image:  # (T, H, W, 3) uint8
            for c in range(3):
                self.histogram[c] += np.bincount(values[..., c].reshape(-1), minlength=256)
        else:
            self.parts.append(values.reshape(len(values), -1).astype(np.float64))

    def merge(self, other: FeatureStats) -> None:
        """Take in the values `other` accumulated (an episode's, into the dataset's)."""
        self.parts += other.parts
        self.histogram += other.histogram
        self.frames += other.frames

    def result(self) -> dict[str, Any]:
        if self.image:
            return self._image_result()
        values = np.concatenate(self.parts) if self.parts else np.zeros((0, 1))
        if len(values) == 0:
            return {"count": [0]}
        out = {
            "min": values.min(axis=0),
            "max": values.max(axis=0),
            "mean": values.mean(axis=0),
            "std": values.std(axis=0),
        }
        for q in QUANTILES:
            out[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
        return {"count": [len(values)], **{k: v.tolist() for k, v in out.items()}}

    def _image_result(self) -> dict[str, Any]:
        counts = self.histogram
        total = counts.sum(axis=1)
        if not total.all():
            return {"count": [0]}
        levels = np.arange(256) / 255.0
        mean = (counts * levels).sum(axis=1) / total
        std = np.sqrt((counts * (levels - mean[:, None]) ** 2).sum(axis=1) / total)
        cumulative = np.cumsum(counts, axis=1)
        out = {
            "min": np.array([levels[np.flatnonzero(c)[0]] for c in counts]),
            "max": np.array([levels[np.flatnonzero(c)[-1]] for c in counts]),
            "mean": mean,
            "std": std,
        }
        for q in QUANTILES:  # the smallest level whose cumulative count reaches the quantile's share
            out[f"q{round(q * 100):02d}"] = np.array(
                [levels[np.searchsorted(cum, q * n)] for cum, n in zip(cumulative, total)]
            )
        shaped = {k: v.reshape(3, 1, 1).tolist() for k, v in out.items()}
        return {"count": [self.frames], **shaped}  # LeRobot counts images, not pixels


def episode_stats_columns(stats: dict[str, FeatureStats]) -> dict[str, Any]:
    """An episode's stats as the columns of its meta/episodes row: {"stats/<feature>/<stat>": value}."""
    return {f"stats/{name}/{key}": value for name, s in stats.items() for key, value in s.result().items()}
