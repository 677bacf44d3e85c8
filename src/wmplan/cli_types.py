"""The value types of the `wmplan` command line (argparse `type=`), and its parser class.

Every numeric option is range-checked while the line is parsed, so a bad value is refused before anything
starts; a command's checks across its options run there too (`set_defaults(check=...)`). A refusal is a
CommandLineError, which `wmplan.cli.main` turns into its one-line error with exit status 2.

    >>> positive_int("3"), seed("0"), positive_floats("0.5,1,2")
    (3, 0, [0.5, 1.0, 2.0])
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from wmplan.defaults import SEED_MAX

WHOLE = re.compile(r"^[+-]?\d+$")


class CommandLineError(Exception):
    """A command line refused while it was parsed; `prog` names the (sub)command, e.g. "wmplan eval"."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class CommandParser(argparse.ArgumentParser):
    """argparse whose errors are CommandLineErrors (no usage text, no exit of its own), and which runs the
    `check` a subcommand sets as a default on the parsed options before anything starts."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self.prog, message)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, rest = super().parse_known_args(args, namespace)
        check = self._defaults.get("check")  # the subcommand's own, not one copied up to its parent
        if check is not None:
            try:
                check(parsed)
            except (ValueError, FileNotFoundError) as exc:
                self.error(str(exc))
        return parsed, rest


def whole_number(text: str, low: int, high: int | None = None) -> int:
    """`text` as a whole number (digits) in [low, high] (high None: no bound), else argparse's error."""
    if not WHOLE.match(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        wanted = f"at least {low}" if high is None else f"between {low} and {high}"
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return whole_number(text, 0)


def seed(text: str) -> int:
    return whole_number(text, 0, SEED_MAX)


def finite_positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text.strip()}")
    return value


def _list_of(item: Callable[[str], Any], text: str, example: str) -> list:
    """Comma-separated values, each checked by `item`."""
    parts = text.split(",")
    if not text.strip() or any(not p.strip() for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated values such as {example}, got {text!r}")
    values = []
    for part in parts:
        try:
            values.append(item(part))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} in {text!r}: {exc}" if len(parts) > 1 else exc
            ) from None
    return values


def seeds(text: str) -> list[int]:
    return _list_of(seed, text, "0,1,2")


def positive_ints(text: str) -> list[int]:
    return _list_of(positive_int, text, "1,3,10")


def positive_floats(text: str) -> list[float]:
    return _list_of(finite_positive_float, text, "0.5,1,2")


def protocols(text: str) -> list[str]:
    """MPC protocols (wmplan.evaluation.protocols), comma-separated, each once."""
    from wmplan.evaluation.protocols import check_protocol

    def one(name: str) -> str:
        try:
            return check_protocol(name.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    values = _list_of(one, text, "fixed,paper")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"name each protocol once, got {text!r}")
    return values


def device(text: str) -> str:
    """auto, or a device this torch can run on (wmplan.models.world_model.check_device)."""
    if text == "auto":
        return text
    from wmplan.models.world_model import check_device

    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def landscape_grid(text: str) -> int:
    """Points per axis of a landscape slice (wmplan.evaluation.landscape.check_grid)."""
    from wmplan.evaluation.landscape import check_grid

    value = whole_number(text, 0)
    try:
        check_grid(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
