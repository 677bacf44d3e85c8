"""Stage 1 of training: the encoder built and, where its registry entry has a pretraining (conv, patch,
jepa), trained on the training split; then how well its latent distances follow the true state's
distances (encoder.json's latent_distance_spearman), for any encoder.

Example:
    >>> encoder, info = prepare_encoder(cfg, TrainingData(cfg), torch.device("cpu"), progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from wmplan.envs import make_task
from wmplan.models.encoder_build import build_encoder
from wmplan.models.encoder_registry import Encoder, encoder_entry
from wmplan.models.encoders import distance_spearman

if TYPE_CHECKING:
    from wmplan.config import RunConfig
    from wmplan.data.windows import TrajectoryWindows
    from wmplan.models.world_model import WorldModel
    from wmplan.training.trainer import TrainingData


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
    tokens = model.encode_visual(obs=windows.obs[idx, None].to(device), state=windows.state[idx, None].to(device))
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
