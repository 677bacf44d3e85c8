"""Datasets: collection (collect.py), the zarr layout (store.py) and training windows (windows.py)."""

from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.data.windows import Normalizer, TrajectoryWindows, WindowSpec, split_episodes

__all__ = ["DatasetError", "Normalizer", "TrajectoryStore", "TrajectoryWindows", "WindowSpec", "split_episodes"]
