"""Unsupervised pretraining of the keypoint encoder (a deep spatial autoencoder).

The decoder sees nothing but the keypoints: it draws an isotropic Gaussian at each keypoint and maps
those K maps (plus a learned, input-independent background) to the image. Whatever changes between
frames can therefore only be reconstructed by moving keypoints onto it; the static scene is absorbed by
the background. The Gaussians' width is learned and starts wide, so a keypoint far from the dot still
overlaps it and receives a gradient towards it (a narrow start leaves keypoints stranded).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from wmplan.models.encoders import ConvEncoder, coordinate_grid, images_to_float


class KeypointDecoder(nn.Module):
    """Keypoints (B, K, 2) in [-1, 1] -> image (B, 3, H, W) (float, ~[0, 1])."""

    def __init__(self, image_size: int, num_keypoints: int, channels: int = 16, init_std_px: float = 6.0):
        super().__init__()
        self.register_buffer("grid", coordinate_grid(image_size), persistent=False)
        # std in grid units (the grid spans 2 over image_size px); log-parametrised to stay positive
        self.log_std = nn.Parameter(torch.full((num_keypoints,), float(np.log(2 * init_std_px / image_size))))
        self.background = nn.Parameter(torch.zeros(1, 3, image_size, image_size))
        self.net = nn.Sequential(
            nn.Conv2d(num_keypoints, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 3, 3, padding=1),
        )

    def render(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Gaussian maps (B, K, H, W), peak 1, separable in x and y."""
        var2 = 2 * torch.exp(2 * self.log_std)[None, :, None]  # (1, K, 1)
        gx = torch.exp(-((self.grid - keypoints[..., :1]) ** 2) / var2)  # (B, K, W)
        gy = torch.exp(-((self.grid - keypoints[..., 1:]) ** 2) / var2)  # (B, K, H)
        return gy[..., :, None] * gx[..., None, :]

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return self.background + self.net(self.render(keypoints))


def pretrain(
    encoder: ConvEncoder,
    images: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: bool = True,
    device: torch.device = torch.device("cpu"),
) -> dict:
    """Adam on the mean squared reconstruction error of random batches of uint8 images (N, H, W, 3).
    Deterministic given `seed`: initialisation and batches come from one torch.Generator."""
    gen = torch.Generator().manual_seed(seed)
    decoder = KeypointDecoder(encoder.image_size, encoder.num_tokens).to(device)
    # re-initialise the encoder from the generator too, so two calls with one seed match exactly
    for module in list(encoder.modules()) + list(decoder.modules()):
        if isinstance(module, nn.Conv2d):
            bound = 1.0 / np.sqrt(module.weight[0].numel())
            with torch.no_grad():
                module.weight.copy_(torch.empty_like(module.weight, device="cpu").uniform_(-bound, bound, generator=gen) * np.sqrt(3))
                module.bias.zero_()
    encoder.to(device).train()
    data = torch.from_numpy(np.ascontiguousarray(images))
    opt = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=lr)
    start, ema = time.perf_counter(), None
    bar = tqdm(range(steps), desc="pretrain encoder", disable=not progress)
    for _ in bar:
        idx = torch.randint(0, len(data), (batch_size,), generator=gen)
        batch = data[idx].to(device)
        loss = torch.mean((decoder(encoder(batch)) - images_to_float(batch)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{ema:.2e}", refresh=False)
    encoder.eval()
    return {
        "recon_loss": float(ema) if ema is not None else float("nan"),
        "render_std_px": float(torch.exp(decoder.log_std).mean() * encoder.image_size / 2),
        "seconds": time.perf_counter() - start,
    }
