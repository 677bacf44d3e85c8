"""An encoder learned end to end with a predictor (a JEPA), the CPU-sized analogue of LeWM's.

The keypoint and patch encoders learn from pixels alone (reconstruction), so nothing in their training
asks the latent to be predictable from the action. Here the encoder and an action-conditioned predictor
learn together to predict the next frame's latent (`wmplan.models.jepa_training`). Prediction alone has
a trivial optimum, a constant latent, so a regulariser keeps the latents spread: SIGReg (LeWM), which
asks every one-dimensional random projection of a batch of latents to look like a standard normal
sample, measured by the Epps-Pulley statistic (the squared distance between the sample's empirical
characteristic function and the normal one's). It needs no negative pairs, no stop-gradient and no
moving-average target, and an isotropic latent weighs every direction alike in the planner's distance.

After its training the encoder is frozen like every other, and the world model's predictor is trained
(and finetuned) on its tokens as usual.

Example:
    >>> enc = JepaEncoder(num_tokens=4, dim=8)
    >>> enc(torch.zeros(2, 64, 64, 3, dtype=torch.uint8)).shape   # (B, P, D)
    torch.Size([2, 4, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from wmplan.models.encoders import images_to_float

# Epps-Pulley's integration grid: the characteristic functions are compared at these t (both are even
# in t for the real part and odd for the imaginary one, so t >= 0 suffices), weighted by the normal's
# own exp(-t^2 / 2), which makes the tails beyond t = 4 irrelevant.
EPPS_PULLEY_T = torch.linspace(0.0, 4.0, 17)


class JepaEncoder(nn.Module):
    """Images (B, H, W, 3) -> tokens (B, num_tokens, dim).

    Three strided convs take a 64 px frame to an 8x8 grid of `channels` features, and two linear layers
    map the whole grid (positions included: a flattened grid, not a pooled one) to the latent. No
    normalisation layers, so train and eval modes compute the same function; the pretraining set's mean
    image is subtracted first (set by pretraining), so the static scene starts near 0.
    """

    mean_image: torch.Tensor  # buffer, declared for the type checker

    def __init__(self, image_size: int = 64, num_tokens: int = 4, dim: int = 8, channels: int = 32, hidden: int = 256):
        super().__init__()
        if num_tokens < 1 or dim < 1:
            raise ValueError(f"a JEPA latent needs at least 1 token of width 1, got {num_tokens} x {dim}")
        if image_size < 16:
            raise ValueError(f"the JEPA encoder takes images of at least 16 px, got {image_size}")
        self.image_size, self.num_tokens, self.dim = image_size, num_tokens, dim
        self.net = nn.Sequential(
            nn.Conv2d(3, channels // 2, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        side = image_size
        for _ in range(3):
            side = (side + 1) // 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU(), nn.Linear(hidden, num_tokens * dim)
        )
        self.register_buffer("mean_image", torch.zeros(1, 3, image_size, image_size))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs uint8 (B, H, W, 3) or float in [0, 1] -> tokens float (B, num_tokens, dim)."""
        if obs.ndim != 4 or tuple(obs.shape[1:]) != (self.image_size, self.image_size, 3):
            raise ValueError(
                f"this JEPA encoder takes {self.image_size}x{self.image_size} RGB images (B, H, W, 3), "
                f"got shape {tuple(obs.shape)}"
            )
        z = self.head(self.net(images_to_float(obs) - self.mean_image))
        return z.view(len(obs), self.num_tokens, self.dim)

    def freeze(self) -> JepaEncoder:
        """No parameter requires grad; eval mode. Returns self."""
        self.requires_grad_(False)
        return self.eval()


def sigreg(latents: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """The Epps-Pulley statistic of latents (N, F) projected on unit directions (F, M), averaged over
    the M directions: the weighted integral over t of |ECF(t) - exp(-t^2 / 2)|^2, 0 for a standard normal
    sample in every direction (up to sampling noise of order 1 / N) and near 1 for a collapsed one."""
    t = EPPS_PULLEY_T.to(latents.device, latents.dtype)
    h = (latents @ projections)[..., None] * t  # (N, M, T)
    real, imag = torch.cos(h).mean(0), torch.sin(h).mean(0)  # the empirical characteristic function (M, T)
    normal = torch.exp(-0.5 * t**2)
    gap = (real - normal) ** 2 + imag**2
    return torch.trapezoid(gap * normal, t, dim=-1).mean() * 2  # both halves of the real line


def random_directions(dim: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """(dim, count) unit vectors, uniform on the sphere."""
    u = torch.randn(dim, count, generator=gen)
    return u / u.norm(dim=0, keepdim=True)
