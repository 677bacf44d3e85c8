"""One process or many (torchrun): the device, the rank and the DDP wrapper, resolved once.

Under torchrun (WORLD_SIZE > 1) the process group starts with nccl on CUDA and gloo on the CPU; each
rank uses cuda:LOCAL_RANK. Alone, nothing is initialised and `wrap` returns the module itself.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistContext:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> DistContext:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device, dist.get_rank(), dist.get_world_size())

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def autocast(self, bf16: bool):
        if bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


class LossModule(nn.Module):
    """forward(batch) = model.loss(batch): the shape DDP needs to synchronise gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model: Any = model  # a WorldModel (its `loss`), or a DDP wrapper's module

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.loss(batch)
