"""Finetuning a trained run (`wmplan finetune`): the parent's model, data and split, a new objective.

The encoder stays frozen (as in training); the predictor and the action and proprio embeddings are
finetuned, each at the parent's learning rate. The result is an ordinary run directory: WorldModel.load,
eval, gap and landscape take it like any run. Its config.json records `parent_run`, `parent_fingerprint`
(the parent's RunState fingerprint) and `method` (also in `config.finetune`) and, for the adversarial
method, the radii it used (`adversarial_eps`); for the online method, `online` (refreshes, buffer fill,
mean expert and online losses) and a per-step online_metrics.csv (step, expert_loss, online_loss, buffer,
plan_cost, final_distance). In its metrics.csv, train_loss is the finetuning objective (adversarial: the
loss on perturbed batches; online: the loss of the mixed expert + online batch) while val_loss stays the
clean teacher-forced loss on expert windows, comparable with the parent's. A killed finetuning goes on
from its last checkpoint with `resume=True` (`wmplan finetune ... --resume`), as a killed training does.

Example:
    >>> model = finetune("runs/wall", "runs/wall-adv", "adversarial", {"adversarial.lambda_action": 0.1})  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmplan.config import FINETUNE_PRESETS, RunConfig, apply_overrides
from wmplan.models.run_folder import RunFolder
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.tracking import open_tracker
from wmplan.training.adversarial import AdversarialLoss
from wmplan.training.distributed import DistContext, local_batch_size
from wmplan.training.online import OnlineLoss
from wmplan.training.trainer import Trainer, TrainingData, TrainingError, check_resume
from wmplan.writing import atomic_write, claim_folder, restore_checkpoint

METHODS = ("adversarial", "online")


def length_overrides(method: str, length: int) -> dict[str, Any]:
    """The train.* overrides of a finetuning length: adversarial in whole epochs over the parent's data,
    online in optimizer steps (one epoch of `length` steps, as its buffer grows while it trains)."""
    if method == "adversarial":
        return {"train.epochs": length, "train.steps_per_epoch": 0}
    if method == "online":
        return {"train.epochs": 1, "train.steps_per_epoch": length}
    raise ValueError(f"unknown finetune method {method!r}; choose from {', '.join(METHODS)}")


def finetune_config(
    parent: RunConfig,
    parent_run: str | Path,
    method: str,
    overrides: dict[str, Any] | None = None,
    preset: str | None = "small",
) -> RunConfig:
    """The parent's config, then the preset's finetuning length (FINETUNE_PRESETS; None keeps the
    parent's train.*), then `overrides`, then finetune.method / finetune.parent. The architecture
    (model.*) and the data split (data.* other than data.path) are the parent's and cannot change."""
    if method not in METHODS:
        raise ValueError(f"unknown finetune method {method!r}; choose from {', '.join(METHODS)}")
    overrides = dict(overrides or {})
    fixed = [
        k for k in overrides if k.startswith(("model.", "finetune.")) or (k.startswith("data.") and k != "data.path")
    ]
    if fixed:
        raise ValueError(f"finetuning keeps the parent's model, data split and lineage; cannot set {fixed}")
    if preset is not None and preset not in FINETUNE_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(FINETUNE_PRESETS)}")
    length = {f"train.{k}": v for k, v in FINETUNE_PRESETS[preset].items()} if preset else {}
    cfg = apply_overrides(parent, {**length, **overrides})
    return apply_overrides(cfg, {"finetune.method": method, "finetune.parent": str(parent_run)})


def finetune(
    parent_run: str | Path,
    out: str | Path,
    method: str = "adversarial",
    overrides: dict[str, Any] | None = None,
    preset: str | None = "small",
    progress: bool = True,
    log: str = "csv",
    resume: bool = False,
) -> WorldModel:
    """Finetune the run in `parent_run` with `method` into the new run directory `out`; returns the model.
    The parent must be a finished run (RunFolder.require_finished). `resume`: continue a killed finetuning
    in `out` from its last checkpoint, as `train(resume=True)` does; it must ask for the same settings
    (train.epochs, train.device and data.path aside) of the same parent, unchanged since.
    `log` also sends each epoch's numbers to a tracker (wmplan.tracking); metrics.csv is always written."""
    parent_run, out = Path(parent_run).resolve(), Path(out)
    if out.resolve() == parent_run:
        raise TrainingError(f"--out must differ from --run: finetuning writes a new run and keeps {parent_run}")
    if not resume and (out / "config.json").exists():
        raise TrainingError(
            f"{out} already holds a run; pass --resume to continue it from its last checkpoint, or choose another --out"
        )
    model = WorldModel.load(parent_run)  # raises FileNotFoundError on an incomplete run
    assert model.run_folder is not None
    parent = model.run_folder.require_finished(flag=None)  # a finetuning has no use for a half-trained parent
    parent_meta = model.run_folder.meta()
    cfg = finetune_config(model.cfg, parent_run, method, overrides, preset)
    ctx = DistContext.from_env(resolve_device(cfg.train.device))
    local_batch_size(cfg.train, ctx.world_size)  # a global batch the processes cannot split: refused here
    if ctx.is_main:  # one writer per run folder, and a writable one, before any work
        lock = claim_folder(out, "the finetuned run")  # noqa: F841 (held until finetune returns)
        if resume:
            restore_checkpoint(out)  # a kill inside a checkpoint's switch: back to the last complete set
    data = _parent_data(cfg, parent_run, model.cfg.data.path, parent_meta, lazy_frames=ctx.world_size > 1)
    if resume:
        check_resume(out, cfg, data, "resume with the --method, --preset and --set it was started with")
        recorded = RunFolder(out).meta().get("parent_fingerprint")
        if recorded != parent.fingerprint:
            raise TrainingError(
                f"--resume: {parent_run} has changed since {out} was finetuned from it (fingerprint "
                f"{str(recorded)[:12]}, now {parent.fingerprint[:12]}); finetune it again into another --out"
            )
        model = WorldModel.load(out)
    model = model.to(ctx.device)
    model.use_config(cfg)
    tracker = open_tracker(log if ctx.is_main else "csv", out, cfg.to_dict())  # a missing package fails before any work
    if ctx.is_main and not resume:
        out.mkdir(parents=True, exist_ok=True)
        if (parent_run / "encoder.json").exists():  # the encoder is the parent's, unchanged
            atomic_write(out / "encoder.json", lambda p: shutil.copyfile(parent_run / "encoder.json", p))
    torch.manual_seed(cfg.train.seed)
    data.cache_tokens(model, cfg.train.cache_tokens_gb, ctx, out)
    loss: nn.Module
    if method == "online":  # seeded per rank: each process plans its own starts
        loss = OnlineLoss(model, data, cfg.online, cfg.train.seed * 1000 + ctx.rank, ctx.world_size).to(ctx.device)
    else:
        loss = AdversarialLoss(model, cfg.adversarial).to(ctx.device)
    meta = {"parent_run": str(parent_run), "method": method, "parent_fingerprint": parent.fingerprint}
    trainer = Trainer(model, data, cfg, out, ctx, loss_module=loss, meta=meta, tracker=tracker)
    with tracker:
        model = trainer.fit(resume=resume, progress=progress and ctx.is_main)
    if ctx.world_size > 1:
        ctx.on_main(lambda: data.drop_token_files(out))  # after fit's last barrier: no rank reads it any more
    if isinstance(loss, OnlineLoss) and ctx.is_main and loss.log:
        loss.write_log(out / "online_metrics.csv")  # rank 0's steps: expert and online losses, refreshes
    return model


def _parent_data(
    cfg: RunConfig, parent_run: Path, trained_on: str, parent_meta: dict[str, Any], lazy_frames: bool
) -> TrainingData:
    """The parent's dataset at cfg.data.path, refused when it is gone or is another one: the same data and
    split as the parent, so that a finetuned model has not seen its parent's val episodes (frames read per
    batch under torchrun: wmplan.training.training_data)."""
    if not Path(cfg.data.path).exists():
        if str(Path(cfg.data.path)) != str(Path(trained_on)):  # the path the user gave, not the run's record
            raise TrainingError(
                f"no dataset at {cfg.data.path} (--data or data.path); {parent_run} was trained on {trained_on}"
            )
        raise TrainingError(
            f"{parent_run} was trained on {cfg.data.path}, which is gone; pass --data PATH (or "
            f"--set data.path=PATH) to point it at that dataset where it is now"
        )
    data = TrainingData(cfg, lazy_frames=lazy_frames)
    expected = parent_meta.get("dataset", {}).get("fingerprint")
    if expected is not None and expected != data.fingerprint:
        recorded_path = str(parent_meta["dataset"]["path"])
        if Path(recorded_path).resolve() == Path(cfg.data.path).resolve():  # the same folder, changed since
            raise TrainingError(
                f"{cfg.data.path} has changed since {parent_run} was trained on it (its fingerprint differs: "
                "episodes were appended or it was collected again), so the parent's validation split is gone; "
                "finetune on a copy of the dataset as it was, or train a new base model on it"
            )
        raise TrainingError(
            f"{cfg.data.path} is not the dataset {parent_run} was trained on ({recorded_path}); pass --data <that dataset>"
        )
    return data
