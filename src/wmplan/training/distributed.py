"""One process or many (torchrun): the device, the rank and the DDP wrapper, resolved once.

Under torchrun (WORLD_SIZE > 1) the process group starts with nccl on CUDA and gloo on the CPU; each
rank uses cuda:LOCAL_RANK; `close` destroys it, and with it the backend's threads, before the interpreter
exits. Alone, nothing is initialised and `wrap` returns the module itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from wmplan.precision import autocast


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
            _bind_group_defaults_first()
            dist.init_process_group(backend_for(device))
        return cls(device, dist.get_rank(), dist.get_world_size())

    def close(self) -> None:
        """Destroy the process group (nothing alone): the backend's threads are joined here, while the
        interpreter is whole, and no rank leaves one running into its exit (see _bind_group_defaults_first)."""
        if self.world_size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def autocast(self, bf16: bool):
        """bf16 autocast on this rank's device when `bf16` (wmplan.precision decides it)."""
        return autocast(bf16, self.device)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def backend_for(device: torch.device) -> str:
    """The process group's backend for ranks on `device`'s type: nccl on CUDA, gloo on the CPU."""
    return "nccl" if device.type == "cuda" else "gloo"


def _bind_group_defaults_first() -> None:
    """Import torch.distributed.nn.functional while no process group exists.

    Its functions take `group=group.WORLD` as a default argument, bound when the module is first imported,
    and torch imports it lazily: the first optimizer step of a process loads torch._dynamo, which imports it.
    Imported after init_process_group (by the first Adam step of planning or training), it would hold the
    default group for good: destroy_process_group would leave gloo's worker threads running into
    interpreter exit, where a worker releasing a finished collective's tensor needs the GIL of a
    finalising interpreter and aborts the rank ("terminate called without an active exception").
    Imported first, it binds None, and the group and its threads end when destroyed."""
    import torch.distributed.nn.functional  # noqa: F401


class LossModule(nn.Module):
    """forward(batch) = model.loss(batch): the shape DDP needs to synchronise gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model: Any = model  # a WorldModel (its `loss`), or a DDP wrapper's module

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.loss(batch)
