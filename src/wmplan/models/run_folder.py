"""A run directory's files, read in one place: config.json (with its format version), metrics.csv and
encoder.json, always from the run's last complete checkpoint set (wmplan.writing.checkpoint_source).

config.json: {"format": RUN_FORMAT, "config": RunConfig as a dict, "dims": TaskDims, "task_settings": the
dataset's task settings, "dataset": {"path", "fingerprint", ...}, plus what the training loss records
(e.g. "adversarial_eps", "online", "method", "parent_run")}. Runs written before the format field
existed have the same layout and read as format 1.

Example:
    >>> RunFolder("runs/wall").config().train.epochs      # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from wmplan.config import RunConfig
from wmplan.writing import checkpoint_source

RUN_FORMAT = 1
"""The config.json layout this version writes and reads; a newer one is refused with a message."""
RUN_FILES = ("config.json", "model.safetensors", "normalization.json")
"""What a run needs to load (WorldModel.load) and what sharing it uploads (wmplan.hub)."""


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @cached_property
    def source(self) -> Path:
        """The folder holding the last complete checkpoint set (the run folder itself when it is whole);
        found once per RunFolder (it hashes the set's files)."""
        return checkpoint_source(self.path)

    def meta(self) -> dict[str, Any]:
        """config.json as a dict; FileNotFoundError when the folder holds no run, ValueError for a format
        newer than this version reads."""
        path = self.source / "config.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{self.path} holds no run (no config.json); train one with `wmplan train --out {self.path}`"
            )
        meta = json.loads(path.read_text())
        version = meta.get("format", 1)
        if version > RUN_FORMAT:
            raise ValueError(
                f"{path} has format {version}, newer than this wmplan reads ({RUN_FORMAT}); upgrade wmplan to load it"
            )
        return meta

    def config(self) -> RunConfig:
        """The RunConfig the run was trained (or finetuned) with."""
        return RunConfig.from_dict(self.meta()["config"])

    def dataset(self) -> dict[str, Any]:
        """What the run recorded of its dataset (path, fingerprint); ValueError if it recorded none."""
        meta = self.meta()
        if "dataset" not in meta:
            raise ValueError(f"{self.path}/config.json names no dataset (a run from before datasets were recorded)")
        return meta["dataset"]

    def metrics(self) -> list[dict[str, str]]:
        """metrics.csv: one row per epoch (epoch, step, train_loss, val_loss, val_baseline_loss, seconds)."""
        with (self.source / "metrics.csv").open() as f:
            return list(csv.DictReader(f))

    def encoder_info(self) -> dict[str, Any]:
        """encoder.json (how the frozen encoder was pretrained, its latent/true-distance Spearman); {} when
        the encoder needed no pretraining record."""
        path = self.path / "encoder.json"
        return json.loads(path.read_text()) if path.exists() else {}
