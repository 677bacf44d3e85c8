"""Which precision the predictor runs in: bfloat16 autocast where the hardware multiplies bf16 faster than
fp32, else fp32. One setting for training (`train.precision`) and one for planning (`planner.precision`):

- auto: bf16 on a CUDA device that supports it and on a CPU with bf16 matrix instructions (AVX512-BF16 or
  AMX-BF16: x86 server CPUs since Cooper Lake / Sapphire Rapids), else fp32.
- bf16: bf16 autocast; refused on a CPU without those instructions (it would run slower than fp32).
- fp32: never autocast.

Under bf16 only the predictor's forward runs in autocast; actions, costs, losses, gradients of the
parameters and optimizer states stay fp32 (autocast keeps the parameters in fp32 and the predictor's output
is cast back).

Example:
    >>> use_bf16("fp32", torch.device("cpu"))  # doctest: +SKIP
    False
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: config.py checks the setting without it
    import torch

PRECISIONS = ("auto", "bf16", "fp32")
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of the instructions that make bf16 matmuls cheaper than fp32 on an x86 CPU."""


@functools.cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU's bf16 matrix instruction sets among CPU_BF16_FLAGS (empty where none, or where the CPU's
    flags cannot be read: then bf16 is not assumed)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return tuple(f for f in CPU_BF16_FLAGS if f in flags)


def check_precision(name: str, key: str) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"{key} must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether the predictor runs under bf16 autocast on `device` for this setting; a ValueError names
    the missing instruction set when bf16 is forced on a CPU without it."""
    import torch

    check_precision(precision, "precision")
    if precision == "fp32":
        return False
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        missing = "bf16 support (compute capability 8.0 or later)"
    else:
        supported = bool(cpu_bf16_flags())
        missing = f"the {' or '.join(CPU_BF16_FLAGS)} instructions"
    if precision == "bf16" and not supported:
        raise ValueError(
            f"precision bf16 asked for, but this {device.type.upper()} lacks {missing}, without which bf16 runs "
            "slower than fp32; use precision auto or fp32"
        )
    return supported


def precision_name(bf16: bool) -> str:
    """What a summary or run records: the precision actually used."""
    return "bf16" if bf16 else "fp32"


def autocast(bf16: bool, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when `bf16`, else nothing."""
    import torch

    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
