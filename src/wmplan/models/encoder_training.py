"""Unsupervised pretraining of the keypoint encoder (a deep spatial autoencoder).

Frames are reconstructed (at half resolution, which is plenty to locate a keypoint and 4x cheaper)
by a decoder that sees only the encoder's output, in two ways whose squared errors are added:
- Gaussian path, the true bottleneck: a Gaussian blob drawn at each keypoint, given a learned colour,
  over a learned static background. Only coordinates get through, so they must sit on what moves.
- Heatmap path: the softmax heatmaps themselves, coloured, over the same background. It hands the
  gradient straight to the logits of the pixels where the object is, which the Gaussian path cannot
  do while a keypoint is still far from the object (its blob does not overlap it).
A concentration term (the heatmaps' spatial variance) removes the diffuse mass that the heatmap path
tolerates but that would pull every keypoint towards the image centre and shrink the latent.
The decoder is linear in the blobs: small, fast, and enough for sprite-like scenes such as Wall.

This module registers the `conv` encoder (wmplan.models.encoder_registry) and holds what the pretrainings
share: the choice of frames, the initialisation and the optimiser step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wmplan.models.encoder_registry import EncoderEntry, Pretraining, PretrainingData, register_encoder
from wmplan.models.encoders import ConvEncoder, coordinate_grid, images_to_float, numpy_to_tensor

if TYPE_CHECKING:
    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims

CPU = torch.device("cpu")  # the pretrainings' default device

CONCENTRATION_WEIGHT = 0.01


def half_resolution(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, ceil(H / 2), ceil(W / 2)), the heatmaps' size, by 2x2 means; an odd last
    row or column (Wall's 65 px) is repeated to fill its cell."""
    height, width = images.shape[-2:]
    if height % 2 or width % 2:
        images = F.pad(images, (0, width % 2, 0, height % 2), mode="replicate")
    return F.avg_pool2d(images, 2)


MEAN_IMAGE_FRAMES = 4096  # frames averaged into the encoder's mean image
PRETRAIN_SETTINGS = ("pretrain_steps", "pretrain_batch", "pretrain_lr", "pretrain_frames")
"""The EncoderConfig fields of a pretraining on the task's frames (conv, patch)."""


class KeypointDecoder(nn.Module):
    """(keypoints (B, K, 2), heatmaps (B, K, h, w)) -> two reconstructions (B, 3, h, w) at heatmap size."""

    # buffers (register_buffer), declared for the type checker
    grid: torch.Tensor

    def __init__(self, background: torch.Tensor, num_keypoints: int, blob_std_px: float = 2.0):
        super().__init__()
        size = background.shape[-1]
        self.register_buffer("grid", coordinate_grid(size), persistent=False)
        self.background = nn.Parameter(background.clone())  # (1, 3, h, w), starts at the mean frame
        # blob std in grid units (the grid spans 2 over `size` cells, a cell = 2 image px)
        self.log_blob_std = nn.Parameter(torch.tensor(float(np.log(blob_std_px / size))))
        self.blob_colour = nn.Parameter(torch.zeros(num_keypoints, 3))
        self.heatmap_colour = nn.Parameter(torch.zeros(num_keypoints, 3))
        self.heatmap_gain = size * size / 10  # a heatmap peak is ~1/(its area): bring it to ~1

    def blobs(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Gaussian maps (B, K, h, w) of peak 1, separable in x and y."""
        two_var = 2 * torch.exp(2 * self.log_blob_std)
        gx = torch.exp(-((self.grid - keypoints[..., :1]) ** 2) / two_var)  # (B, K, w)
        gy = torch.exp(-((self.grid - keypoints[..., 1:]) ** 2) / two_var)  # (B, K, h)
        return gy[..., :, None] * gx[..., None, :]

    def forward(self, keypoints: torch.Tensor, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # einsum rather than a 1x1 conv: the conv's backward is ~30x slower on CPU at these shapes
        from_blobs = self.background + torch.einsum("bkhw,kc->bchw", self.blobs(keypoints), self.blob_colour)
        from_heatmaps = self.background + torch.einsum(
            "bkhw,kc->bchw", heatmaps * self.heatmap_gain, self.heatmap_colour
        )
        return from_blobs, from_heatmaps


def heatmap_variance(keypoints: torch.Tensor, heatmaps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K): E[|p - keypoint|^2] under each heatmap, in grid units squared."""
    var_x = (heatmaps.sum(dim=2) * (grid - keypoints[..., :1]) ** 2).sum(dim=-1)
    var_y = (heatmaps.sum(dim=3) * (grid - keypoints[..., 1:]) ** 2).sum(dim=-1)
    return var_x + var_y


def step_and_report(
    opt: torch.optim.Optimizer, loss: torch.Tensor, losses: dict[str, torch.Tensor], smoothed: dict[str, float], bar
) -> None:
    """One optimiser step on `loss`; `smoothed` keeps exponential moving averages of `losses`, shown on
    the progress bar (readable where single batches are noisy)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    for key, value in losses.items():
        smoothed[key] = value.item() if key not in smoothed else 0.95 * smoothed[key] + 0.05 * value.item()
    bar.set_postfix({k: f"{v:.2e}" for k, v in smoothed.items()}, refresh=False)


def reinitialise(modules: list[nn.Module], gen: torch.Generator) -> None:
    """PyTorch's default conv and linear initialisation (uniform, bound 1/sqrt(fan_in)), drawn from `gen`."""
    for module in modules:
        if isinstance(module, nn.Conv2d | nn.Linear):
            bound = 1.0 / np.sqrt(module.weight[0].numel())
            with torch.no_grad():
                module.weight.copy_(torch.empty(module.weight.shape).uniform_(-bound, bound, generator=gen))
                if module.bias is not None:
                    module.bias.copy_(torch.empty(module.bias.shape).uniform_(-bound, bound, generator=gen))


def pretrain_conv_encoder(
    encoder: ConvEncoder,
    images: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = True,
    device: torch.device = CPU,
) -> dict:
    """Adam on the reconstruction losses over random batches of uint8 images (N, H, W, 3).

    Deterministic given `seed`: the encoder's convs are re-initialised and the mean-image frames and
    batches drawn from one torch.Generator. Returns the final (smoothed) losses and the time taken."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    data = numpy_to_tensor(images)
    reinitialise(list(encoder.modules()), gen)
    with torch.no_grad():
        sample = data[torch.randint(0, len(data), (min(len(data), MEAN_IMAGE_FRAMES),), generator=gen)]
        mean = images_to_float(sample).mean(dim=0, keepdim=True)
        encoder.mean_image.copy_(mean)
        encoder.log_inverse_temperature.fill_(float(np.log(encoder.initial_inverse_temperature)))
    encoder.to(device).train()
    decoder = KeypointDecoder(half_resolution(mean), encoder.num_tokens).to(device)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)

    smoothed: dict[str, float] = {}
    bar = tqdm(range(steps), desc="pretrain encoder", disable=not progress)
    for _ in bar:
        batch = data[torch.randint(0, len(data), (batch_size,), generator=gen)].to(device)
        target = half_resolution(images_to_float(batch))
        keypoints, heatmaps = encoder.keypoints_and_heatmaps(batch)
        from_blobs, from_heatmaps = decoder(keypoints, heatmaps)
        losses = {
            "blob_mse": F.mse_loss(from_blobs, target),
            "heatmap_mse": F.mse_loss(from_heatmaps, target),
            "concentration": heatmap_variance(keypoints, heatmaps, encoder.grid).mean(),
        }
        loss = losses["blob_mse"] + losses["heatmap_mse"] + CONCENTRATION_WEIGHT * losses["concentration"]
        step_and_report(opt, loss, losses, smoothed, bar)
    encoder.eval()
    return {
        **smoothed,
        "blob_std_px": float(decoder.log_blob_std.detach().exp()) * decoder.grid.numel(),
        "inverse_temperature": float(encoder.log_inverse_temperature.detach().exp()),
        "seconds": time.perf_counter() - start,
    }


def pretraining_frames(
    obs: Any, bounds: np.ndarray, limit: int, seed: int, by_episode: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """At most `limit` of the frames obs (N, H, W, 3) (an array, a tensor, or frames read from the store on
    indexing: only the chosen ones are read), whose episodes are bounds (E, 2) [start, end):
    random frames in their order, with None; or (by_episode) random whole episodes, as many as fit,
    in their order, with their bounds (E', 2) in the returned frames (a lone episode longer than
    `limit` is cut)."""
    rng = np.random.default_rng(seed)
    if not by_episode:
        return np.asarray(obs[np.sort(rng.choice(len(obs), min(limit, len(obs)), replace=False))]), None
    order = rng.permutation(len(bounds))
    fit = int(np.searchsorted(np.cumsum(bounds[order, 1] - bounds[order, 0]), limit, side="right"))
    keep = bounds[np.sort(order[: max(1, fit)])]
    images = np.concatenate([np.asarray(obs[s:e]) for s, e in keep])[:limit]
    ends = np.cumsum(keep[:, 1] - keep[:, 0])
    return images, np.minimum(np.stack([ends - (keep[:, 1] - keep[:, 0]), ends], 1), len(images))


def build_conv_encoder(cfg: EncoderConfig, dims: TaskDims) -> ConvEncoder:
    if cfg.keypoints < 1:
        raise ValueError(f"model.encoder.keypoints must be at least 1, got {cfg.keypoints}")
    return ConvEncoder(image_size=dims.image_size, num_keypoints=cfg.keypoints)


def conv_pretraining_inputs(enc: EncoderConfig, data: PretrainingData, seed: int) -> tuple[Any, dict[str, Any]]:
    """Random frames of the training split (at most model.encoder.pretrain_frames); no options."""
    return pretraining_frames(data.train.obs, data.train_bounds, enc.pretrain_frames, seed, False)[0], {}


register_encoder(
    EncoderEntry(
        "conv",
        "pixel model (`conv` keypoint encoder on RGB frames)",
        build_conv_encoder,
        pretraining=Pretraining(pretrain_conv_encoder, conv_pretraining_inputs),
        minimums={"keypoints": 1},
        settings=PRETRAIN_SETTINGS,
    )
)
