"""Datasets to and from other tools: one module per format, this module dispatches.

    export: lerobot (LeRobot v3.0, images in parquet or as MP4 videos), hf (a Hugging Face `datasets` parquet folder)
    import: lerobot, hf (both: exact for a wmplan export), dinowm (DINO-WM's released folders),
            diffusion-policy (its ReplayBuffer zarr)

Example:
    >>> export_dataset("data/wall", "exports/wall_lerobot", "lerobot")          # doctest: +SKIP
    >>> import_dataset("dino_wm_data/point_maze", "data/pm", "dinowm", env="pointmaze")  # doctest: +SKIP

Parquet needs pyarrow, LeRobot's videos PyAV (`pip install wmplan[interchange]` installs both); each module
imports them only when it runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from wmplan.data.interchange.common import staging_path
from wmplan.data.store import DatasetError, TrajectoryStore

EXPORT_FORMATS = ("lerobot", "hf")
IMPORT_FORMATS = ("lerobot", "hf", "dinowm", "diffusion-policy")


def export_dataset(
    data: str | Path,
    out: str | Path,
    fmt: str,
    *,
    overwrite: bool = False,
    fps: int | None = None,
    frames: str = "png",
) -> Path:
    """Write the wmplan dataset at `data` to `out` in format `fmt`. LeRobot only: `fps` is the frame rate
    (default: the task's render_fps), `frames` "png" (in parquet) or "video" (MP4 files)."""
    if fmt not in EXPORT_FORMATS:
        raise DatasetError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt != "lerobot" and (fps is not None or frames != "png"):
        raise DatasetError(f"--fps and --frames apply to --to lerobot only, not {fmt}")
    store = TrajectoryStore.open(data)
    try:
        if fmt == "lerobot":
            from wmplan.data.interchange.lerobot import export_lerobot

            return export_lerobot(store, out, overwrite=overwrite, fps=fps, frames=frames)
        from wmplan.data.interchange.hf import export_hf

        return export_hf(store, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging_path(Path(out)), ignore_errors=True)  # a failed export leaves no half-written folder
        raise


def import_dataset(
    source: str | Path,
    out: str | Path,
    fmt: str,
    *,
    env: str | None = None,
    task_settings: dict[str, Any] | None = None,
    mapping: dict[str, str] | None = None,
    overwrite: bool = False,
    resize: bool = False,
) -> TrajectoryStore:
    """Read `source` (format `fmt`) into a new wmplan dataset at `out`. `env` and `task_settings` pick
    the task (a wmplan export brings its own); `mapping` (diffusion-policy only) says which data array
    is which wmplan key; `resize` resizes images to the task's image_size instead of refusing them."""
    if fmt not in IMPORT_FORMATS:
        raise DatasetError(f"unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}")
    if not Path(source).exists():
        raise DatasetError(f"no {fmt} dataset at {source}: the path does not exist")
    if mapping and fmt != "diffusion-policy":
        raise DatasetError(f"--map applies to --from diffusion-policy only, not {fmt}")
    common: dict[str, Any] = {"env": env, "task_settings": task_settings, "overwrite": overwrite, "resize": resize}
    if fmt == "lerobot":
        from wmplan.data.interchange.lerobot import import_lerobot

        return import_lerobot(source, out, **common)
    if fmt == "hf":
        from wmplan.data.interchange.hf import import_hf

        return import_hf(source, out, **common)
    if fmt == "dinowm":
        from wmplan.data.interchange.dinowm import import_dinowm

        return import_dinowm(source, out, **common)
    from wmplan.data.interchange.diffusion_policy import import_diffusion_policy

    return import_diffusion_policy(source, out, mapping=mapping, **common)


__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "export_dataset", "import_dataset"]
