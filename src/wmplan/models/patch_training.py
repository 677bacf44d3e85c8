"""Unsupervised pretraining of the patch encoder, from pixels only (no simulator state).

The objective is the sum of two terms (benchmarks/encoder_geometry.py compares it with each part):
- Reconstruction, rarity-weighted: a light decoder (conv, upsample, conv, upsample, conv) turns the token
  grid back into the frame at half resolution (minus the mean image). The input gets a little pixel
  noise and a share of the grid's cells is replaced by a learned mask vector before decoding, so a
  cell must also be told by its neighbours' tokens. Each pixel's squared error is weighted by the
  inverse frequency of its colour over the pretraining frames (`rarity_power` 1): with plain MSE an
  object weighs by its area, and PushT's agent (an eighth of the block's pixels) got no channel of its
  own (held-out Spearman 0.81 instead of 0.92, both with the ranking term below).
- Ranking (`rank_weight`, needs `episodes`): for frames t, t + k1 and t + k2 of one episode
  (0 < k1 < k2 <= MAX_GAP), a hinge asks ||z_t - z_t+k2|| to exceed ||z_t - z_t+k1|| by a margin
  in units of the batch's mean distance: motion accumulates over a few steps, so the latent distance
  should grow with the gap (PushT 0.91 -> 0.92, Rope 0.94 -> 0.95). Short gaps only: at 30 steps a
  PushT pusher often comes back, and the true state itself breaks the order in 21% of the triples.
Afterwards the token offset and scale are measured on the pretraining frames (see PatchEncoder).
This module registers the `patch` encoder (wmplan.models.encoder_registry).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wmplan.models.encoder_registry import EncoderEntry, Pretraining, PretrainingData, register_encoder
from wmplan.models.encoder_training import (
    CPU,
    MEAN_IMAGE_FRAMES,
    PRETRAIN_SETTINGS,
    pretraining_frames,
    reinitialise,
    step_and_report,
)
from wmplan.models.encoders import images_to_float, numpy_to_tensor
from wmplan.models.patch_encoder import PatchEncoder

if TYPE_CHECKING:
    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims

PIXEL_NOISE = 0.05  # std of the Gaussian noise added to the input pixels (in [0, 1] units)
MASK_FRACTION = 0.25  # share of grid cells hidden from the decoder
RANK_MARGIN = 0.25  # hinge margin, in units of the batch's mean latent distance
MAX_GAP = 8  # k2 is drawn up to this many frames after the anchor
COLOUR_BINS = 8  # per RGB channel, for the colour frequencies of the rarity weights
SCALE_FRAMES = 2048  # frames on which the token offset and scale are measured


class PatchDecoder(nn.Module):
    """Feature grid (B, D, g, g) -> image (B, 3, out, out), by convs and bilinear upsampling."""

    def __init__(self, dim: int, out_size: int, channels: int = 16):
        super().__init__()
        self.out_size = out_size
        self.mask_token = nn.Parameter(torch.zeros(dim, 1, 1))
        self.inp = nn.Conv2d(dim, channels, 3, padding=1)
        self.mid = nn.Conv2d(channels, channels, 3, padding=1)
        self.out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:  # mask (B, 1, g, g), True where the cell is hidden
            features = torch.where(mask, self.mask_token, features)
        h = F.relu(self.inp(features))
        h = F.interpolate(h, size=(self.out_size // 2,) * 2, mode="bilinear", align_corners=False)
        h = F.relu(self.mid(h))
        h = F.interpolate(h, size=(self.out_size,) * 2, mode="bilinear", align_corners=False)
        return self.out(h)


def colour_bins(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, h, w) in [0, 1] -> (B, h, w) index of each pixel's colour bin in [0, COLOUR_BINS^3)."""
    q = (x.clamp(0, 1) * (COLOUR_BINS - 1e-3)).long()
    return (q[:, 0] * COLOUR_BINS + q[:, 1]) * COLOUR_BINS + q[:, 2]


def rarity_weights(sample: torch.Tensor, power: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """From images (B, 3, h, w): a function images -> per-pixel weights (B, 1, h, w), each pixel's
    colour frequency (over `sample`) to the power -`power`, scaled to mean 1 on `sample`."""
    bins = colour_bins(sample)
    freq = torch.bincount(bins.flatten(), minlength=COLOUR_BINS**3).float() / bins.numel()
    table = (freq + 1e-4) ** -power  # the floor caps the weight of colours (almost) never seen
    table = table / table[bins].mean()
    return lambda x: table.to(x.device)[colour_bins(x)][:, None]


def sample_triples(bounds: np.ndarray, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 3) frame indices t < t + k1 < t + k2 in one episode; bounds (E, 2) [start, end), some >= 3 long."""
    lengths = torch.as_tensor(bounds[:, 1] - bounds[:, 0])
    ok = torch.nonzero(lengths >= 3).flatten()
    ep = ok[torch.multinomial(lengths[ok].double(), n, replacement=True, generator=gen)]
    start, length = torch.as_tensor(bounds[:, 0])[ep], lengths[ep]
    gap2 = (
        2 + (torch.rand(n, generator=gen) * (torch.clamp(length - 1, max=MAX_GAP) - 1)).long()
    )  # 2..min(L - 1, MAX_GAP)
    gap1 = 1 + (torch.rand(n, generator=gen) * (gap2 - 1)).long()  # 1..gap2 - 1
    t = start + (torch.rand(n, generator=gen) * (length - gap2)).long()
    return torch.stack([t, t + gap1, t + gap2], dim=1)


def rank_loss(z: torch.Tensor) -> torch.Tensor:
    """z (n, 3, F) latents of (t, t + k1, t + k2): hinge on d(t, t + k2) - d(t, t + k1), relative to
    the batch's mean distance (so that growing every distance does not pay)."""
    near = (z[:, 0] - z[:, 1]).norm(dim=-1)
    far = (z[:, 0] - z[:, 2]).norm(dim=-1)
    unit = 0.5 * (near + far).mean().detach() + 1e-8
    return F.relu(RANK_MARGIN - (far - near) / unit).mean()


@torch.no_grad()
def set_token_scale(encoder: PatchEncoder, data: torch.Tensor, gen: torch.Generator, device: torch.device) -> None:
    """token_mean := mean features per (token, channel); token_scale := RMS of the centred features."""
    pick = torch.randint(0, len(data), (min(len(data), SCALE_FRAMES),), generator=gen)
    feats = torch.cat(
        [encoder.pooled(encoder.feature_grid(data[pick[i : i + 256]].to(device))) for i in range(0, len(pick), 256)]
    )
    encoder.token_mean.copy_(feats.mean(dim=0))
    encoder.token_scale.copy_((feats - encoder.token_mean).pow(2).mean().sqrt().clamp_min(1e-8))


def pretrain_patch_encoder(
    encoder: PatchEncoder,
    images: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    episodes: np.ndarray | None = None,
    rank_weight: float = 1.0,
    rarity_power: float = 1.0,
    progress: bool = True,
    device: torch.device = CPU,
) -> dict:
    """Adam on the objective above over random batches of uint8 images (N, H, W, 3). `episodes`
    (E, 2): [start, end) of each episode in `images`, frames in time order; the ranking term needs
    it, and without it (or with rank_weight 0) only reconstruction is trained. rarity_power 0 makes
    the reconstruction a plain MSE.

    Deterministic given `seed`: weights, mean-image frames, batches, noise and masks all come from
    one torch.Generator. Returns the final (smoothed) losses, the token scale and the time taken."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    data = numpy_to_tensor(images)
    bounds = None if episodes is None else np.asarray(episodes, dtype=np.int64).reshape(-1, 2)
    ranking = rank_weight > 0 and bounds is not None and bool(np.any(bounds[:, 1] - bounds[:, 0] >= 3))
    decoder = PatchDecoder(encoder.dim, encoder.image_size // 2)
    reinitialise([*encoder.modules(), *decoder.modules()], gen)
    with torch.no_grad():
        decoder.mask_token.zero_()
        sample = images_to_float(data[torch.randint(0, len(data), (min(len(data), MEAN_IMAGE_FRAMES),), generator=gen)])
        encoder.mean_image.copy_(sample.mean(dim=0, keepdim=True))
        encoder.token_mean.zero_()
        encoder.token_scale.fill_(1.0)
    weigh = rarity_weights(F.avg_pool2d(sample, 2), rarity_power) if rarity_power else None
    encoder.to(device).train().requires_grad_(True)  # also a frozen encoder is trained (freeze it again after)
    decoder.to(device)
    mean_half = F.avg_pool2d(encoder.mean_image, 2)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)

    smoothed: dict[str, float] = {}
    bar = tqdm(range(steps), desc="pretrain patch encoder", disable=not progress)
    for _ in bar:
        if ranking and bounds is not None:  # the triples' frames are also the reconstruction batch
            idx = sample_triples(bounds, max(1, batch_size // 3), gen).flatten()
        else:
            idx = torch.randint(0, len(data), (batch_size,), generator=gen)
        x = images_to_float(data[idx]).to(device)
        noisy = (x + PIXEL_NOISE * torch.randn(x.shape, generator=gen).to(device)).permute(0, 2, 3, 1)
        features = encoder.feature_grid(noisy)
        mask = (torch.rand(len(idx), 1, encoder.grid, encoder.grid, generator=gen) < MASK_FRACTION).to(device)
        half = F.avg_pool2d(x, 2)
        target = half - mean_half
        error = (decoder(features, mask) - target).pow(2)
        if weigh is not None:
            error = error * weigh(half)
        # relative to the target's energy, so rank_weight means the same on every task
        losses = {"recon": error.mean() / target.pow(2).mean().clamp_min(1e-8)}
        loss = losses["recon"]
        if ranking:
            losses["rank"] = rank_loss(features.flatten(1).view(-1, 3, features[0].numel()))
            loss = loss + rank_weight * losses["rank"]
        step_and_report(opt, loss, losses, smoothed, bar)
    encoder.eval()
    set_token_scale(encoder, data, gen, device)
    return {**smoothed, "token_scale": float(encoder.token_scale), "seconds": time.perf_counter() - start}


def build_patch_encoder(cfg: EncoderConfig, dims: TaskDims) -> PatchEncoder:
    """The patch encoder of the settings model.encoder.patch_*, each checked against the task's image size."""
    if cfg.patch_grid < 1 or dims.image_size < 4 * cfg.patch_grid:
        raise ValueError(
            f"model.encoder.patch_grid must lie in [1, image size / 4 = {dims.image_size // 4}], got {cfg.patch_grid}"
        )
    if cfg.patch_dim < 2 or cfg.patch_dim % 2:
        raise ValueError(f"model.encoder.patch_dim must be an even number >= 2, got {cfg.patch_dim}")
    if cfg.patch_grid % cfg.patch_pool:
        raise ValueError(
            f"model.encoder.patch_pool must divide model.encoder.patch_grid ({cfg.patch_grid}), got {cfg.patch_pool}"
        )
    if cfg.patch_context_sigma <= 0:
        raise ValueError(f"model.encoder.patch_context_sigma must be positive, got {cfg.patch_context_sigma}")
    return PatchEncoder(
        image_size=dims.image_size,
        grid=cfg.patch_grid,
        dim=cfg.patch_dim,
        context_sigma=cfg.patch_context_sigma,
        pool=cfg.patch_pool,
    )


def patch_pretraining_inputs(enc: EncoderConfig, data: PretrainingData, seed: int) -> tuple[Any, dict[str, Any]]:
    """Whole episodes of the training split (the ranking term compares frames of one episode), at most
    model.encoder.pretrain_frames frames, with the weights of the objective's terms."""
    images, episodes = pretraining_frames(data.train.obs, data.train_bounds, enc.pretrain_frames, seed, True)
    return images, {"episodes": episodes, "rank_weight": enc.patch_rank_weight, "rarity_power": enc.patch_rarity_power}


register_encoder(
    EncoderEntry(
        "patch",
        "pixel model (`patch` encoder: a grid of patch-feature tokens on RGB frames)",
        build_patch_encoder,
        pretraining=Pretraining(pretrain_patch_encoder, patch_pretraining_inputs),
        minimums={"patch_pool": 1},
        settings=(
            *PRETRAIN_SETTINGS,
            "patch_grid",
            "patch_dim",
            "patch_context_sigma",
            "patch_rank_weight",
            "patch_rarity_power",
        ),
    )
)
