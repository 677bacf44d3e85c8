"""The predictor: a ViT over T frames x P tokens with a frame-level causal mask.

A token of frame t attends to every token of frames <= t, never to a later frame, so the prediction
for frame t + 1 made at frame t does not depend on what comes after it: one forward pass over a
window gives every teacher-forced prediction at once, and a rollout can feed shorter contexts.

Example:
    >>> from wmplan.config import PREDICTOR_PRESETS
    >>> net = FrameCausalPredictor(token_dim=24, out_dim=20, num_tokens=16, max_frames=3, cfg=PREDICTOR_PRESETS["tiny"])
    >>> net(torch.zeros(2, 3, 16, 24)).shape   # (B, T, P, out_dim)
    torch.Size([2, 3, 16, 20])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmplan.config import PredictorConfig


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Scaled dot-product attention (mask: True = may attend). In bf16 on a CPU it is written out: for our
    short sequences (8-24 tokens, head_dim 16-32) torch's fused CPU kernel runs bf16 slower than fp32, and
    two batched matmuls with a softmax between run it about 1.8x faster than the fused fp32 kernel."""
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


class Block(nn.Module):
    """Pre-norm transformer block; attention inner width heads * head_dim may differ from the width."""

    def __init__(self, width: int, cfg: PredictorConfig):
        super().__init__()
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        inner = cfg.heads * cfg.head_dim
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, cfg.mlp_dim), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.mlp_dim, width)
        )
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attn = attention(q, k, v, mask)  # (B, heads, N, head_dim)
        x = x + self.dropout(self.proj(attn.transpose(1, 2).reshape(b, n, -1)))
        return x + self.dropout(self.mlp(self.norm2(x)))


class FrameCausalPredictor(nn.Module):
    """Maps input tokens (B, T, P, token_dim), T <= max_frames, to predictions (B, T, P, out_dim):
    entry t is the prediction of frame t + 1's latent."""

    def __init__(self, token_dim: int, out_dim: int, num_tokens: int, max_frames: int, cfg: PredictorConfig):
        super().__init__()
        width = cfg.width or token_dim
        self.num_tokens, self.max_frames = num_tokens, max_frames
        self.embed = nn.Identity() if width == token_dim else nn.Linear(token_dim, width)
        self.pos = nn.Parameter(torch.randn(1, max_frames * num_tokens, width) * 0.02)
        self.blocks = nn.ModuleList(Block(width, cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, out_dim)
        frame = torch.arange(max_frames).repeat_interleave(num_tokens)
        self.mask: torch.Tensor
        self.register_buffer("mask", frame[None, :] <= frame[:, None], persistent=False)  # (N, N) True = may attend

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t, p, _ = tokens.shape
        if t > self.max_frames or p != self.num_tokens:
            raise ValueError(
                f"predictor takes at most {self.max_frames} frames of {self.num_tokens} tokens, got {t} x {p}"
            )
        n = t * p
        x = self.embed(tokens.reshape(b, n, -1)) + self.pos[:, :n]
        # One frame attends to all of itself: no mask lets SDPA take its faster unmasked path (Wall, num_hist 1).
        mask = self.mask[:n, :n] if t > 1 else None
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x)).view(b, t, p, -1)
