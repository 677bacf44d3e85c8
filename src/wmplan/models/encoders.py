"""Frozen observation encoders: images (or simulator state) -> tokens (B, P, D).

The world model predicts next-frame tokens and the planner minimises a distance between predicted and
goal tokens, so the latent distance must keep growing with the true distance far from the goal. A
plain autoencoder latent saturates after a few pixels of motion. Here the bottleneck is a set of K
keypoints (a deep spatial autoencoder): a small CNN emits K heatmaps, a spatial softmax turns each into
its expected (x, y), and the tokens are those coordinates. A coordinate moves linearly with what it
tracks, so the latent distance stays proportional to the true distance at any range.
`wmplan.models.encoder_training` pretrains it by reconstructing frames from the keypoints alone, and
registers it (wmplan.models.encoder_registry); this module registers the encoders of the state.

Example:
    >>> enc = ConvEncoder()
    >>> enc(torch.zeros(4, 64, 64, 3, dtype=torch.uint8)).shape   # (B, P, D) = (B, K, 2)
    torch.Size([4, 8, 2])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from wmplan.models.encoder_registry import EncoderEntry, register_encoder

if TYPE_CHECKING:
    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims


def images_to_float(obs: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) in [0, 255] or float in [0, 1] -> float (B, 3, H, W) in [0, 1], contiguous
    (a permuted, non-contiguous input makes the conv backward several times slower on CPU)."""
    x = obs.float() / 255.0 if obs.dtype == torch.uint8 else obs.float()
    return x.permute(0, 3, 1, 2).contiguous()


def numpy_to_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing memory with `array`, also when it is read-only (we never write to it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(array))


def coordinate_grid(size: int) -> torch.Tensor:
    """(size,) pixel-centre coordinates in [-1, 1]: pixel i -> -1 + (2 i + 1) / size."""
    return (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1


class ConvEncoder(nn.Module):
    """Images -> K keypoints: tokens (B, K, 2), each keypoint's (x, y) in [-1, 1] (x = column).

    - The input has the pretraining set's mean image subtracted (`mean_image`, set by pretraining):
      the static scene becomes ~0, so even the untrained heatmaps peak where something moves.
    - Two convs (the first of stride 2) give heatmaps at half resolution (32x32 for 64x64 frames);
      the soft argmax still resolves sub-pixel positions, and 256 frames cost ~40 ms on 2 cores.
    - The logits are multiplied by a learned inverse temperature, initially high, so the heatmaps
      start sharp: a diffuse heatmap pulls its expectation towards the centre and shrinks the latent.
    - No normalisation layers, so train and eval modes compute the same function.
    """

    # buffers (register_buffer), declared for the type checker
    mean_image: torch.Tensor
    grid: torch.Tensor

    def __init__(
        self, image_size: int = 64, num_keypoints: int = 8, channels: int = 16, inverse_temperature: float = 10.0
    ):
        super().__init__()
        self.image_size = image_size
        self.num_tokens = num_keypoints
        self.dim = 2
        self.initial_inverse_temperature = inverse_temperature
        self.net = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, num_keypoints, 1),
        )
        self.log_inverse_temperature = nn.Parameter(torch.tensor(float(np.log(inverse_temperature))))
        self.register_buffer("mean_image", torch.zeros(1, 3, image_size, image_size))
        self.heatmap_size = (image_size + 1) // 2
        self.register_buffer("grid", coordinate_grid(self.heatmap_size), persistent=False)

    def keypoints_and_heatmaps(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """obs (B, H, W, 3) -> keypoints (B, K, 2) in [-1, 1] and heatmaps (B, K, h, w) summing to 1."""
        logits = self.net(images_to_float(obs) - self.mean_image) * self.log_inverse_temperature.exp()
        b, k, h, w = logits.shape
        heatmaps = torch.softmax(logits.flatten(2), dim=-1).view(b, k, h, w)
        x = (heatmaps.sum(dim=2) * self.grid).sum(dim=-1)  # E[column], from the column marginal
        y = (heatmaps.sum(dim=3) * self.grid).sum(dim=-1)
        return torch.stack([x, y], dim=-1), heatmaps

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs uint8 (B, H, W, 3) or float in [0, 1] -> tokens float (B, K, 2)."""
        return self.keypoints_and_heatmaps(obs)[0]

    def freeze(self) -> ConvEncoder:
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

    def freeze(self) -> StateEncoder:
        """Nothing to freeze (no parameters); eval mode. Returns self."""
        return self.eval()


class ParticleEncoder(nn.Module):
    """The privileged control for particle tasks (Rope, Granular): a state that lists K points' xy,
    normalised (B, 2K), -> one token per point (B, K, 2). The predictor then sees each particle as
    its own token, as a spatial image encoder sees each region, rather than 2K numbers in one token
    (which a narrow predictor cannot carry). The planner's token distance compares particle i with
    particle i: the tasks' goals move the same particles, so the numbering matches."""

    def __init__(self, state_dim: int):
        super().__init__()
        if state_dim % 2:
            raise ValueError(
                f"the particles encoder reads the state as xy points, but it has {state_dim} numbers (odd)"
            )
        self.num_tokens = state_dim // 2
        self.dim = 2

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return state.float().view(len(state), self.num_tokens, 2)

    def freeze(self) -> ParticleEncoder:
        """Nothing to freeze (no parameters); eval mode. Returns self."""
        return self.eval()


@torch.no_grad()
def encode_images(encoder: nn.Module, images: np.ndarray, batch_size: int = 1024) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> tokens (N, P, D) on the CPU, in batches, without gradients."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    tokens = [
        encoder(numpy_to_tensor(images[i : i + batch_size]).to(device)).cpu() for i in range(0, len(images), batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(tokens)


def random_pairs(n: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two index arrays (pairs,) into n frames, uniformly drawn with i != j."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n
    return i, j


def latent_distance_spearman(
    encoder: nn.Module, images: np.ndarray, states: np.ndarray, *, pairs: int = 2000, seed: int = 0
) -> float:
    """Spearman rank correlation between ||tokens_i - tokens_j|| (tokens flattened) and
    ||state_i - state_j|| over `pairs` random pairs; images uint8 (N, H, W, 3), states (N, S).
    Pass held-out frames: this measures whether the latent ranks distances the way the state does.
    NaN (with a scipy warning) if the latent is constant, e.g. an encoder blind to the scene."""
    return distance_spearman(encode_images(encoder, images).flatten(1).double().numpy(), states, pairs=pairs, seed=seed)


def distance_spearman(
    latents: np.ndarray,
    states: np.ndarray,
    *,
    pairs: int = 2000,
    seed: int = 0,
    true_distance: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> float:
    """Spearman rank correlation between latent distances (latents (N, F)) and state distances
    (states (N, S)) over `pairs` random pairs of the N frames. The state distance is Euclidean
    unless `true_distance(a, b) -> (P,)` is given (e.g. a task's Chamfer distance between particle
    sets, where the Euclidean distance of two state vectors depends on how the particles are numbered)."""
    from scipy.stats import spearmanr  # here: scipy.stats takes a while to import, and few commands need it

    states = np.asarray(states, dtype=np.float64)
    i, j = random_pairs(len(latents), pairs, seed)
    latent = np.linalg.norm(latents[i] - latents[j], axis=1)
    if true_distance is None:
        true = np.linalg.norm(states[i] - states[j], axis=1)
    else:  # in chunks: a set distance may build a (P, K, K) array
        true = np.concatenate(
            [true_distance(states[i[k : k + 100]], states[j[k : k + 100]]) for k in range(0, pairs, 100)]
        )
    return float(spearmanr(latent, true).statistic)


class GivenTokens(nn.Module):
    """Stands in for a frozen encoder whose tokens are given (cached or precomputed), where only their
    shape (num_tokens x dim) matters: throughput benchmarks of the predictor, random-weight GPU checks."""

    def __init__(self, num_tokens: int, dim: int):
        super().__init__()
        self.num_tokens, self.dim = num_tokens, dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("GivenTokens encodes nothing: pass the visual tokens themselves (encode(visual=...))")

    def freeze(self) -> GivenTokens:
        """Nothing to freeze (no parameters); eval mode. Returns self."""
        return self.eval()


def build_state_encoder(cfg: EncoderConfig, dims: TaskDims) -> StateEncoder:
    return StateEncoder(dims.state_dim + len(dims.angle_dims))  # each angle as its cosine and sine


def build_particle_encoder(cfg: EncoderConfig, dims: TaskDims) -> ParticleEncoder:
    if dims.angle_dims:
        raise ValueError(
            f"the particles encoder reads the state as xy points, but {dims.task}'s state holds angles; "
            "use the state encoder"
        )
    return ParticleEncoder(dims.state_dim)


register_encoder(
    EncoderEntry("state", "privileged-state control (`state` encoder)", build_state_encoder, reads_state=True)
)
register_encoder(
    EncoderEntry(
        "particles",
        "privileged-state control (`particles` encoder: one xy token per particle)",
        build_particle_encoder,
        reads_state=True,
    )
)
