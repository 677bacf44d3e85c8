"""One process or many (torchrun): the device, the rank and the DDP wrapper, resolved once.

Under torchrun (WORLD_SIZE > 1) the process group starts with nccl on CUDA and gloo on the CPU; each
rank uses cuda:LOCAL_RANK; `close` destroys it, and with it the backend's threads, before the interpreter
exits. Alone, nothing is initialised and `wrap` returns the module itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from wmplan.precision import autocast

if TYPE_CHECKING:
    from wmplan.config import TrainConfig

T = TypeVar("T")


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

    def on_main(self, work: Callable[[], T]) -> T | None:
        """work() on rank 0 alone while the other ranks wait for it: its result on rank 0 (None elsewhere).
        An exception there is raised on every rank, so none waits for ever on a collective that rank 0
        will never join, and each exits with rank 0's message."""
        if self.world_size == 1:
            return work()
        result = None
        error: list[Exception | None] = [None]
        if self.is_main:
            try:
                result = work()
            except Exception as exc:  # any error ends every rank alike
                error = [exc]
        dist.broadcast_object_list(error, src=0)
        if error[0] is not None:
            raise error[0]
        return result

    def share_from_main(self, module: nn.Module, value: Any = None) -> Any:
        """Rank 0's parameters and buffers copied into `module` on every rank (module on this rank's
        device), and rank 0's `value` (any picklable object) returned on every rank."""
        if self.world_size == 1:
            return value
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)
        shared = [value]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]

    def sum_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over every rank (itself alone)."""
        if self.world_size > 1:
            values = values.to(self.device)
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values.cpu()


def local_batch_size(train: TrainConfig, world_size: int) -> int:
    """Windows per optimisation step in each process. train.global_batch_size, when set, is the step's
    batch across all processes, split evenly (so the step and its learning rate do not depend on how many
    processes share it); when 0, each process takes train.batch_size. Refused before any work when the
    processes cannot split it evenly."""
    if not train.global_batch_size:
        return train.batch_size
    if train.global_batch_size % world_size:
        raise ValueError(
            f"train.global_batch_size={train.global_batch_size} cannot be split evenly over {world_size} "
            f"processes (torchrun --nproc_per_node); choose a multiple of {world_size} or another process count"
        )
    return train.global_batch_size // world_size


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
