"""Building a world model's encoder from model.encoder's registry entry: a new one, or a saved run's
restored from its own weights; either way checked to be a module the world model can own (an entry may
come from outside wmplan).

Example:
    >>> encoder = build_encoder(cfg.model.encoder, dims)      # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from wmplan.models.encoder_registry import Encoder, encoder_entry

if TYPE_CHECKING:
    import torch

    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims


def build_encoder(cfg: EncoderConfig, dims: TaskDims) -> Encoder:
    """The encoder model.encoder.name names, built by its registry entry (which checks its own settings)."""
    return checked_encoder(encoder_entry(cfg.name).build(cfg, dims), cfg.name)


def checked_encoder(encoder: Encoder, name: str) -> Encoder:
    """`encoder` itself; a TypeError when an entry built something the world model cannot own."""
    if not isinstance(encoder, nn.Module) or not isinstance(encoder, Encoder):
        raise TypeError(
            f"the {name} encoder's entry built {type(encoder).__name__!r}, which is not a torch.nn.Module with "
            "num_tokens, dim and freeze() (wmplan.models.encoder_registry.Encoder); fix its build function"
        )
    return encoder


def saved_encoder(cfg: EncoderConfig, dims: TaskDims, state: dict[str, torch.Tensor]) -> Encoder:
    """The encoder of a saved run, its weights taken from model.safetensors (not from elsewhere)."""
    restore = encoder_entry(cfg.name).restore
    return build_encoder(cfg, dims) if restore is None else checked_encoder(restore(cfg, dims, state), cfg.name)
