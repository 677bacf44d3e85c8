"""Frozen observation encoders: images (or simulator state) -> tokens (B, P, D).

The world model predicts next-frame tokens and the planner minimises a distance between predicted and
goal tokens, so the encoder's latent distance must keep growing with the true distance far from the
goal. A plain autoencoder latent saturates after a few pixels of motion; here the bottleneck is a set
of K keypoints (a deep spatial autoencoder): a small CNN emits K heatmaps, a spatial softmax turns each
into its expected (x, y), and the tokens are those coordinates. A coordinate moves linearly with the
object it tracks, so the latent distance is (close to) proportional to the true distance at any range.
Pretraining (`wmplan.models.encoder_training`) reconstructs the image from Gaussians drawn at the
keypoints, which forces the keypoints onto whatever moves.

Example:
    >>> enc = ConvEncoder()
    >>> enc(torch.zeros(4, 64, 64, 3, dtype=torch.uint8)).shape   # (B, P, D) = (4, 8, 2)
    torch.Size([4, 8, 2])
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn


def images_to_float(obs: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) in [0, 255] or float in [0, 1] -> float (B, 3, H, W) in [0, 1]."""
    x = obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()
    return x.permute(0, 3, 1, 2)


def coordinate_grid(size: int) -> torch.Tensor:
    """(size,) pixel-centre coordinates in [-1, 1] (pixel i -> -1 + (2 i + 1) / size)."""
    return (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1


class ConvEncoder(nn.Module):
    """Images -> K keypoints: tokens (B, K, 2) holding each keypoint's (x, y) in [-1, 1].

    Two stride-1/2 convs keep the heatmaps at half resolution (32x32 for 64x64 frames): the soft
    argmax still resolves sub-pixel positions, and a batch of 256 frames costs ~30 ms on 2 cores.
    No normalisation layers, so train and eval modes compute the same function.
    """

    def __init__(self, image_size: int = 64, num_keypoints: int = 8, channels: int = 16):
        super().__init__()
        self.image_size = image_size
        self.num_tokens = num_keypoints
        self.dim = 2
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, num_keypoints, 1),
        )
        self.heatmap_size = (image_size + 1) // 2
        self.register_buffer("grid", coordinate_grid(self.heatmap_size), persistent=False)

    def heatmaps(self, obs: torch.Tensor) -> torch.Tensor:
        """Softmax-normalised heatmaps (B, K, h, w), each summing to 1."""
        logits = self.net(images_to_float(obs))
        b, k, h, w = logits.shape
        return torch.softmax(logits.flatten(2), dim=-1).view(b, k, h, w)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs uint8 (B, H, W, 3) or float in [0, 1] -> tokens float (B, K, 2), (x, y) in [-1, 1]."""
        p = self.heatmaps(obs)
        x = (p.sum(dim=2) * self.grid).sum(dim=-1)  # marginal over rows, then E[column]
        y = (p.sum(dim=3) * self.grid).sum(dim=-1)
        return torch.stack([x, y], dim=-1)

    def freeze(self) -> "ConvEncoder":
        """No parameter requires grad; eval mode. Returns self."""
        self.requires_grad_(False)
        return self.eval()


class StateEncoder(nn.Module):
    """The trivial encoder for fast experiments: normalised state (B, S) -> one token (B, 1, S)."""

    def __init__(self, state_dim: int):
        super().__init__()
        self.num_tokens = 1
        self.dim = state_dim

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return state.float().unsqueeze(1)

    def freeze(self) -> "StateEncoder":
        return self.eval()


@torch.no_grad()
def encode_images(encoder: nn.Module, images: np.ndarray, batch_size: int = 512) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> tokens (N, P, D), in batches, without gradients."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = [encoder(torch.from_numpy(images[i : i + batch_size]).to(device)).cpu() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


def random_pairs(n: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two index arrays (pairs,) of distinct frames i != j, drawn uniformly."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # never equal to i
    return i, j


def latent_distance_spearman(encoder: nn.Module, images: np.ndarray, states: np.ndarray, *, pairs: int = 2000, seed: int = 0) -> float:
    """Spearman rank correlation between ||tokens_i - tokens_j|| (flattened) and ||state_i - state_j||
    over `pairs` random pairs of frames; images uint8 (N, H, W, 3), states (N, S). Use held-out frames."""
    tokens = encode_images(encoder, images).flatten(1).numpy()
    i, j = random_pairs(len(images), pairs, seed)
    latent = np.linalg.norm(tokens[i] - tokens[j], axis=1)
    true = np.linalg.norm(np.asarray(states, np.float64)[i] - np.asarray(states, np.float64)[j], axis=1)
    return float(spearmanr(latent, true).statistic)


def pretrain_conv_encoder(encoder: ConvEncoder, images: np.ndarray, *, steps: int, batch_size: int, lr: float, seed: int, progress: bool = True, device: torch.device = torch.device("cpu")) -> dict:
    """Train `encoder` unsupervised on uint8 images (N, H, W, 3); see `encoder_training`."""
    from wmplan.models.encoder_training import pretrain

    return pretrain(encoder, images, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=progress, device=device)
