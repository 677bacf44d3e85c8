"""The range checks every settings dataclass shares: each dotted key against its least or greatest value or
above 0, every float finite, and two settings that bound a range in order.

They sit apart from the configs (config.py) because the collectors, the tasks and the evaluation's config
judge their own settings with them too; the ranges of the run settings themselves (RUN_MINIMUMS and its
kin) stay beside RunConfig.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


def check_ranges(
    obj: Any,
    minimums: Mapping[str, float],
    positive: tuple[str, ...] = (),
    names: dict[str, str] | None = None,
    *,
    maximums: Mapping[str, float] | None = None,
    prefix: str = "",
) -> None:
    """ValueError naming the first dotted key of `obj` below its minimum, not above 0, above its maximum or
    infinite (a None value means "the default" and passes; NaN fails every test). `names` renames a key's
    first part in the message to what the user typed (e.g. mpc_settings -> mpc); `prefix` goes before it."""
    bounds = [*((k, low, None) for k, low in minimums.items()), *((k, None, None) for k in positive)]
    for key, low, high in [*bounds, *((k, None, high) for k, high in (maximums or {}).items())]:
        v = obj
        for part in key.split("."):
            v = getattr(v, part)
        if v is None:
            continue
        head, *rest = key.split(".")
        shown = prefix + ".".join([(names or {}).get(head, head), *rest])
        if isinstance(v, float) and math.isinf(v):
            raise ValueError(f"{shown} must be a finite number, got {v!r}")
        if high is not None and not v <= high:
            raise ValueError(f"{shown} must be at most {high}, got {v!r}")
        if high is None and low is None and not v > 0:
            raise ValueError(f"{shown} must be above 0, got {v!r}")
        if low is not None and not v >= low:
            raise ValueError(f"{shown} must be at least {low}, got {v!r}")


def check_finite(obj: Any, names: dict[str, str] | None = None, prefix: str = "") -> None:
    """ValueError naming the first float setting of the dataclass `obj` (nested ones and tuples included)
    that is NaN or infinite: no setting of ours means anything there. `names` as in check_ranges."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        shown = prefix + (names or {}).get(f.name, f.name)
        if dataclasses.is_dataclass(value):
            check_finite(value, prefix=shown + ".")
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{shown} must be a finite number, got {value!r}")


def check_interval(low_key: str, low: float, high_key: str, high: float, *, strict: bool = False) -> None:
    """ValueError naming both settings when `low` lies above `high` (or, `strict`, is not below it)."""
    if low > high or (strict and low == high):
        raise ValueError(
            f"{low_key} ({low}) must be {'below' if strict else 'at most'} {high_key} ({high}), the range they bound"
        )
