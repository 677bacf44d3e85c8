"""Trajectory datasets on disk: a zarr group (format 2) in diffusion policy's replay-buffer layout.

    PATH/
      data/obs        uint8   (T, H, W, 3)  rendered observations, episodes concatenated over time
      data/state      float32 (T, S)        simulator state
      data/proprio    float32 (T, P)        proprioception
      data/action     float32 (T, A)        env action applied at frame t; zeros on each episode's last
                                            frame, where no action follows (`action_applied` is the mask)
      data/<extra>    any     (T, ...)      optional per-frame arrays (e.g. Wall's random layout)
      meta/episode_ends int64 (E,)          exclusive end frame of each finished episode
      attrs: format, task, task_settings, image_size, dims, collector

The group is written as zarr format 2, which zarr 2 and 3 both read, and so does diffusion policy's
`ReplayBuffer`. Datasets of the first format (zarr format 3, NaN as each episode's last action) still open:
`read` and `episode` give their last actions as zeros too.

Episodes are appended one at a time (or a few at once): the data arrays first, `meta/episode_ends`
last, and zarr writes each chunk atomically. A collection killed mid-way therefore leaves every finished episode readable;
frames past the last recorded end belong to an unfinished episode and are ignored (and dropped by the
next append).

Example:
    >>> store = TrajectoryStore.open("data/wall", task="wall")     # doctest: +SKIP
    >>> store.n_episodes, store.read("action").shape               # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from wmplan.data import store_info
from wmplan.writing import LOCK_NAME, WriterLock, claim_folder

FORMAT = "wmplan.trajectories/2"
READABLE_FORMATS = ("wmplan.trajectories/1", FORMAT)  # 1: zarr format 3, NaN last actions
ZARR_FORMAT = 2  # the version diffusion policy's ReplayBuffer (zarr 2) and zarr 3 both read
REQUIRED_KEYS = ("obs", "state", "proprio", "action")
LOW_DIM_CHUNK_EPISODES = 64  # small arrays share chunks across episodes: fewer, larger files
ABSURD = 1e6  # no task's state, proprio or action comes near this: a value beyond it is a bug upstream


class _AbandonedZarrWrites(logging.Filter):
    """zarr writes a chunk's pieces as concurrent tasks on its own event loop. When one fails (a full disk),
    its error reaches the caller, which reports it; the sibling tasks it abandoned are still pending when the
    process exits, and asyncio would print each of them, with tracebacks, after the command's one-line error.
    They carry nothing the caller has not been told, so only they are dropped."""

    ABANDONED = ("Task was destroyed but it is pending!", "Task exception was never retrieved")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith(self.ABANDONED) and "zarr" in message)


logging.getLogger("asyncio").addFilter(_AbandonedZarrWrites())


class DatasetError(ValueError):
    """A dataset on disk is missing, corrupt, or not what the caller expected."""


def check_replaceable(path: Path) -> None:
    """Refuse to replace (collect --overwrite) anything but a wmplan dataset: not a plain file, not a
    folder of other files, never the current folder or one above it."""
    here = Path.cwd().resolve()
    target = path.resolve()
    if target == here or target in here.parents:
        raise DatasetError(
            f"--overwrite would delete {path}, which holds the current folder; give the dataset its own --out"
        )
    if path.is_file():
        raise DatasetError(
            f"{path} is a file, not a dataset; --overwrite only replaces a wmplan dataset: choose another --out"
        )
    try:
        is_dataset = zarr.open_group(str(path), mode="r").attrs.get("format") in READABLE_FORMATS
    except Exception:  # not a zarr group at all
        is_dataset = False
    if not is_dataset:
        raise DatasetError(
            f"{path} holds files that are not a wmplan dataset; --overwrite only replaces a wmplan dataset: "
            f"remove the folder yourself or choose another --out"
        )


class TrajectoryStore:
    """A replay-buffer zarr group of episodes; see the module docstring for the layout."""

    def __init__(self, group: zarr.Group, path: Path, lock: WriterLock | None = None):
        self.group = group
        self.path = path
        self.lock = lock  # held by a store opened for writing: one writer per dataset
        self._writer: tuple | None = None

    # ----- creating and opening -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        task: Any,
        *,
        frames_per_episode: int,
        extra_keys: dict[str, tuple[tuple[int, ...], str]] | None = None,
        collector: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> TrajectoryStore:
        """A new empty store for `task` (anything with the Task attributes), holding the path's writer
        lock. Refuses a non-empty path unless `overwrite`, and even then anything but a wmplan dataset
        (see `check_replaceable`); `frames_per_episode` sets the time chunk of the image array."""
        path = Path(path)
        if path.is_file() or (path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())):
            if not overwrite:
                raise DatasetError(
                    f"{path} already exists and is not empty; pass --overwrite to replace it "
                    f"or --append to add episodes to it"
                )
            check_replaceable(path)
        lock = claim_folder(path, "the dataset")
        for child in path.iterdir():  # the old dataset, now that no one else writes it; the lock stays
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        group = zarr.open_group(str(path), mode="a", zarr_format=ZARR_FORMAT)
        size = task.image_size
        shapes = {
            "obs": ((size, size, 3), "uint8"),
            "state": ((task.state_dim,), "float32"),
            "proprio": ((task.proprio_dim,), "float32"),
            "action": ((task.action_dim,), "float32"),
            **(extra_keys or {}),
        }
        for key, (shape, dtype) in shapes.items():
            t_chunk = frames_per_episode if key == "obs" else frames_per_episode * LOW_DIM_CHUNK_EPISODES
            group.create_array(f"data/{key}", shape=(0, *shape), chunks=(t_chunk, *shape), dtype=dtype)
        group.create_array("meta/episode_ends", shape=(0,), chunks=(4096,), dtype="int64", fill_value=-1)
        group.attrs.update(
            {
                "format": FORMAT,
                "task": task.name,
                "task_settings": task.settings,
                "image_size": size,
                "state_dim": task.state_dim,
                "proprio_dim": task.proprio_dim,
                "action_dim": task.action_dim,
                "collector": collector or {},
                "every_chunk_written": True,  # see append_episodes: a chunk file missing on disk is damage
            }
        )
        return cls(group, path, lock)

    @classmethod
    def open(cls, path: str | Path, *, mode: str = "r", task: str | None = None) -> TrajectoryStore:
        """Open and validate a store; `task` (a task name) makes data of another task an error. A
        writer (mode "r+") takes the dataset's writer lock: a second one is refused; readers never wait."""
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"no dataset at {path}; make one with `wmplan collect --env wall --out {path}`")
        lock = claim_folder(path, "the dataset") if mode != "r" else None
        try:
            group = zarr.open_group(str(path), mode=mode)
        except Exception as exc:  # zarr raises several types for a folder that is not a group
            for name in (".zgroup", ".zattrs", "zarr.json"):  # a damaged metadata file: name it
                meta = path / name
                try:
                    json.loads(meta.read_text()) if meta.exists() else None
                except (ValueError, OSError) as bad:
                    raise DatasetError(
                        f"{meta} is damaged ({bad}); the dataset's metadata cannot be read: collect it again"
                    ) from None
            raise DatasetError(
                f"{path} is not a zarr dataset ({exc}); collect a new one with `wmplan collect`"
            ) from exc
        store = cls(group, path, lock)
        store.validate(task)
        return store

    def validate(self, task: str | None = None) -> None:
        """Raise DatasetError naming what is wrong: format, task, a missing array, lengths, shapes."""
        attrs = self.group.attrs
        if attrs.get("format") not in READABLE_FORMATS:
            raise DatasetError(
                f"{self.path} is not a wmplan dataset (attrs 'format' is {attrs.get('format')!r}, expected one of "
                f"{READABLE_FORMATS}); `wmplan import` converts datasets of other tools"
            )
        if task is not None and attrs.get("task") != task:
            raise DatasetError(
                f"{self.path} holds data of task {attrs.get('task')!r}, not {task!r}; collect {task} data or pick the matching --env"
            )
        for key in (*(f"data/{k}" for k in REQUIRED_KEYS), "meta/episode_ends"):
            if key not in self.group:
                raise DatasetError(f"{self.path} lacks the array {key}; the dataset is incomplete: collect it again")
        size = attrs["image_size"]
        expected = {
            "obs": (size, size, 3),
            "state": (attrs["state_dim"],),
            "proprio": (attrs["proprio_dim"],),
            "action": (attrs["action_dim"],),
        }
        for key, shape in expected.items():
            actual = self.group[f"data/{key}"].shape[1:]
            if tuple(actual) != shape:
                raise DatasetError(f"{self.path}: data/{key} has frames of shape {tuple(actual)}, attrs say {shape}")
        ends = self.episode_ends
        for key in self.keys:
            length = self.group[f"data/{key}"].shape[0]
            if len(ends) and length < ends[-1]:
                raise DatasetError(
                    f"{self.path}: data/{key} has {length} frames but meta/episode_ends needs {ends[-1]}; "
                    f"the arrays have inconsistent lengths (a corrupt store): collect it again"
                )

    # ----- reading --------------------------------------------------------------------------------
    @property
    def keys(self) -> list[str]:
        return sorted(self.group["data"].array_keys())

    @property
    def task_name(self) -> str:
        return self.group.attrs["task"]

    @property
    def task_settings(self) -> dict[str, Any]:
        return dict(self.group.attrs["task_settings"])

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    @property
    def episode_ends(self) -> np.ndarray:
        """Ends of the finished episodes: the strictly increasing prefix of meta/episode_ends
        (an entry left unwritten by an interrupted append reads as the fill value -1)."""
        raw = self.group["meta/episode_ends"][:]
        prev = np.concatenate([[0], raw[:-1]])
        bad = np.flatnonzero(raw <= prev)
        return raw[: bad[0]] if len(bad) else raw

    @property
    def n_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def n_frames(self) -> int:
        ends = self.episode_ends
        return int(ends[-1]) if len(ends) else 0

    @property
    def unfinished_frames(self) -> int:
        """Frames written past the last finished episode (a collection interrupted mid-episode)."""
        return max(self.group[f"data/{k}"].shape[0] for k in self.keys) - self.n_frames

    def read(self, key: str, episodes: np.ndarray | None = None) -> np.ndarray:
        """All frames of `key` for the finished episodes (or the given episode indices), concatenated."""
        if key not in self.keys:
            raise DatasetError(f"{self.path} has no array data/{key}; it has {self.keys}")
        try:
            everything = self.group[f"data/{key}"][: self.n_frames]  # one read: far faster than one per episode
        except Exception as exc:  # the codec's own error types
            raise DatasetError(
                f"{self.path}: data/{key} cannot be decoded ({exc}); `wmplan info --verify {self.path}` "
                f"lists the damaged chunks; collect the dataset again"
            ) from exc
        if key == "action":
            everything[~self.action_applied()] = 0  # the first format stored NaN there
        if episodes is None:
            return everything
        return np.concatenate([everything[s:e] for s, e in self.episode_bounds(episodes)])

    def read_frames(self, key: str, frames: np.ndarray) -> np.ndarray:
        """The rows `frames` (global frame indices, any shape) of data/`key`, read alone: the chunks that
        hold them are decoded, the rest of the array is not."""
        unique, inverse = np.unique(np.asarray(frames).ravel(), return_inverse=True)
        rows = self.group[f"data/{key}"].get_orthogonal_selection((unique,))
        return rows[inverse].reshape(*np.shape(frames), *rows.shape[1:])

    def action_applied(self) -> np.ndarray:
        """Per finished frame, whether its action was applied: False on each episode's last frame, whose
        stored action is padding (zeros)."""
        applied = np.ones(self.n_frames, bool)
        applied[self.episode_ends - 1] = False
        return applied

    def episode_bounds(self, episodes: np.ndarray | None = None) -> list[tuple[int, int]]:
        ends = self.episode_ends
        starts = np.concatenate([[0], ends[:-1]])
        idx = np.arange(len(ends)) if episodes is None else np.asarray(episodes)
        return [(int(starts[i]), int(ends[i])) for i in idx]

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Every array of episode i."""
        if not 0 <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range: {self.path} has {self.n_episodes} finished episodes")
        ((s, e),) = self.episode_bounds(np.array([i]))
        arrays = {k: self.group[f"data/{k}"][s:e] for k in self.keys}
        arrays["action"][-1] = 0  # padding; the first format stored NaN there
        return arrays

    def fingerprint(self) -> str:
        """A short hash of the episode ends, states and actions: enough to tell datasets apart (a run
        records its dataset's, so a moved or replaced dataset is recognised)."""
        h = hashlib.sha256(self.episode_ends.tobytes())
        action = self.read("action")
        action[~self.action_applied()] = np.nan  # hashed as the first format stored it: runs keep their match
        for values in (self.read("state"), action):
            h.update(np.ascontiguousarray(values).tobytes())
        return h.hexdigest()[:16]

    def chunk_problems(self, decode: bool = True) -> list[str]:
        """One line per missing (or, with `decode`, undecodable) chunk file; see store_info.chunk_problems."""
        return store_info.chunk_problems(self, decode)

    # ----- writing --------------------------------------------------------------------------------
    def append_episode(self, episode: dict[str, np.ndarray]) -> None:
        """Append one episode: every data key, each (T, ...) with the same T >= 2."""
        self.append_episodes([episode])

    def append_episodes(self, episodes: list[dict[str, np.ndarray]]) -> None:
        """Append several episodes with one write per array, then commit their ends together: an
        interrupted call loses these episodes only, never one committed before. Each episode's last
        action is not applied by anyone: whatever the caller passes there (NaN, say) is stored as zeros."""
        if self._writer is None:  # array handles and counts, cached: appends stay cheap
            # Every chunk is written, even one equal to the fill value (zarr skips those by default), so
            # that `chunk_problems` can tell a deleted chunk file from an empty one.
            arrays = {k: self.group[f"data/{k}"].with_config({"write_empty_chunks": True}) for k in self.keys}
            self._writer = (arrays, self.group["meta/episode_ends"], self.n_episodes, self.n_frames)
        arrays, ends, n, start = self._writer
        lengths = []
        for episode in episodes:
            missing, unknown = set(arrays) - set(episode), set(episode) - set(arrays)
            if missing or unknown:
                raise DatasetError(f"append_episode: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
            sizes = {k: len(v) for k, v in episode.items()}
            if len(set(sizes.values())) != 1 or sizes["obs"] < 2:
                raise DatasetError(f"append_episode: all arrays need the same length >= 2, got {sizes}")
            for key in ("state", "proprio", "action"):
                values = episode[key][:-1] if key == "action" else episode[key]  # the last action is padding
                if not np.all(np.abs(values) < ABSURD):  # also false for NaN and Inf
                    raise DatasetError(
                        f"episode {n + len(lengths)}: data/{key} holds a non-finite value or one beyond "
                        f"{ABSURD:g}; nothing of this append was written"
                    )
            for key, array in arrays.items():
                if episode[key].shape[1:] != array.shape[1:]:
                    raise DatasetError(
                        f"episode {n + len(lengths)}: data/{key} frames have shape {episode[key].shape[1:]}, but "
                        f"this dataset stores {array.shape[1:]} (its task settings); nothing of this append was written"
                    )
            lengths.append(sizes["obs"])
        total = sum(lengths)
        for key, array in arrays.items():  # data first ...
            values = np.concatenate([episode[key] for episode in episodes])
            if key == "action":
                values[np.cumsum(lengths) - 1] = 0
            array.resize((start + total, *array.shape[1:]))
            array[start:] = values
        ends.resize((n + len(episodes),))  # ... then the commit point
        ends[n:] = start + np.cumsum(lengths)
        self._writer = (arrays, ends, n + len(episodes), start + total)

    # ----- summary --------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What `wmplan info` prints: counts, arrays, and value ranges of actions and states."""
        return store_info.summary(self)


def open_run_dataset(
    run: str | Path, recorded: dict[str, Any], task: str, path: str | Path | None = None
) -> TrajectoryStore:
    """The dataset a run was trained on. `recorded` is the run's config.json "dataset" entry (path,
    fingerprint); `path` points a run whose dataset moved at it. Another dataset is refused."""
    where = Path(path if path is not None else recorded["path"])
    if not where.exists():
        raise DatasetError(
            f"{run} was trained on {recorded['path']}, which is gone; pass --data PATH to point the run at "
            f"its dataset where it is now"
        )
    store = TrajectoryStore.open(where, task=task)
    if recorded.get("fingerprint") not in (None, store.fingerprint()):
        raise DatasetError(
            f"{where} is not the dataset {run} was trained on ({recorded['path']}: its episodes differ); "
            f"pass --data with that dataset"
        )
    return store
