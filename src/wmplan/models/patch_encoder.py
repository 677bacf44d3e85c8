"""A small frozen CNN whose tokens are a grid of patch features, the CPU-sized analogue of DINO-WM's.

Keypoints (`ConvEncoder`) suit a scene of one dot; a patch grid also shows shape and orientation (the
T of PushT, the bends of a rope). A patch latent has one weakness for planning: with purely local
features, two frames whose objects sit in disjoint patches are all equally far apart, so the latent
distance stops growing after a few pixels of motion (on PushT, un-spread patch features or pooled
pixels rank distances at Spearman 0.45-0.73). So the CNN's per-patch features are spread over the
grid by two fixed Gaussian kernels, and a token holds both:
- near (dim // 2 channels): the features within about one patch (std `near_sigma` cells): where
  things are, and their shape at the patch scale;
- far (the other half): the same features spread wide (std `context_sigma` cells), so a token keeps
  changing while an object moves anywhere in the image and the distance keeps growing.
The kernels are fixed, not learned: learned ones lost their spread within a few hundred steps.
`wmplan.models.patch_training` pretrains the CNN from pixels alone. Cost: the predictor sees 64
tokens per frame instead of the keypoint encoder's 8, so a `small` training step costs ~7x as much
on a CPU (patch_grid 4: ~1.2x, but PushT's Spearman drops from 0.92 to 0.84). `pool` averages blocks of
the pretrained 8x8 grid into fewer tokens instead (pool 2: 16 tokens).

Example:
    >>> enc = PatchEncoder(grid=8, dim=8)
    >>> enc(torch.zeros(4, 64, 64, 3, dtype=torch.uint8)).shape   # (B, P, D) = (B, 8 * 8, 8)
    torch.Size([4, 64, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmplan.models.encoders import images_to_float


def spread_matrix(grid: int, sigma: float) -> torch.Tensor:
    """(P, P), P = grid^2: M[p, q] = a Gaussian of std `sigma` cells of the distance between cells p and
    q (row-major), scaled so that the kernel has unit L2 norm (spreading a lone feature keeps its energy,
    so near and far channels weigh alike in a distance). As a matrix product the spreading costs a
    tenth of the equivalent (2 grid - 1)^2 depthwise convolution on a CPU."""
    r = torch.arange(-(grid - 1), grid, dtype=torch.float32)
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.norm()  # the 2-D kernel g x g then has unit L2 norm
    idx = torch.arange(grid)
    g1 = g[idx[:, None] - idx[None, :] + grid - 1]  # (grid, grid): 1-D kernel between rows (or columns)
    return torch.kron(g1, g1)


class PatchEncoder(nn.Module):
    """Images (B, H, W, 3) -> tokens (B, grid * grid, dim), row-major over the patch grid.

    - The pretraining set's mean image is subtracted first (`mean_image`, set by pretraining), so the
      static scene is ~0 and features come from what moves.
    - Two strided convs (to 1/4 resolution), an average pool to the grid and a 1x1 conv give dim // 2
      features per patch; the near and far kernels spread each over the grid into the two token halves.
      256 frames at 64 px take about half the ConvEncoder's time on a CPU.
    - Scale: `token_mean` (P, D) is subtracted and the result divided by `token_scale` (a scalar), both
      measured on pretraining frames once pretraining ends, so tokens have unit mean square. An offset
      and one global factor keep the ranking of latent distances exactly as pretrained; per-channel
      scales (tried) trade Rope's ranking for PushT's. A LayerNorm was rejected: it brings every token to
      unit variance, blowing an empty background patch (features ~0) up to the size of one holding the
      object.
    - No normalisation layers or dropout, so train and eval modes compute the same function.
    """

    # buffers (register_buffer), declared for the type checker
    mean_image: torch.Tensor
    token_mean: torch.Tensor
    token_scale: torch.Tensor

    def __init__(
        self,
        image_size: int = 64,
        grid: int = 8,
        dim: int = 8,
        channels: int = 16,
        context_sigma: float = 2.0,
        near_sigma: float = 1.0,
        pool: int = 1,
    ):
        super().__init__()
        if grid < 1 or dim < 2 or dim % 2:
            raise ValueError(
                f"the patch grid must be at least 1 and the token dim an even number >= 2, got grid {grid}, dim {dim}"
            )
        if image_size < 4 * grid:
            raise ValueError(f"a {grid}x{grid} patch grid needs images of at least {4 * grid} px, got {image_size}")
        if pool < 1 or grid % pool:
            raise ValueError(f"the token pooling must divide the patch grid ({grid}), got {pool}")
        if min(context_sigma, near_sigma) <= 0:
            raise ValueError(f"the kernel widths must be positive, got near {near_sigma}, context {context_sigma}")
        self.image_size, self.grid, self.dim, self.pool = image_size, grid, dim, pool
        self.num_tokens = (grid // pool) ** 2
        half = dim // 2
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.local = nn.Conv2d(channels, half, 1)
        self.register_buffer(
            "spread",
            torch.stack([spread_matrix(grid, near_sigma), spread_matrix(grid, context_sigma)]),
            persistent=False,
        )
        self.register_buffer("mean_image", torch.zeros(1, 3, image_size, image_size))
        self.register_buffer("token_mean", torch.zeros(self.num_tokens, dim))
        self.register_buffer("token_scale", torch.ones(()))

    def feature_grid(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (B, H, W, 3) -> unscaled features (B, dim, grid, grid): [near | far] channels."""
        if obs.ndim != 4 or tuple(obs.shape[1:]) != (self.image_size, self.image_size, 3):
            raise ValueError(
                f"this patch encoder takes {self.image_size}x{self.image_size} RGB images (B, H, W, 3), "
                f"got shape {tuple(obs.shape)}"
            )
        h = self.net(images_to_float(obs) - self.mean_image)
        local = self.local(F.adaptive_avg_pool2d(h, self.grid)).flatten(2)  # (B, dim // 2, P)
        spread = torch.einsum("bcq,kpq->bkcp", local, self.spread)  # (B, 2, dim // 2, P): near, far
        return spread.reshape(len(local), self.dim, self.grid, self.grid)

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """(B, dim, grid, grid) -> (B, P, dim), each token the mean of a pool x pool block of cells (pool 1:
        every cell), row-major. Pretraining sees the whole grid; planning, the fewer pooled tokens."""
        if self.pool > 1:
            features = F.avg_pool2d(features, self.pool)
        return features.flatten(2).transpose(1, 2)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs uint8 (B, H, W, 3) or float in [0, 1] -> tokens float (B, P, dim), P = (grid / pool)^2,
        centred and scaled."""
        return (self.pooled(self.feature_grid(obs)) - self.token_mean) / self.token_scale

    def freeze(self) -> PatchEncoder:
        """No parameter requires grad; eval mode. Returns self."""
        self.requires_grad_(False)
        return self.eval()
