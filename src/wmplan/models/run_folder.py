"""A run directory's files, read in one place: config.json (with its format version), normalization.json,
metrics.csv and encoder.json, always from the run's last complete checkpoint set
(wmplan.writing.checkpoint_source), each checked against its hash in that set's checkpoint.json; and the
run's identity and training state (`RunFolder.state`).

config.json: {"format": RUN_FORMAT, "config": RunConfig as a dict, "dims": TaskDims, "task_settings": the
dataset's task settings, "dataset": {"path", "fingerprint", ...}, "epoch": the last epoch trained (from 0),
plus what the training loss records (e.g. "adversarial_eps", "online", "method", "parent_run",
"parent_fingerprint")}. Runs written before the format field existed have the same layout and read as
format 1. A damaged file (not JSON, a wrong type, a missing key) is a RunFileError naming the file and key.

A run's fingerprint is the sha256 of its checkpoint.json (which holds every file's hash), or, for a run
without one (written before checkpoints were hashed, or copied without it), of its files' hashes: results
record it (`RunState.record`), so a rerun knows when the run they came from has changed since.

Example:
    >>> RunFolder("runs/wall").config().train.epochs      # doctest: +SKIP
    >>> RunFolder("runs/wall").state().finished           # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from wmplan.config import RunConfig
from wmplan.writing import MANIFEST, OutputError, checkpoint_source, manifest_problem, read_manifest, writer_pid

RUN_FORMAT = 1
"""The config.json layout this version writes and reads; a newer one is refused with a message."""
RUN_FILES = ("config.json", "model.safetensors", "normalization.json")
"""What a run needs to load (WorldModel.load) and what sharing it uploads (wmplan.hub)."""
DIMS_TYPES = {"task": str, "image_size": int, "state_dim": int, "proprio_dim": int, "action_dim": int}
"""config.json's "dims" (models.world_model.TaskDims): the keys every run has, and their types."""
NORMALIZATION_DIMS = {"action": "action_dim", "proprio": "proprio_dim", "state": "state_dim"}
"""normalization.json: <group>_mean and <group>_std, each a list of dims[<size>] numbers."""
ALLOW_UNFINISHED = "--allow-unfinished"


class RunFileError(ValueError):
    """A run file that cannot be read as a run's: not JSON, a value of the wrong type, a missing key."""


class UnfinishedRunError(ValueError):
    """A run still training (a live writer), or stopped before its last epoch, asked to be used as finished."""


_said: set[str] = set()


def notice(message: str) -> None:
    """One line on stderr, once per process (a run loaded for every cell says it once)."""
    if message not in _said:
        _said.add(message)
        from tqdm.auto import tqdm

        tqdm.write(f"wmplan: {message}", file=sys.stderr)  # between progress bars, not through them


@dataclass(frozen=True)
class RunState:
    """Who a run is and how far it trained, as results record it."""

    fingerprint: str
    """sha256 of checkpoint.json's bytes (or of the files' hashes, for a run without one)."""
    epoch: int | None
    """Epochs trained (the last checkpoint's epoch + 1); None where config.json does not say."""
    epochs: int
    """Epochs its config asks for (train.epochs)."""
    writer: int | None
    """pid of another live process that holds the run's writer lock (0: one the system does not name)."""
    verified: bool
    """Whether the files were checked against a checkpoint.json."""

    @property
    def finished(self) -> bool:
        return self.writer is None and (self.epoch is None or self.epoch >= self.epochs)

    def progress(self) -> str:
        return f"{'?' if self.epoch is None else self.epoch} of {self.epochs} epochs trained"

    def record(self) -> dict[str, Any]:
        """The keys every result made from the run records (eval summary.json, gap.json, landscape.json,
        grid.json's cells)."""
        return {
            "run_fingerprint": self.fingerprint,
            "run_epoch": self.epoch,
            "run_epochs": self.epochs,
            "run_finished": self.finished,
        }


NO_RUN_RECORD: dict[str, Any] = {"run_fingerprint": None, "run_epoch": None, "run_epochs": None, "run_finished": None}
"""RunState.record of a model that came from no run folder (built in memory)."""


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @cached_property
    def source(self) -> Path:
        """The folder holding the last complete checkpoint set (the run folder itself when it is whole);
        found once per RunFolder (it hashes the set's files). Says on stderr, in one line, when it falls
        back to an earlier set or when the run has no checkpoint.json to verify its files against."""
        source = checkpoint_source(self.path)
        if source != self.path:
            notice(f"{manifest_problem(self.path)}; reading the last complete checkpoint, {source}")
        elif not (source / MANIFEST).exists() and (source / "config.json").exists():
            notice(
                f"{self.path} has no {MANIFEST} to check its files against (written before checkpoints were "
                "hashed, by WorldModel.save, or copied without it): its files could not be verified"
            )
        return source

    @cached_property
    def _manifest_bytes(self) -> bytes | None:
        try:
            return (self.source / MANIFEST).read_bytes()
        except FileNotFoundError:
            return None

    @cached_property
    def manifest(self) -> dict | None:
        """The set's checkpoint.json, read once: every file read through this RunFolder is checked
        against it, so they all come from the one set the fingerprint names. None for a run without one."""
        data = self._manifest_bytes
        return None if data is None else read_manifest(self.source, data)

    def read_bytes(self, name: str) -> bytes:
        """A file of the checkpoint set, checked against its hash in the manifest (files it does not
        list, and every file of a run without one, as they are)."""
        path = self.source / name
        data = path.read_bytes()
        expected = (self.manifest or {}).get("files", {}).get(name)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise OutputError(
                f"{path} does not match its hash in {MANIFEST}: damaged, or being rewritten by a process "
                "training the run; wait for that process, or train the run again"
            )
        return data

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self.read_bytes(name))
        except ValueError as exc:
            raise RunFileError(
                f"{self.source / name} is not valid JSON ({exc}); the run is damaged: train it again"
            ) from None

    def meta(self) -> dict[str, Any]:
        """config.json as a dict; FileNotFoundError when the folder holds no run, ValueError for a format
        newer than this version reads, RunFileError for a damaged file."""
        path = self.source / "config.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{self.path} holds no run (no config.json); train one with `wmplan train --out {self.path}`"
            )
        meta = self._json("config.json")
        damaged = lambda key, what: RunFileError(  # noqa: E731
            f"{path}: key {key!r} {what}; the run is damaged: train it again"
        )
        if not isinstance(meta, dict):
            raise RunFileError(
                f"{path} holds {type(meta).__name__}, not a run's table of settings; train the run again"
            )
        version = meta.get("format", 1)
        if not _is_int(version):
            raise damaged("format", f"is {version!r}, not a whole number")
        if version > RUN_FORMAT:
            raise ValueError(
                f"{path} has format {version}, newer than this wmplan reads ({RUN_FORMAT}); upgrade wmplan to load it"
            )
        for key in ("config", "dims"):
            if not isinstance(meta.get(key), dict):
                raise damaged(key, "is missing or not a table")
        for key, kind in DIMS_TYPES.items():
            value = meta["dims"].get(key)
            if not (isinstance(value, kind) and (kind is not int or _is_int(value))):
                raise damaged(f"dims.{key}", f"is {value!r}, not a {kind.__name__}")
        angles = meta["dims"].get("angle_dims", [])
        if not (isinstance(angles, list) and all(_is_int(i) for i in angles)):
            raise damaged("dims.angle_dims", f"is {angles!r}, not a list of whole numbers")
        if "epoch" in meta and not _is_int(meta["epoch"]):
            raise damaged("epoch", f"is {meta['epoch']!r}, not a whole number")
        return meta

    def config(self) -> RunConfig:
        """The RunConfig the run was trained (or finetuned) with."""
        values = self.meta()["config"]
        try:
            return RunConfig.from_dict(values)
        except (ValueError, TypeError) as exc:
            raise RunFileError(f"{self.source / 'config.json'}: {exc}; the run is damaged: train it again") from None

    def normalization(self) -> dict[str, list[float]]:
        """normalization.json: each group's mean and std, lists as long as the run's dims say, of finite numbers."""
        path, dims = self.source / "normalization.json", self.meta()["dims"]
        values = self._json("normalization.json")
        for group, size in NORMALIZATION_DIMS.items():
            for key in (f"{group}_mean", f"{group}_std"):
                if not _numbers(values.get(key) if isinstance(values, dict) else None, dims[size]):
                    raise RunFileError(
                        f"{path}: key {key!r} is missing or not a list of {dims[size]} finite numbers; the run is "
                        "damaged: train it again"
                    )
        return values

    def dataset(self) -> dict[str, Any]:
        """What the run recorded of its dataset (path, fingerprint); ValueError if it recorded none."""
        meta = self.meta()
        if not isinstance(meta.get("dataset"), dict):
            raise ValueError(f"{self.path}/config.json names no dataset (a run from before datasets were recorded)")
        return meta["dataset"]

    def metrics(self) -> list[dict[str, str]]:
        """metrics.csv: one row per epoch (epoch, step, train_loss, val_loss, val_baseline_loss, seconds)."""
        return list(csv.DictReader(self.read_bytes("metrics.csv").decode().splitlines()))

    def encoder_info(self) -> dict[str, Any]:
        """encoder.json (how the frozen encoder was pretrained, its latent/true-distance Spearman); {} when
        the encoder needed no pretraining record."""
        path = self.path / "encoder.json"
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise RunFileError(f"{path} is not valid JSON ({exc}); the run is damaged: train it again") from None

    def state(self) -> RunState:
        """The run's fingerprint and training state: the one reading of both that every command uses."""
        if self._manifest_bytes is not None:
            fingerprint, verified = hashlib.sha256(self._manifest_bytes).hexdigest(), True
        else:
            h = hashlib.sha256()
            for name in RUN_FILES:
                if (self.source / name).exists():
                    h.update(f"{name} {hashlib.sha256(self.read_bytes(name)).hexdigest()}\n".encode())
            fingerprint, verified = h.hexdigest(), False
        meta = self.meta()
        epoch = meta["epoch"] + 1 if "epoch" in meta else None
        return RunState(fingerprint, epoch, self.config().train.epochs, writer_pid(self.path), verified)

    def require_finished(self, allowed: bool = False, flag: str | None = ALLOW_UNFINISHED) -> RunState:
        """The run's state; an UnfinishedRunError naming the run, its epoch and the way out when it is
        unfinished, unless `allowed`. `flag`: the option that would allow it (None: there is none)."""
        state = self.state()
        if state.finished or allowed:
            return state
        also = f", or pass {flag} to use it as it is" if flag else ""
        if state.writer is not None:
            who = f"process {state.writer}" if state.writer else "another process"
            raise UnfinishedRunError(
                f"{self.path} is being written by {who} ({state.progress()} so far); wait for it to finish{also}"
            )
        raise UnfinishedRunError(
            f"{self.path} is unfinished ({state.progress()}; no process is training it); finish it with "
            f"{self.finish_command()}{also}"
        )

    def finish_command(self) -> str:
        """The command that trains the run on from its last checkpoint."""
        meta = self.meta()
        if "parent_run" in meta:
            return (
                f"`wmplan finetune --method {meta.get('method', '...')} --run {meta['parent_run']} --out {self.path} "
                "--resume` (with the --preset and --set it was started with)"
            )
        data = meta.get("dataset", {}).get("path", "DATA") if isinstance(meta.get("dataset"), dict) else "DATA"
        return f"`wmplan train --data {data} --out {self.path} --resume`"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _numbers(value: Any, length: int) -> bool:
    """Whether `value` is a list of `length` finite numbers."""
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value)
    )
