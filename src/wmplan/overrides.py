"""Typed settings from loose values: `--set key=value` pairs, dotted keys and JSON tables, each value cast
to its field's declared type, an unknown key refused with the valid ones listed.

It sits apart from the configs (config.py) because any settings dataclass goes through it: the run config,
the evaluation's and planners' settings, a task's and a collector's. `apply_overrides`, which sets dotted keys
of a RunConfig and checks the result, stays beside RunConfig in config.py.

Example:
    >>> parse_set_args(["train.epochs=2", "mpc=true"])
    {'train.epochs': '2', 'mpc': 'true'}
    >>> cast_value("2", int, "train.epochs")
    2
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from wmplan.range_checks import check_finite


def valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        keys += valid_keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [prefix + f.name]
    return keys


def key_type(cls: type, key: str) -> Any:
    """The declared type of a dotted key of the dataclass `cls` (RunConfig, "train.epochs" -> int)."""
    *path, name = key.split(".")
    for part in path:
        cls = typing.get_type_hints(cls)[part]
    return typing.get_type_hints(cls)[name]


def apply_dataclass_overrides(target: Any, overrides: dict[str, Any], prefix: str) -> None:
    """Set flat fields of a dataclass in place, cast to their declared types; an unknown name is a
    ValueError listing the valid `prefix.<field>` keys."""
    fields = {f.name for f in dataclasses.fields(target)}
    types = typing.get_type_hints(type(target))
    for name, value in overrides.items():
        if name not in fields:
            raise ValueError(
                f"unknown config key {prefix}.{name!r}; valid keys: {', '.join(f'{prefix}.{n}' for n in fields)}"
            )
        setattr(target, name, cast_value(value, types[name], f"{prefix}.{name}"))


def dataclass_from_dict(cls, values: dict[str, Any], prefix: str):
    """`cls` from a (JSON) dict, each value cast to its field's type; a ValueError names a key that is
    unknown, of the wrong type, or a table where a value belongs (or the reverse)."""
    if not isinstance(values, dict):
        raise ValueError(
            f"config key {prefix.rstrip('.') or '(top level)'} must be a table of settings, got {values!r}"
        )
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(prefix + k for k in unknown)}")
    types = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        factory = fields[name].default_factory
        default = factory() if callable(factory) else None  # a nested config's default instance
        if dataclasses.is_dataclass(default):
            kwargs[name] = dataclass_from_dict(type(default), value, f"{prefix}{name}.")
        elif isinstance(value, dict) or (isinstance(value, list) and typing.get_origin(types[name]) is not tuple):
            raise ValueError(f"config key {prefix}{name} must be a single value, got {value!r}")
        else:
            kwargs[name] = cast_value(value, types[name], f"config key {prefix}{name}")
    return cls(**kwargs)


def typed_dataclass(cls: type, values: dict[str, Any], label: str) -> Any:
    """An instance of the dataclass `cls` from loosely typed values (command-line strings, JSON): each
    cast to its field's declared type (cast_value). An unknown key is a ValueError listing the valid
    ones; a NaN or infinite number is one too; a `check()` method of the class, if any, then judges the
    ranges."""
    types = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown {label} {unknown}; valid: {known}")
    obj = cls(**{k: cast_value(v, types[k], k) for k, v in values.items()})
    check_finite(obj)
    if hasattr(obj, "check"):
        obj.check()
    return obj


def cast_value(value: Any, kind: Any, key: str) -> Any:
    """`value` as the annotated type `kind`: bool (true/false/1/0 only), int (whole numbers only),
    float, str, tuple[...] (from a list or a JSON string) or `X | None`; else a ValueError naming `key`."""
    args = typing.get_args(kind)
    if type(None) in args:  # X | None
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        kind = next(a for a in args if a is not type(None))
        args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin is tuple or kind is tuple:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"{key} expects a list such as [1, 2], got {value!r}") from None
        if not isinstance(value, (list, tuple)) or (args and args[-1] is not Ellipsis and len(value) != len(args)):
            raise ValueError(f"{key} expects a list of {len(args)} values, got {value!r}")
        element = lambda i: args[0] if args and args[-1] is Ellipsis else (args[i] if args else str)  # noqa: E731
        return tuple(cast_value(v, element(i), f"{key}[{i}]") for i, v in enumerate(value))
    if kind is bool:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise ValueError(f"{key} expects true or false, got {value!r}")
    if kind is int:
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not number.is_integer():
            raise ValueError(f"{key} expects a whole number, got {value!r}")
        return int(number)
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} expects a number, got {value!r}") from None
    if kind is str:
        return str(value)
    raise TypeError(f"{key}: no rule to cast to {kind}")


def parse_set_args(pairs: list[str], flag: str = "--set") -> dict[str, Any]:
    """["a.b=3", "c=true"] -> {"a.b": "3", "c": "true"} (cast later against the settings' types)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{flag} expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out
