"""Where training, finetuning and evaluation also report their numbers: `--log csv|tensorboard|wandb`.

The CSV and JSON files in a run or results folder are always written (metrics.csv, summary.json): they are
what wmplan reads back. `tensorboard` adds event files under <out>/tensorboard (`pip install tensorboard`;
view with `tensorboard --logdir <out>`); `wandb` logs to a Weights & Biases run (`pip install wandb`; the
project is $WANDB_PROJECT, default "wmplan"; offline with WANDB_MODE=offline). Both packages are optional
and imported only when asked for.

Example:
    >>> with open_tracker("tensorboard", "runs/wall", config={"lr": 1e-3}) as tracker:   # doctest: +SKIP
    ...     tracker.scalars(100, {"train/loss": 0.01})
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TRACKERS = ("csv", "tensorboard", "wandb")


class Tracker:
    """The `csv` tracker: the folder's own files are the record, so it does nothing more."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Numbers at a step (a training step, or 0 for an evaluation)."""

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        """A figure written to disk as a PNG."""

    def video(self, tag: str, gif: Path, step: int = 0) -> None:
        """A rollout written to disk as a GIF (eval --video)."""

    def close(self) -> None:
        """Flush and end the record."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TensorBoardTracker(Tracker):
    def __init__(self, out: Path, config: dict[str, Any]):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(_missing("tensorboard")) from None
        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))
        self.writer.add_text("config", "```\n" + _flat_lines(config) + "\n```")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        import numpy as np
        from PIL import Image

        self.writer.add_image(tag, np.asarray(Image.open(png).convert("RGB")), step, dataformats="HWC")

    def video(self, tag: str, gif: Path, step: int = 0) -> None:
        """Its frames side by side as one image: TensorBoard's own videos need moviepy."""
        import numpy as np
        from PIL import Image, ImageSequence

        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(gif))]
        self.writer.add_image(tag, np.concatenate(frames, axis=1), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, out: Path, config: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise ImportError(_missing("wandb")) from None
        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "wmplan"), name=out.name, dir=str(out), config=config
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        self.run.log({tag: self.wandb.Image(str(png))}, step=step)

    def video(self, tag: str, gif: Path, step: int = 0) -> None:
        self.run.log({tag: self.wandb.Video(str(gif))}, step=step)

    def close(self) -> None:
        self.run.finish()


def open_tracker(kind: str, out: str | Path, config: dict[str, Any] | None = None) -> Tracker:
    """The tracker named `kind` (one of TRACKERS) for the folder `out`, given the job's config."""
    if kind not in TRACKERS:
        raise ValueError(f"unknown --log {kind!r}; choose one of {', '.join(TRACKERS)}")
    out = Path(out)
    if kind == "tensorboard":
        return TensorBoardTracker(out, config or {})
    if kind == "wandb":
        return WandbTracker(out, config or {})
    return Tracker()


def _missing(package: str) -> str:
    return f"--log {package} needs the {package} package: pip install {package} (or use --log csv, the default)"


def _flat_lines(config: dict[str, Any], prefix: str = "") -> str:
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(_flat_lines(value, f"{prefix}{key}."))
        else:
            lines.append(f"{prefix}{key} = {value!r}")
    return "\n".join(line for line in lines if line)
