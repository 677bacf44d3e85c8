"""Training a world model on a trajectory dataset: the encoder's pretraining (where its registry entry has
one: conv, patch, jepa), then the predictor.

The run directory holds config.json, model.safetensors, normalization.json (written by the model),
encoder.json, metrics.csv and trainer_state.pt (optimizer state and the loss's own buffers, for --resume).
Every file is written atomically at the end of each epoch, so a crash keeps the last good epoch.

Runs unchanged under torchrun (DDP; gloo on CPU, nccl on CUDA): each process takes its shard of
every epoch's shuffled windows, rank 0 writes the files.

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

import numpy as np
import torch
from tqdm.auto import tqdm

from wmplan.config import RunConfig, stored_settings
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.data.windows import Normalizer, TrajectoryWindows, WindowSpec, split_episodes
from wmplan.envs.registry import task_type
from wmplan.models.encoder_registry import unread_settings
from wmplan.models.run_folder import RunFolder
from wmplan.models.world_model import TaskDims, WorldModel, resolve_device
from wmplan.precision import precision_name, use_bf16
from wmplan.tracking import Tracker, open_tracker
from wmplan.training.distributed import DistContext, LossModule
from wmplan.training.encoder_stage import latent_spearman, prepare_encoder
from wmplan.writing import atomic_write, claim_folder, commit_checkpoint, restore_checkpoint

METRIC_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_baseline_loss", "seconds"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a resume that does not match)."""


class TrainingData:
    """The dataset, its split, normalizer and windows, and (when they fit) cached frozen tokens."""

    def __init__(self, cfg: RunConfig):
        self.store = TrajectoryStore.open(cfg.data.path, task=cfg.task)
        missing = self.store.chunk_problems(decode=False)  # zarr would read a missing chunk as zeros: black frames
        if missing:
            raise DatasetError(
                f"{cfg.data.path} is damaged, {len(missing)} chunk file(s) missing, e.g. {missing[0]}; "
                f"collect the dataset again"
            )
        attrs = self.store.attrs
        self.dims = TaskDims(
            cfg.task,
            attrs["image_size"],
            attrs["state_dim"],
            attrs["proprio_dim"],
            attrs["action_dim"],
            tuple(getattr(task_type(cfg.task), "angle_dims", ())),
        )
        self.train_eps, self.val_eps = split_episodes(self.store.n_episodes, cfg.data.val_fraction, cfg.data.split_seed)
        lengths = np.array([e - s for s, e in self.store.episode_bounds(self.train_eps)])
        self.train_bounds = np.stack([np.cumsum(lengths) - lengths, np.cumsum(lengths)], 1)  # in self.train's frames
        self.normalizer = Normalizer.fit(self.store, self.train_eps)
        spec = WindowSpec(cfg.data.num_hist, cfg.data.num_pred, cfg.data.frameskip)
        self.train = TrajectoryWindows(self.store, self.train_eps, spec, self.normalizer)
        self.val = TrajectoryWindows(self.store, self.val_eps, spec, self.normalizer)
        self.fingerprint = self.store.fingerprint()
        self.cache: dict[str, torch.Tensor] = {}

    def cache_tokens(self, model: WorldModel, limit_gb: float, device: torch.device) -> bool:
        """Encode every frame once: the encoder is frozen, so its tokens never change. First refuses a
        model built for another image size than the dataset's."""
        model.check_image_size(
            (int(self.train.obs.shape[1]), int(self.train.obs.shape[2])), f"the images of {self.store.path}"
        )
        enc = model.encoder
        frames = len(self.train.obs) + len(self.val.obs)
        if frames * enc.num_tokens * enc.dim * 4 > limit_gb * 1e9:
            return False
        for name, windows in (("train", self.train), ("val", self.val)):
            chunks = []
            for i in range(0, len(windows.obs), 1024):
                obs = windows.obs[i : i + 1024, None].to(device)
                chunks.append(
                    model.encode_visual(obs=obs, state=windows.state[i : i + 1024, None].to(device))[:, 0].cpu()
                )
            self.cache[name] = torch.cat(chunks)
        return True

    def batch(self, split: str, windows: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        source = self.train if split == "train" else self.val
        cached = split in self.cache
        batch = source.batch(windows, with_obs=not cached)
        if cached:
            batch["visual"] = self.cache[split][batch["frame_index"]]
        return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "frame_index"}


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
    if ctx.is_main:  # one writer per run folder, and a writable one, before any work
        if not resume and (out / "config.json").exists():
            raise TrainingError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        lock = claim_folder(out, "the run")  # noqa: F841 (held until train returns)
        if resume:
            restore_checkpoint(out)  # a kill inside a checkpoint's switch: back to the last complete set
    tracker = open_tracker(log if ctx.is_main else "csv", out, cfg.to_dict())  # a missing package fails here
    data = TrainingData(cfg)
    if resume:
        check_resume(out, cfg, data, "resume without --preset/--set/--encoder to use the stored config")
        model = WorldModel.load(out, device=ctx.device, task=cfg.task)
        model.use_config(cfg)
        encoder_info = RunFolder(out).encoder_info()
    else:
        torch.manual_seed(cfg.train.seed)
        encoder, encoder_info = prepare_encoder(cfg, data, ctx.device, progress and ctx.is_main)
        torch.manual_seed(cfg.train.seed)
        model = WorldModel(cfg, data.dims, data.normalizer, encoder=encoder).to(ctx.device)
        model.task_settings = data.store.task_settings
        encoder_info["latent_distance_spearman"] = round(latent_spearman(model, data.val), 4)
        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write(out / "encoder.json", lambda p: p.write_text(json.dumps(encoder_info, indent=2)))
    data.cache_tokens(model, cfg.train.cache_tokens_gb, ctx.device)
    with tracker:
        return Trainer(model, data, cfg, out, ctx, tracker=tracker).fit(resume, progress and ctx.is_main)


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
        per_rank = len(self.data.train) // self.ctx.world_size
        return self.cfg.train.steps_per_epoch or max(1, per_rank // self.cfg.train.batch_size)

    def train_epoch(self, epoch: int, progress: bool) -> tuple[float, int]:
        t = self.cfg.train
        gen = torch.Generator().manual_seed(t.seed * 100_003 + epoch)  # a pure function of (seed, epoch): resumable
        order = torch.randperm(len(self.data.train), generator=gen)[self.ctx.rank :: self.ctx.world_size]
        steps = self.steps_per_epoch()
        order = order.repeat(math.ceil(steps * t.batch_size / len(order)))
        torch.manual_seed(t.seed * 100_003 + epoch + 1)  # dropout
        self.model.train()
        total, bar = 0.0, tqdm(range(steps), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for step in bar:
            batch = self.data.batch("train", order[step * t.batch_size : (step + 1) * t.batch_size], self.ctx.device)
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
        return total / steps, (epoch + 1) * steps

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        self.model.eval()
        n = len(self.data.val)
        idx = torch.linspace(0, n - 1, min(n, self.cfg.train.max_val_windows)).long()
        sums = {"loss": 0.0, "baseline": 0.0}
        for chunk in idx.split(256):
            out = self.model.loss(self.data.batch("val", chunk, self.ctx.device))
            for key in sums:
                sums[key] += out[key].item() * len(chunk)
        return {k: v / len(idx) for k, v in sums.items()}

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
