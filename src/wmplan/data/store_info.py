"""What `wmplan info` reports of a dataset: its summary (counts, arrays, value ranges) and, with --verify,
every chunk file checked. Training runs the cheap form of that check (files present, not decoded), since
zarr reads a missing chunk file as zeros.

Example:
    >>> store = TrajectoryStore.open("data/wall")                       # doctest: +SKIP
    >>> summary(store)["episodes"], chunk_problems(store)               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
import zarr

if TYPE_CHECKING:
    from wmplan.data.store import TrajectoryStore


def chunk_problems(store: TrajectoryStore, decode: bool = True) -> list[str]:
    """Every chunk of every data array holding finished frames, checked: its file present (zarr
    would read a missing one as zeros) and, with `decode`, decodable. One line per bad chunk, naming
    the array, the chunk file, its frames and their episodes; empty if all is well."""
    problems = []
    ends = store.episode_ends
    all_written = bool(store.group.attrs.get("every_chunk_written"))  # older stores skipped empty chunks
    for key in store.keys:
        array = _data_array(store, key)
        step = array.chunks[0]
        if 0 in array.shape[1:]:  # frames of no numbers (no proprioception): no chunk files at all
            continue
        for i in range(-(-store.n_frames // step)):
            name = array.metadata.encode_chunk_key((i,) + (0,) * (array.ndim - 1))
            first, last = i * step, min((i + 1) * step, store.n_frames) - 1
            where = (
                f"data/{key} chunk {name} (frames {first}-{last}, episodes "
                f"{int(np.searchsorted(ends, first, side='right'))}-{int(np.searchsorted(ends, last, side='right'))})"
            )
            if not (store.path / "data" / key / name).is_file():
                if all_written:
                    problems.append(f"{where}: missing")
                continue
            if decode:
                try:
                    array[first : last + 1]
                except Exception as exc:  # the codec's own error types
                    problems.append(f"{where}: cannot be decoded ({type(exc).__name__}: {exc})")
    return problems


def summary(store: TrajectoryStore) -> dict[str, Any]:
    """What `wmplan info` prints: counts, arrays, and value ranges of actions and states."""
    ends = store.episode_ends
    lengths = np.diff(np.concatenate([[0], ends]))
    arrays: dict[str, dict[str, Any]] = {
        k: {"shape": list(_data_array(store, k).shape), "dtype": str(_data_array(store, k).dtype)} for k in store.keys
    }
    for k in arrays:
        arrays[k]["shape"][0] = store.n_frames
    action, state = store.read("action")[store.action_applied()], store.read("state")
    out: dict[str, Any] = {
        "path": str(store.path),
        "task": store.task_name,
        "episodes": store.n_episodes,
        "frames": store.n_frames,
        "episode_length": {"min": int(lengths.min()), "max": int(lengths.max())} if len(lengths) else None,
        "unfinished_frames": store.unfinished_frames,
        "arrays": arrays,
        "action_range": _ranges(action),
        "state_range": _ranges(state),
        "task_settings": store.task_settings,
        "collector": store.attrs.get("collector", {}),
    }
    return out


def _data_array(store: TrajectoryStore, key: str) -> zarr.Array:
    """data/<key>, which the store's validation found to be an array (zarr types a group's member as
    array or group)."""
    return cast(zarr.Array, store.group[f"data/{key}"])


def _ranges(values: np.ndarray) -> dict[str, list[float]] | None:
    """Per column min and max over the rows that are all finite, rounded for reading; None without any."""
    finite = values[np.all(np.isfinite(values), axis=1)] if len(values) else values  # (first-format NaN)
    if len(finite) == 0:
        return None
    return {"min": finite.min(axis=0).round(4).tolist(), "max": finite.max(axis=0).round(4).tolist()}
