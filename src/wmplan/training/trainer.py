"""Training a world model on a trajectory dataset: the encoder's pretraining (where its registry entry has
one: conv, patch, jepa), then the predictor.

The run directory holds config.json, model.safetensors, normalization.json (written by the model),
encoder.json, metrics.csv and trainer_state.pt (optimizer state and the loss's own buffers, for --resume).
Every file is written atomically at the end of each epoch, so a crash keeps the last good epoch.

Runs unchanged under torchrun (DDP; gloo on CPU, nccl on CUDA): every step draws one global batch of
the epoch's shuffled windows and each process takes its equal share of it (reading its frames from the
store: wmplan.training.training_data), so the steps are those of one process with the same global batch.
Rank 0 alone pretrains the encoder, fills the token cache and writes the files; the others wait for it.

Example:
    >>> from wmplan.config import preset, apply_overrides
    >>> cfg = apply_overrides(preset("small"), {"data.path": "data/wall"})   # doctest: +SKIP
    >>> model = train(cfg, "runs/wall")                                       # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from wmplan.config import RunConfig, stored_settings
from wmplan.models.encoder_registry import unread_settings
from wmplan.models.run_folder import RunFolder
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.precision import precision_name, use_bf16
from wmplan.tracking import Tracker, open_tracker
from wmplan.training.distributed import DistContext, LossModule, local_batch_size
from wmplan.training.encoder_stage import latent_spearman, shared_encoder
from wmplan.training.training_data import TrainingData
from wmplan.writing import atomic_write, claim_folder, commit_checkpoint, restore_checkpoint

METRIC_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_baseline_loss", "seconds"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a resume that does not match)."""


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The learning rate's multiplier at a global step: 1 (constant) or a cosine from 1 to 0 over the
    run's `total` steps. A pure function of the step, so a resumed run follows the same schedule."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    raise ValueError(f"train.lr_schedule must be constant or cosine, got {schedule!r}")


RESUME_MAY_CHANGE = ("train.epochs", "train.device", "data.path")
"""What a resumed run may set differently from its stored config (a moved dataset is checked by its fingerprint)."""


def resume_conflicts(stored: dict, cfg: RunConfig) -> list[str]:
    """Keys in which `cfg` differs from a run's stored config beyond what a resume may change; settings of
    encoders other than the run's own are no difference (a new default of jepa's leaves a conv run as it is)."""
    unread = {f"model.encoder.{name}" for name in unread_settings(cfg.model.encoder.name)}
    return [
        k
        for k in config_differences(stored_settings(stored), cfg.to_dict())
        if k not in RESUME_MAY_CHANGE and k not in unread
    ]


def config_differences(stored: dict, asked: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (RunConfig.to_dict())."""
    keys = []
    for key in sorted(set(stored) | set(asked)):
        a, b = stored.get(key), asked.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(prefix + key)
    return keys


def replace_data_path(cfg: RunConfig, path: Path) -> RunConfig:
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=str(path)))


def stored_config(run: str | Path) -> RunConfig:
    """The config a run was trained with (its last complete checkpoint's config.json)."""
    return RunFolder(run).config()


def check_resume(out: Path, cfg: RunConfig, data: TrainingData, same_config: str) -> None:
    """Refuse to resume `out` when it has no checkpoint, asks for another config than the stored one
    (beyond RESUME_MAY_CHANGE; `same_config` says how to ask for the stored one) or another dataset."""
    if not (out / "trainer_state.pt").exists():
        raise TrainingError(f"--resume: {out} has no checkpoint (trainer_state.pt); start without --resume")
    folder = RunFolder(out)
    changed = resume_conflicts(folder.meta()["config"], cfg)
    if changed:
        raise TrainingError(
            f"--resume: the config asked for differs from {out}'s in {', '.join(changed)}; {same_config}, or "
            f"write a new run into another --out"
        )
    dataset = folder.dataset()
    if dataset.get("fingerprint") != data.fingerprint:
        raise TrainingError(
            f"--resume: {cfg.data.path} is not the dataset {out} was trained on ({dataset.get('path')})"
        )


def load_trainer_state(path: Path, device: torch.device) -> dict[str, Any]:
    """trainer_state.pt: {"epoch": the last epoch trained, "optimizer": its state, "loss_buffers": the
    training loss's own buffers (e.g. adversarial radii fixed on the first batch)}; a TrainingError
    naming the file when it cannot be read as one."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises pickle's, zip's and its own error types for a damaged file
        raise TrainingError(
            f"{path} cannot be read ({type(exc).__name__}); the checkpoint is damaged: train the run again"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("optimizer"), dict):
        raise TrainingError(f"{path}: key 'optimizer' is missing; the checkpoint is damaged: train the run again")
    if not isinstance(state.get("epoch"), int) or isinstance(state["epoch"], bool):
        raise TrainingError(f"{path}: key 'epoch' is missing or not a whole number; train the run again")
    return state


def train(
    cfg: RunConfig, out: str | Path, *, resume: bool = False, progress: bool = True, log: str = "csv"
) -> WorldModel:
    """Train (or resume) a world model run in `out`; returns the trained model. A resumed run must ask
    for the stored config (train.epochs, train.device and data.path aside): a difference is refused.
    `log` also sends each epoch's numbers to a tracker (wmplan.tracking); metrics.csv is always written."""
    out = Path(out)
    cfg = replace_data_path(cfg, Path(cfg.data.path).resolve())  # a run finds its dataset from any folder
    lr_factor(cfg.train.lr_schedule, 0, 1)  # a typo fails here, not after the encoder's pretraining
    ctx = DistContext.from_env(resolve_device(cfg.train.device))
    local_batch_size(cfg.train, ctx.world_size)  # a global batch the processes cannot split: refused here
    # One writer per run folder, and a writable one, before any work; restored before any rank reads it.
    lock = ctx.on_main(lambda: _claim_run(out, resume))  # noqa: F841 (held until train returns)
    tracker = open_tracker(log if ctx.is_main else "csv", out, cfg.to_dict())  # a missing package fails here
    data = TrainingData(cfg, lazy_frames=ctx.world_size > 1)
    if resume:
        check_resume(out, cfg, data, "resume without --preset/--set/--encoder to use the stored config")
        model = WorldModel.load(out, device=ctx.device, task=cfg.task)
        model.use_config(cfg)
    else:
        encoder, encoder_info = shared_encoder(cfg, data, ctx, progress and ctx.is_main)
        torch.manual_seed(cfg.train.seed)
        model = WorldModel(cfg, data.dims, data.normalizer, encoder=encoder).to(ctx.device)
        model.task_settings = data.store.task_settings
        ctx.on_main(lambda: _write_encoder_info(out, model, data, encoder_info))
    data.cache_tokens(model, cfg.train.cache_tokens_gb, ctx, out)
    with tracker:
        model = Trainer(model, data, cfg, out, ctx, tracker=tracker).fit(resume, progress and ctx.is_main)
    if ctx.world_size > 1:
        ctx.on_main(lambda: data.drop_token_files(out))  # after fit's last barrier: no rank reads it any more
    return model


def _claim_run(out: Path, resume: bool):
    """The run folder's writer lock (wmplan.writing.claim_folder); refuses a run there unless `resume`,
    which first restores the last complete checkpoint (a kill inside a checkpoint's switch)."""
    if not resume and (out / "config.json").exists():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    lock = claim_folder(out, "the run")
    if resume:
        restore_checkpoint(out)
    return lock


def _write_encoder_info(out: Path, model: WorldModel, data: TrainingData, info: dict) -> None:
    """encoder.json: the pretraining's record and the latent distances' rank correlation on val frames."""
    info = {**info, "latent_distance_spearman": round(latent_spearman(model, data.val), 4)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "encoder.json", lambda p: p.write_text(json.dumps(info, indent=2)))


class Trainer:
    """Receives its parts; runs epochs, validates, checkpoints. `loss_module` (default LossModule(model))
    is the training loss, forward(batch) -> {"loss", ...}, e.g. AdversarialLoss; validation always uses
    the model's clean loss. `meta` is merged into config.json, and so is the loss module's describe()."""

    def __init__(
        self,
        model: WorldModel,
        data: TrainingData,
        cfg: RunConfig,
        out: Path,
        ctx: DistContext,
        loss_module: torch.nn.Module | None = None,
        meta: dict | None = None,
        tracker: Tracker | None = None,
    ):
        self.model, self.data, self.cfg, self.out, self.ctx = model, data, cfg, out, ctx
        t = cfg.train
        self.bf16 = use_bf16(t.precision, ctx.device)  # decided once: every epoch, resumed or not, runs the same
        # config.json says which precision the predictor was trained in (train.precision may say auto)
        self.meta = {**(meta or {}), "precision": precision_name(self.bf16)}
        self.tracker = tracker or Tracker()
        groups = [
            {"params": list(model.predictor.parameters()), "lr": t.lr_predictor},
            {
                "params": list(model.action_encoder.parameters()) + list(model.proprio_encoder.parameters()),
                "lr": t.lr_embeddings,
            },
        ]
        # fused: one kernel per step instead of ~10 small ops per parameter (a fifth of a small-preset step on a CPU)
        self.optimizer = torch.optim.AdamW(groups, weight_decay=t.weight_decay, fused=True)
        self.base_lrs = [t.lr_predictor, t.lr_embeddings]  # the groups' own rates, which the schedule scales
        self.batch_size = local_batch_size(t, ctx.world_size)  # this process's share of each step's batch
        self.loss_core = loss_module if loss_module is not None else LossModule(model)
        self.loss_module = ctx.wrap(self.loss_core)

    def fit(self, resume: bool, progress: bool) -> WorldModel:
        first_epoch = 0
        if resume:
            path = self.out / "trainer_state.pt"
            state = load_trainer_state(path, self.ctx.device)
            try:
                self.optimizer.load_state_dict(state["optimizer"])
                buffers = dict(self.loss_core.named_buffers(recurse=False))
                for name, value in state.get("loss_buffers", {}).items():
                    buffers[name].copy_(value)
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise TrainingError(
                    f"{path} does not fit this run's model or loss ({type(exc).__name__}: {exc}); the checkpoint is "
                    "damaged: train the run again"
                ) from None
            first_epoch = state["epoch"] + 1
        self.ctx.barrier()  # every rank holds the checkpoint before any steps (or rank 0 writes the next one)
        for epoch in range(first_epoch, self.cfg.train.epochs):
            start = time.perf_counter()
            train_loss, step = self.train_epoch(epoch, progress)
            val = self.validate()
            row = {
                "epoch": epoch,
                "step": step,
                "train_loss": train_loss,
                "val_loss": val["loss"],
                "val_baseline_loss": val["baseline"],
                "seconds": round(time.perf_counter() - start, 2),
            }
            if self.ctx.is_main:
                self.checkpoint(epoch, row)
                self.tracker.scalars(
                    step,
                    {"train/loss": train_loss, "val/loss": val["loss"], "val/copy_last_frame_loss": val["baseline"]},
                )
                if progress:
                    tqdm.write(
                        f"epoch {epoch}: train {train_loss:.5f}  val {val['loss']:.5f}  copy-last-frame baseline {val['baseline']:.5f}"
                    )
        self.ctx.barrier()
        return self.model

    def steps_per_epoch(self) -> int:
        global_batch = self.batch_size * self.ctx.world_size
        return self.cfg.train.steps_per_epoch or max(1, len(self.data.train) // global_batch)

    def epoch_windows(self, epoch: int, steps: int) -> torch.Tensor:
        """(steps, local batch) window indices this rank trains on in `epoch`: step s's global batch is the
        s-th run of the epoch's shuffled windows (a pure function of (seed, epoch): resumable), and rank r
        takes its r-th equal part, so the ranks together take exactly one process's batches."""
        gen = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data.train), generator=gen)
        global_batch = self.batch_size * self.ctx.world_size
        order = order.repeat(math.ceil(steps * global_batch / len(order)))[: steps * global_batch]
        return order.view(steps, self.ctx.world_size, self.batch_size)[:, self.ctx.rank]

    def train_epoch(self, epoch: int, progress: bool) -> tuple[float, int]:
        t = self.cfg.train
        steps = self.steps_per_epoch()
        batches = self.epoch_windows(epoch, steps)
        torch.manual_seed(t.seed * 100_003 + epoch + 1)  # dropout
        self.model.train()
        total, bar = 0.0, tqdm(range(steps), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for step in bar:
            batch = self.data.batch("train", batches[step], self.ctx.device)
            with self.ctx.autocast(self.bf16):
                loss = self.loss_module(batch)["loss"]
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss.item()} at epoch {epoch}, step {step}; training stopped. The last good "
                    f"checkpoint in {self.out} is kept. Lower train.lr_predictor or check the dataset for bad values"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            factor = lr_factor(t.lr_schedule, epoch * steps + step, t.epochs * steps)
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * factor
            self.optimizer.step()
            total += loss.item()
            bar.set_postfix(loss=f"{total / (step + 1):.5f}", refresh=False)
        mean = self.ctx.sum_over_ranks(torch.tensor([total / steps], dtype=torch.float64)) / self.ctx.world_size
        return float(mean), (epoch + 1) * steps  # the mean over the global batches, as one process reports it

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The clean loss and the copy-last-frame baseline over at most train.max_val_windows evenly spaced
        val windows; under torchrun each rank takes every world_size-th of them and the sums are reduced."""
        self.model.eval()
        n = len(self.data.val)
        idx = torch.linspace(0, n - 1, min(n, self.cfg.train.max_val_windows)).long()
        sums = torch.zeros(2, dtype=torch.float64)  # loss, baseline, each summed over windows
        for chunk in idx[self.ctx.rank :: self.ctx.world_size].split(256):
            out = self.model.loss(self.data.batch("val", chunk, self.ctx.device))
            sums += torch.tensor([out["loss"].item(), out["baseline"].item()], dtype=torch.float64) * len(chunk)
        loss, baseline = (self.ctx.sum_over_ranks(sums) / len(idx)).tolist()
        return {"loss": loss, "baseline": baseline}

    def checkpoint(self, epoch: int, row: dict) -> None:
        """The epoch's model files, metrics and optimizer state, switched in as one set
        (wmplan.writing.commit_checkpoint): a kill never leaves a model of one epoch beside the
        optimizer state of another."""
        extra = {
            "dataset": {
                "path": str(Path(self.cfg.data.path).resolve()),
                "fingerprint": self.data.fingerprint,
                "episodes": self.data.store.n_episodes,
            },
            "epoch": epoch,
            **self.meta,
        }
        describe = getattr(self.loss_core, "describe", None)
        extra.update(describe() if describe else {})
        metrics = self.out / "metrics.csv"
        rows = list(csv.DictReader(metrics.open())) if metrics.exists() else []
        rows = [r for r in rows if int(r["epoch"]) < epoch] + [row]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        buffers = {name: b.detach().cpu() for name, b in self.loss_core.named_buffers(recurse=False)}
        state = {"epoch": epoch, "optimizer": self.optimizer.state_dict(), "loss_buffers": buffers}

        def write_files(folder: Path) -> None:
            self.model.save(folder, extra)
            (folder / "metrics.csv").write_text(text.getvalue())
            torch.save(state, folder / "trainer_state.pt")

        commit_checkpoint(self.out, epoch, write_files)
