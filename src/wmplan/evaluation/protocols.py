"""How a cell plans, named once: its mode (open loop, MPC, MPC with bounded plans) and, under MPC, one of the
two evaluation protocols; what each protocol means, and the checks that keep results made under different
protocols or pairs from being pooled or compared.

- fixed: a fixed number of replans (the task's schedule: mpc.replans x mpc.execute model steps), success
  judged at the end of the budget. Nothing the planner or the loop sees depends on the simulator's
  success test. Informative only at a budget where a perfect model succeeds (the simulator reference).
- paper: DINO-WM's loop, which the paper's Table 1 inherits: execute all H planned steps, replan from
  the new observation until the simulator says the goal is reached at a replanning boundary or
  mpc.max_replans plans were made; the episode is scored and frozen at that boundary. It uses the
  simulator's success test inside the loop (ground truth the planner's loop sees), and every table
  that shows its numbers says so.

Example:
    >>> check_protocol("paper")
    'paper'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mode:
    """A planning mode: open loop (one plan, executed whole), MPC (replanning from each new observation), or
    MPC whose plans stay inside the task's action range (`bounded`: planner.bounded)."""

    mpc: bool
    bounded: bool = False

    def __post_init__(self) -> None:
        if self.bounded and not self.mpc:
            raise ValueError("bounded plans are a mode of MPC (mpc_bounded); open loop has no bounded mode")

    @property
    def name(self) -> str:
        """The sweep's spelling (its --set modes=..., cell.json and cell folders)."""
        return "mpc_bounded" if self.bounded else "mpc" if self.mpc else "open"

    @property
    def label(self) -> str:
        """The reports' words."""
        return "MPC, bounded" if self.bounded else "MPC" if self.mpc else "open loop"


OPEN, MPC, MPC_BOUNDED = Mode(mpc=False), Mode(mpc=True), Mode(mpc=True, bounded=True)
MODES = (OPEN, MPC, MPC_BOUNDED)
"""Every mode, in the order of the reports' rows."""


def mode_named(name: str) -> Mode:
    """The mode the sweep's spelling `name` names (open, mpc, mpc_bounded); a ValueError listing them else."""
    for mode in MODES:
        if mode.name == name:
            return mode
    raise ValueError(f"unknown mode {name!r}; choose from {', '.join(m.name for m in MODES)}")


PROTOCOLS = ("fixed", "paper")
PROTOCOL_NOTES = {
    "fixed": "fixed budget, success judged at its end; the loop never asks the simulator",
    "paper": "DINO-WM's loop: whole plans executed, replanned until the simulator's success test passes at a "
    "replanning boundary (or the cap), scored there; the loop uses the simulator's success test",
}


def check_protocol(name: str, mpc: bool = True) -> str:
    """`name` when it is a protocol that the mode (`mpc`: MPC, else open loop) can run under, else a
    ValueError listing the valid ones or naming the missing --mpc."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    if name == "paper" and not mpc:
        raise ValueError("--protocol paper is a replanning loop: add --mpc (open loop is one plan under either)")
    return name


def cell_protocol(summary: Mapping[str, Any]) -> str:
    """The protocol a summary was made under (summaries written before protocols existed: fixed)."""
    return str(summary.get("protocol", "fixed"))


def check_comparable(summaries: list[Mapping[str, Any]], what: str) -> None:
    """ValueError naming both when summaries to be pooled or compared were planned under different
    protocols or on the pairs of different seeds."""
    first = summaries[0]
    for other in summaries[1:]:
        for key, value in (("protocol", cell_protocol), ("pair seed", lambda s: s["seed"])):
            a, b = value(first), value(other)
            if a != b:
                raise ValueError(
                    f"{what}: cannot mix cells of {key} {a!r} ({first.get('run', '?')}) and {key} {b!r} "
                    f"({other.get('run', '?')}); plan both under the same {key}"
                )
