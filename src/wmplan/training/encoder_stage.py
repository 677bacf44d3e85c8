"""Stage 1 of training: the encoder built and, where its registry entry has a pretraining (conv, patch,
jepa), trained on the training split; then how well its latent distances follow the true state's
distances (encoder.json's latent_distance_spearman), for any encoder.

Under torchrun the stage runs once: rank 0 pretrains while the other ranks wait, then every rank takes
rank 0's weights (`shared_encoder`), so all of them encode, and cache, the same tokens.

Example:
    >>> encoder, info = prepare_encoder(cfg, TrainingData(cfg), torch.device("cpu"), progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from wmplan.envs import make_task
from wmplan.models.encoder_build import build_encoder
from wmplan.models.encoder_registry import Encoder, encoder_entry
from wmplan.models.encoders import distance_spearman

if TYPE_CHECKING:
    from wmplan.config import RunConfig
    from wmplan.data.windows import TrajectoryWindows
    from wmplan.models.world_model import WorldModel
    from wmplan.training.distributed import DistContext
    from wmplan.training.training_data import TrainingData


def latent_spearman(
    model: WorldModel, windows: TrajectoryWindows, pairs: int = 2000, frames: int = 4000, seed: int = 0
) -> float:
    """Spearman rank correlation between latent and true state distances over random pairs of frames
    (any encoder: the state encoder's latent is the state itself): Euclidean on the task's pose_dims
    where it declares them, else the task's own `distance`."""
    idx = torch.as_tensor(
        np.random.default_rng(seed).choice(len(windows.obs), min(frames, len(windows.obs)), replace=False)
    )
    device = next(model.parameters()).device
    tokens = model.encode_visual(obs=windows.obs[idx][:, None].to(device), state=windows.state[idx, None].to(device))
    latents, states = tokens.flatten(1).cpu().double().numpy(), windows.state[idx].numpy()
    task = make_task(model.dims.task, model.task_settings)
    if hasattr(task, "pose_dims"):  # what images show: a velocity (PointMaze, PushT's agent) is invisible in one frame
        return distance_spearman(latents, states[:, list(task.pose_dims)], pairs=pairs, seed=seed)
    # Otherwise the task's own distance: Wall's is Euclidean anyway; Rope's and Granular's Chamfer
    # distance does not depend on how the particles are numbered, as an image does not.
    return distance_spearman(latents, states, pairs=pairs, seed=seed, true_distance=task.distance)


def prepare_encoder(cfg: RunConfig, data: TrainingData, device: torch.device, progress: bool) -> tuple[Encoder, dict]:
    """Stage 1: build the encoder and, where its registry entry says how, train it on the training split (the
    pretraining moves it to `device`; the world model takes it there otherwise)."""
    enc = cfg.model.encoder
    encoder = build_encoder(enc, data.dims)
    info: dict = {"encoder": enc.name}
    pretraining = encoder_entry(enc.name).pretraining
    if pretraining is not None:
        source, options = pretraining.inputs(enc, data, cfg.train.seed)
        start = time.perf_counter()
        info["pretrain"] = pretraining.train(
            encoder,
            source,
            steps=enc.pretrain_steps,
            batch_size=enc.pretrain_batch,
            lr=enc.pretrain_lr,
            seed=cfg.train.seed,
            progress=progress,
            device=device,
            **options,
        )
        info["pretrain_seconds"] = round(time.perf_counter() - start, 1)
    return encoder.freeze(), info


def shared_encoder(cfg: RunConfig, data: TrainingData, ctx: DistContext, progress: bool) -> tuple[Encoder, dict]:
    """Stage 1 once for every rank: rank 0 builds and pretrains the encoder (seeded by train.seed) while the
    others build the same shapes and wait; then each rank holds rank 0's weights, on its device, and its info."""

    def pretrain() -> tuple[Encoder, dict]:
        torch.manual_seed(cfg.train.seed)
        return prepare_encoder(cfg, data, ctx.device, progress)

    if ctx.world_size == 1:
        return pretrain()
    built = ctx.on_main(pretrain)
    encoder, info = built if built is not None else (build_encoder(cfg.model.encoder, data.dims).freeze(), {})
    module = cast(nn.Module, encoder)  # every registered encoder is a module (the Protocol names its verbs only)
    module.to(ctx.device)
    return encoder, ctx.share_from_main(module, info)
