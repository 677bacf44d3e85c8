"""The frames of a selection of episodes, read from the store when indexed rather than held in memory.

Under torchrun each rank trains on its own share of every batch; holding the whole split's frames in each
rank would multiply the dataset's size by the number of ranks. A StoreFrames stands where TrajectoryWindows
keeps its `obs` tensor and reads only the frames asked for, so a rank holds the frames of the batch it is
working on (and records the largest read, the measure of what it held at once).

Example:
    >>> frames = StoreFrames(store, np.array([0, 2]))      # doctest: +SKIP
    >>> frames[torch.tensor([[0, 5], [1, 6]])].shape       # (2, 2, H, W, 3) uint8
"""

from __future__ import annotations

import numpy as np
import torch
import zarr

from wmplan.data.store import TrajectoryStore


class StoreFrames:
    """obs (N, H, W, 3) uint8 of `episodes`, concatenated in their order (as TrajectoryWindows concatenates
    them); indexed by an int, a slice, or an integer array or tensor of any shape, it returns a tensor."""

    def __init__(self, store: TrajectoryStore, episodes: np.ndarray, key: str = "obs"):
        self.store, self.key = store, key
        bounds = store.episode_bounds(episodes)
        self.frames = np.concatenate([np.arange(s, e) for s, e in bounds]) if bounds else np.zeros(0, np.int64)
        array = store.group[f"data/{key}"]
        assert isinstance(array, zarr.Array)
        self.shape = (len(self.frames), *array.shape[1:])
        self.largest_read_bytes = 0  # the most frame bytes one read brought into memory

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int | slice | np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        values = self.store.read_frames(self.key, self.frames[index])
        self.largest_read_bytes = max(self.largest_read_bytes, values.nbytes)
        return torch.from_numpy(values)

    def numpy(self) -> np.ndarray:
        """Every frame at once (what an in-memory split holds)."""
        return self[:].numpy()
