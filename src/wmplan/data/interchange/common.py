"""What every exporter and importer shares: pyarrow on demand, PNG frames, output folders, and the checks
and the write that turn foreign arrays into a wmplan dataset.

wmplan's own convention, which every format module keeps: frame t of an episode holds the observation,
state and proprio at t and the action applied at t; the last frame has no action after it, so its action
is padding. Importers store it as zeros; exporters write zeros and mark the frame (LeRobot's `next.done`,
the Hugging Face layout's `action_is_pad`).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.store import REQUIRED_KEYS, DatasetError, TrajectoryStore
from wmplan.writing import LOCK_NAME, is_empty

META_FORMAT = "wmplan.interchange/1"  # the `format` of the wmplan metadata an export carries


def require_pyarrow() -> tuple[Any, Any]:
    """(pyarrow, pyarrow.parquet), or a RuntimeError that says how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise RuntimeError(
            f"reading and writing parquet needs pyarrow ({exc}); install it with `pip install pyarrow` "
            "or `pip install wmplan[interchange]`"
        ) from exc
    return pa, pq


def png_bytes(frame: np.ndarray) -> bytes:
    """uint8 (H, W, 3) -> PNG: lossless, so an export reads back bit for bit, and no video codec is needed."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=1)  # level 1: fast, barely larger
    return buffer.getvalue()


def png_frame(data: bytes, where: str) -> np.ndarray:
    """PNG (or any image PIL reads) -> uint8 (H, W, 3)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as exc:  # PIL raises several types for a bad image
        raise DatasetError(f"{where}: an image cannot be decoded ({exc}); the export is damaged") from exc


# ----- exporting -----------------------------------------------------------------------------------
def store_meta(store: TrajectoryStore) -> dict[str, Any]:
    """The wmplan metadata an export carries so that importing it back gives the same dataset."""
    attrs = store.attrs
    data: Any = store.group["data"]  # zarr types a member as Array | Group
    extras = {
        key: {"shape": list(data[key].shape[1:]), "dtype": str(data[key].dtype)}
        for key in store.keys
        if key not in REQUIRED_KEYS
    }
    return {
        "format": META_FORMAT,
        "task": store.task_name,
        "task_settings": store.task_settings,
        "image_size": attrs["image_size"],
        "state_dim": attrs["state_dim"],
        "proprio_dim": attrs["proprio_dim"],
        "action_dim": attrs["action_dim"],
        "extras": extras,
        "episodes": store.n_episodes,
        "frames": store.n_frames,
        "fingerprint": store.fingerprint(),
        "collector": attrs.get("collector", {}),
    }


def store_episodes(store: TrajectoryStore) -> Iterator[dict[str, np.ndarray]]:
    """Each finished episode's arrays, its last action set to zeros (older stores hold NaN there)."""
    for i in range(store.n_episodes):
        episode = store.episode(i)
        episode["action"] = episode["action"].copy()
        episode["action"][-1] = 0.0
        yield episode


def is_pad(length: int) -> np.ndarray:
    """bool (T,): True on the last frame, whose action is padding."""
    flags = np.zeros(length, dtype=bool)
    flags[-1] = True
    return flags


def staging_folder(out: Path, *, overwrite: bool, source: Path, looks_like: Callable[[Path], bool], kind: str) -> Path:
    """Check `out` and return an empty folder beside it to write the export into; `publish` then moves
    it into place, so an interrupted export leaves `out` as it was. A non-empty `out` is refused unless
    `overwrite`, and even then unless it holds a `kind` export (`looks_like`)."""
    out, source = Path(out), Path(source)
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise DatasetError(f"--out {out} lies inside the dataset {source}; choose a folder outside it")
    if out.is_file():
        raise DatasetError(f"--out {out} is a file; choose a folder for the {kind} export")
    if not is_empty(out):
        if not overwrite:
            raise DatasetError(f"{out} already exists and is not empty; pass --overwrite to replace it")
        here = Path.cwd().resolve()
        if out.resolve() == here or out.resolve() in here.parents:
            raise DatasetError(f"--overwrite would delete {out}, which holds the current folder; choose another --out")
        if not looks_like(out):
            raise DatasetError(
                f"{out} holds files that are not a {kind} export; --overwrite only replaces a {kind} export: "
                "remove the folder yourself or choose another --out"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_path(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def staging_path(out: Path) -> Path:
    """Where an export to `out` is written until `publish` moves it there (removed if the export fails)."""
    return out.parent / f".{out.name}.tmp-{os.getpid()}"


def publish(staging: Path, out: Path) -> None:
    """Move a finished export into place, replacing what `staging_folder` allowed to be replaced."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if (out / LOCK_NAME).exists():  # a writer lock held on `out` stays held on the new folder
        os.replace(out / LOCK_NAME, staging / LOCK_NAME)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


# ----- importing -----------------------------------------------------------------------------------
def resolve_task(env: str | None, settings: dict[str, Any] | None, what: str):
    """The wmplan Task to import into; `what` names where `env` came from in messages."""
    from wmplan.envs import make_task

    if not env:
        raise DatasetError(f"{what} names no wmplan task; pass --env (wall, pointmaze, pusht, rope or granular)")
    try:
        return make_task(env, settings or {})
    except ValueError as exc:
        raise DatasetError(f"{exc} (from {what})") from exc


def uint8_frames(images: np.ndarray, where: str) -> np.ndarray:
    """Frames (T, H, W, 3) or (T, 3, H, W), uint8 or 0-255 floats -> uint8 (T, H, W, 3)."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] != 3 and images.shape[1] == 3:
        images = np.moveaxis(images, 1, -1)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DatasetError(f"{where}: images of shape {images.shape}; expected RGB frames (T, H, W, 3) or (T, 3, H, W)")
    if images.dtype == np.uint8:
        return images
    values = images.astype(np.float32)
    if not np.all((values >= 0) & (values <= 255)):  # also false for NaN
        raise DatasetError(f"{where}: image values outside 0..255 (or NaN); expected uint8 or 0-255 floats")
    return np.rint(values).astype(np.uint8)


def fit_frames(images: np.ndarray, size: int, resize: bool, where: str, task_name: str) -> np.ndarray:
    """uint8 (T, H, W, 3) at the task's size: as they are, resized when `resize`, else refused."""
    height, width = images.shape[1:3]
    if (height, width) == (size, size):
        return images
    if not resize:
        same = f", or --task-set image_size={height} to keep them as they are" if height == width else ""
        raise DatasetError(
            f"{where}: images are {height}x{width} but {task_name} renders {size}x{size}; "
            f"pass --resize to resize them{same}"
        )
    from PIL import Image

    # BOX averages the source pixels under each target pixel (area resampling) when shrinking
    method = Image.Resampling.BOX if height > size else Image.Resampling.BILINEAR
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), method)) for f in images])


def check_dims(task, episode: dict[str, np.ndarray], where: str, hint: str = "") -> None:
    """DatasetError naming a key whose per-frame width differs from the task's."""
    for key, width in (("state", task.state_dim), ("proprio", task.proprio_dim), ("action", task.action_dim)):
        values = episode[key]
        if values.ndim != 2 or values.shape[1] != width:
            got = values.shape[1:] if values.ndim >= 2 else "scalar"
            raise DatasetError(
                f"{where}: {key} has frames of shape {got}, but {task.name}'s {key} has {width} numbers{hint}"
            )


def finish_episode(task, episode: dict[str, np.ndarray], where: str, resize: bool) -> dict[str, np.ndarray]:
    """One foreign episode as the store takes it: uint8 frames at the task's size, float32 vectors with
    proprio from the state where the source has none, checked widths, the last action zeros."""
    out = dict(episode)
    out["obs"] = fit_frames(uint8_frames(episode["obs"], where), task.image_size, resize, where, task.name)
    out["state"] = np.asarray(episode["state"], dtype=np.float32)
    if "proprio" not in out:
        out["proprio"] = np.asarray(task.proprio(out["state"]), dtype=np.float32).reshape(len(out["state"]), -1)
    out["proprio"] = np.asarray(out["proprio"], dtype=np.float32)
    out["action"] = np.array(episode["action"], dtype=np.float32)
    check_dims(task, out, where)
    lengths = {key: len(value) for key, value in out.items()}
    if len(set(lengths.values())) != 1 or lengths["obs"] < 2:
        raise DatasetError(f"{where}: arrays need one length of at least 2 frames, got {lengths}")
    out["action"][-1] = 0.0
    return out


def write_store(
    out: str | Path,
    task,
    episodes: Iterable[dict[str, np.ndarray]],
    *,
    imported_from: str,
    source: str | Path,
    frames_per_episode: int,
    extra_keys: dict[str, tuple[tuple[int, ...], str]] | None = None,
    overwrite: bool = False,
    batch: int = 16,
) -> TrajectoryStore:
    """Write `episodes` (checked by the caller) into a new wmplan dataset at `out`, `batch` at a time. If
    anything fails, a folder this call created is removed, so no half-imported dataset is left behind."""
    out = Path(out)
    if out.resolve() == Path(source).resolve():
        raise DatasetError(f"--out {out} is the source itself; choose another folder")
    if not is_empty(out) and not overwrite:
        raise DatasetError(f"{out} already exists and is not empty; pass --overwrite to replace it")
    fresh = is_empty(out)
    store = TrajectoryStore.create(
        out,
        task,
        frames_per_episode=max(2, frames_per_episode),
        extra_keys=extra_keys,
        collector={"imported_from": imported_from, "source": str(Path(source).resolve())},
        overwrite=overwrite,
    )
    try:
        pending: list[dict[str, np.ndarray]] = []
        for episode in episodes:
            pending.append(episode)
            if len(pending) == batch:
                store.append_episodes(pending)
                pending = []
        if pending:
            store.append_episodes(pending)
        if store.n_episodes == 0:
            raise DatasetError(f"{source} holds no episodes to import")
    except BaseException:
        if store.lock is not None:
            store.lock.release()
        if fresh:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return store
