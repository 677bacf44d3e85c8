"""The planners wmplan can build, by name: one PlannerEntry per planner.

Each planner's own module registers its entry (`register_planner`) beside its code: the config classes of its
stages in the order they run, how it is built from the `planner.<field>` settings (wmplan.planning.settings) for a
task, a mode, an objective and the task's action bounds, and its name and colour in reports. `build_planner`,
which planners a `planner.<field>` applies to (`planners_taking`), the CLI's `--planner` choices, a sweep's check
of its planners and the reports' names and colours all read this table, so adding a planner touches its own
module and, for one shipped with wmplan in a module of its own, BUILTIN_MODULES below. This module imports no
torch: the built-in planners' modules are imported on the first lookup.

Example:
    >>> planner_names()
    ('gd', 'adam', 'cem', 'cem_best', 'hybrid', 'multistart')
    >>> planners_taking("samples", mpc=False)
    ['cem', 'cem_best', 'hybrid']
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wmplan.planning.settings import AROUND_THE_PLANNER, WARM_START_ONLY, PlannerSettings
from wmplan.registry import Registry

if TYPE_CHECKING:
    import torch

    from wmplan.planning.objective import Objective
    from wmplan.planning.protocols import Planner


@dataclass(frozen=True)
class PlanningSetup:
    """What a planner is built for, besides its settings."""

    task: str
    """The task's name: its planning defaults (wmplan.planning.task_planning, e.g. CEM's iterations)."""
    mpc: bool
    """Receding horizon (its plans are replanned warm-started) rather than one open-loop plan."""
    objective: Objective
    """The cost the planner minimises."""
    action_low: torch.Tensor | None = None
    """(A,) the task's action bounds in the model's normalised action space (a bounded planner clamps into them)."""
    action_high: torch.Tensor | None = None

    @property
    def mode(self) -> str:
        """ "mpc" or "open loop": the keys of the paper's per-mode defaults (defaults.GD_LR, defaults.GD_STEPS)."""
        return "mpc" if self.mpc else "open loop"


@dataclass(frozen=True)
class PlannerEntry:
    """One planner: its name (--planner, a sweep's planners, its result folders) and everything wmplan needs to
    know of it."""

    name: str
    title: str
    """Its name in reports: the tables' columns and the efficiency plot's legend."""
    colour: str
    """Its dots' matplotlib colour in the efficiency plot (each planner its own)."""
    stages: tuple[type, ...]
    """The dataclass configs of its stages, in the order they run: a planner.<field> applies to it where one of
    them has a field of that name (planners_taking)."""
    build: Callable[[PlannerSettings, PlanningSetup], Planner]
    """(the planner.<field> settings, what it plans for) -> the planner, with the paper's or the task's default
    wherever a setting is None."""


BUILTIN_MODULES = (
    "wmplan.planning.gd",  # gd, adam
    "wmplan.planning.cem",  # cem, cem_best
    "wmplan.planning.hybrid",  # hybrid
    "wmplan.planning.multistart",  # multistart
)
"""The modules that register wmplan's own planners; their order (then each module's) is the order names are
listed in: --planner's choices, error messages, the efficiency plot's legend."""
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""A planner's name: it names result folders (`adam_mpc_seed99`) and a CLI choice."""

_REGISTRY: Registry[PlannerEntry] = Registry("planner", BUILTIN_MODULES)


def register_planner(entry: PlannerEntry) -> PlannerEntry:
    """Add `entry` under its name; returns it. A ValueError names a name already taken or unfit for a folder,
    stages that are not dataclasses, or a colour another planner's dots have."""
    if not NAME.match(entry.name):
        raise ValueError(
            f"planner name {entry.name!r} cannot name a result folder; use lower-case letters, digits and '_', "
            "starting with a letter"
        )
    if not entry.stages or not all(isinstance(c, type) and dataclasses.is_dataclass(c) for c in entry.stages):
        raise ValueError(
            f"planner {entry.name!r} must give the dataclass configs of its stages (stages), got {entry.stages!r}"
        )
    for other in _REGISTRY.registered():
        if other.colour == entry.colour and other.name != entry.name:
            raise ValueError(
                f"planner {entry.name!r} takes the colour {entry.colour!r} of planner {other.name!r}; choose another"
            )
    return _REGISTRY.add(entry)


def unregister_planner(name: str) -> None:
    """Remove the planner `name` (a KeyError if none is registered under it)."""
    _REGISTRY.remove(name)


def planner_names() -> tuple[str, ...]:
    """Every registered planner: wmplan's own in the order of BUILTIN_MODULES, then the others as registered."""
    return _REGISTRY.names()


def planner_entry(name: str) -> PlannerEntry:
    """The entry of the planner `name`; a ValueError lists the names there are."""
    return _REGISTRY.get(name)


def planner_title(name: str) -> str:
    """The report name of the planner `name`; the name itself where none is registered under it (a report of
    results planned by a planner this installation lacks)."""
    entry = _REGISTRY.find(name)
    return entry.title if entry is not None else name


def planner_colour(name: str) -> str:
    """The efficiency plot's colour of the planner `name`; grey where none is registered under it."""
    entry = _REGISTRY.find(name)
    return entry.colour if entry is not None else "grey"


def _first_stage_reading(entry: PlannerEntry, setting: str, warm_only: bool) -> int | None:
    """The index of the first of the entry's stages whose config has a field `setting` (from its second stage
    when `warm_only`); None if none has."""
    stages = list(enumerate(entry.stages))[1 if warm_only else 0 :]
    return next((i for i, c in stages if setting in {f.name for f in dataclasses.fields(c)}), None)


def planners_taking(name: str, mpc: bool) -> list[str]:
    """The planners that planner.<name> changes, open loop (mpc False) or under MPC: every planner for a setting
    AROUND_THE_PLANNER, else those with a stage config that has a field `name` (open loop, a setting of
    WARM_START_ONLY only in a stage after the first). Listed as errors name them: those that read it in their
    first stage, then those that read it in a later one, each in planner_names' order."""
    if name in AROUND_THE_PLANNER:
        return list(planner_names())
    warm_only = name in WARM_START_ONLY and not mpc
    stage = {p: _first_stage_reading(_REGISTRY.get(p), name, warm_only) for p in planner_names()}
    return sorted((p for p, i in stage.items() if i is not None), key=lambda p: stage[p] or 0)
