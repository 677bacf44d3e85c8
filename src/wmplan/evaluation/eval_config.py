"""What an eval plans with: the planner's settings (PlannerSettings, wmplan.planning.settings), the MPC schedule
(MPCSettings), the whole eval's config (EvalConfig, checked before any work) and the planner they build for a
model of a task (build_planner, by the planner's registry entry), with the task's defaults (wmplan.tasks) wherever
a setting is left None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wmplan.closed_loop import action_bounds
from wmplan.defaults import MAX_REPLANS, MPC_MODEL_STEPS, REPORT_PAIR_SEED, SEED_MAX
from wmplan.evaluation.protocols import check_protocol
from wmplan.models.world_model import WorldModel
from wmplan.planning import objective_for, task_planning
from wmplan.planning.mpc import MPCConfig
from wmplan.planning.objective import objective_mode
from wmplan.planning.protocols import Planner
from wmplan.planning.registry import PlanningSetup, planner_entry, planners_taking
from wmplan.planning.settings import AROUND_THE_PLANNER, PlannerSettings
from wmplan.precision import check_precision
from wmplan.range_checks import check_finite, check_ranges

# Each planner.<field> must change some planner (its registered stage configs) or surround them all.
_unplaced = [
    f.name
    for f in dataclasses.fields(PlannerSettings)
    if f.name not in AROUND_THE_PLANNER and not any(planners_taking(f.name, mpc) for mpc in (False, True))
]
if _unplaced:
    raise RuntimeError(
        f"planner settings {_unplaced} belong to no planner's stage config and are not AROUND_THE_PLANNER"
    )


@dataclass
class MPCSettings:
    """MPC knobs reachable as mpc.<name>; None means the task's default (wmplan.tasks)."""

    execute: int | None = None
    """Model steps executed from each plan before replanning (Wall 1; PushT and PointMaze 5, the whole plan)."""
    replans: int | None = None
    """Fixed protocol: planning calls per episode (default: MPC_MODEL_STEPS // execute, so every episode
    executes 10 model steps)."""
    max_replans: int = MAX_REPLANS
    """Paper protocol: the most planning calls an episode makes before it is scored (DINO-WM sets no cap)."""
    hold: bool = False
    """Fixed protocol: keep a reached goal; an episode executes nothing after a plan whose end the model
    scores no closer to the goal than the current frame (planning/mpc.py, MPCConfig.hold)."""

    @staticmethod
    def fields_of(protocol: str) -> tuple[str, ...]:
        """The mpc.<field> settings that `resolve` reads under a protocol."""
        return ("execute", "max_replans") if protocol == "paper" else ("execute", "replans", "hold")

    def resolve(self, task: str, horizon: int, protocol: str = "fixed") -> MPCConfig:
        """The MPC schedule for a task, plan horizon and protocol. Fixed: the task's default `execute`
        (never beyond the horizon) and replans; paper: the whole plan executed (DINO-WM's loop), up to
        `max_replans` calls."""
        if protocol == "paper":
            return MPCConfig(replans=self.max_replans, execute=self.execute if self.execute is not None else horizon)
        execute = self.execute if self.execute is not None else min(task_planning(task).mpc_execute, horizon)
        replans = self.replans if self.replans is not None else max(1, MPC_MODEL_STEPS // execute)
        return MPCConfig(replans=replans, execute=execute, hold=self.hold)


@dataclass
class EvalConfig:
    planner: str = "adam"
    """A registered planner (wmplan.planning.registry): gd (plain SGD, the paper's GD), adam or cem; beyond the
    paper: cem_best, hybrid, multistart."""
    mpc: bool = False
    """Receding horizon instead of open loop."""
    protocol: str = "fixed"
    """How an MPC episode ends and is scored (evaluation.protocols: fixed | paper); open loop is the same
    under both (one plan, scored at its end) and is recorded as fixed."""
    episodes: int = 50
    """Start/goal pairs."""
    seed: int = REPORT_PAIR_SEED
    """Seed of the start/goal pairs and of the planners' random streams."""
    batch: int | None = None
    """Episodes planned at once (default all; sharded, ceil(episodes / processes)). The results depend on it
    (BLAS rounds a batch's rows differently by batch shape), never on how many processes share the batches."""
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    mpc_settings: MPCSettings = field(default_factory=MPCSettings)

    def check(self) -> EvalConfig:
        """Raise a ValueError naming the first setting out of its range; returns self. (Which settings apply
        to the planner and mode: check_applicable, given the keys that were set.)"""
        names = {"settings": "planner", "mpc_settings": "mpc", "episodes": "--episodes", "seed": "--seed"}
        check_finite(self, names)
        check_ranges(
            self,
            {
                "episodes": 1,
                "seed": 0,
                "batch": 1,
                "settings.steps": 1,
                "settings.noise": 0,
                "settings.horizon": 1,
                "settings.samples": 1,
                "settings.topk": 2,  # CEM's elites estimate a std
                "settings.iterations": 1,
                "settings.restarts": 1,
                "settings.warm_steps": 1,
                "settings.plateau": 0,
                "mpc_settings.replans": 1,
                "mpc_settings.max_replans": 1,
                "mpc_settings.execute": 1,
            },
            ("settings.lr",),
            names={**names, "batch": "--batch"},
            maximums={"seed": SEED_MAX},
        )
        for name, value, allowed in (
            ("init", self.settings.init, ("randn", "zero")),
            ("optimizer", self.settings.optimizer, (None, "sgd", "adam")),
            ("objective", self.settings.objective, (None, "last", "all")),
        ):
            if value not in allowed:
                raise ValueError(f"unknown planner.{name} {value!r}; choose {' or '.join(a for a in allowed if a)}")
        check_protocol(self.protocol, self.mpc)
        check_precision(self.settings.precision, "planner.precision")
        # CEM's rule, asked of the planners that keep elites (a planner may draw samples without them)
        if self.planner in planners_taking("topk", self.mpc) and self.settings.topk > self.settings.samples:
            raise ValueError(
                f"planner.topk ({self.settings.topk}) cannot exceed planner.samples ({self.settings.samples})"
            )
        if self.mpc and (self.mpc_settings.execute or 0) > self.settings.horizon:
            raise ValueError(
                f"mpc.execute ({self.mpc_settings.execute}) cannot exceed planner.horizon ({self.settings.horizon})"
            )
        return self


def check_applicable(
    planner_keys: Iterable[str],
    mpc_keys: Iterable[str],
    planners: Sequence[str],
    mpc: Sequence[bool],
    protocol: str,
    *,
    grid: bool = False,
) -> None:
    """Raise a ValueError naming a planner.<field> that none of `planners` reads in any of the modes `mpc`
    (planners_taking: their registered stage configs), or an mpc.<field> that no MPC mode reads under `protocol`
    (MPCSettings.fields_of), with the choice it does not fit. `grid`: worded for a sweep's planners and modes
    rather than eval's flags."""
    which = f"the sweep's planners {', '.join(planners)}" if grid else f"--planner {planners[0]}"
    open_loop = "in the sweep's modes, all open loop" if grid else "without --mpc"
    for name in planner_keys:
        if any(p in planners_taking(name, m) for p in planners for m in mpc):
            continue
        if any(p in planners_taking(name, True) for p in planners):
            raise ValueError(
                f"planner.{name} does not apply to {which} {open_loop}: only a warm-started plan reads it "
                f"(an MPC replan, or hybrid's Adam stage); {'add an mpc mode' if grid else 'add --mpc'} or remove it"
            )
        raise ValueError(
            f"planner.{name} does not apply to {which}: only {', '.join(planners_taking(name, True))} read it; "
            "remove it or choose one of those"
        )
    for name in mpc_keys:
        if not any(mpc):
            raise ValueError(
                f"mpc.{name} does not apply {open_loop} (open loop plans once); "
                f"{'add an mpc mode' if grid else 'add --mpc'} or remove it"
            )
        if name not in MPCSettings.fields_of(protocol):
            raise ValueError(
                f"mpc.{name} does not apply to --protocol {protocol}, which reads "
                f"{', '.join(f'mpc.{f}' for f in MPCSettings.fields_of(protocol))}; remove it or change the protocol"
            )


def build_planner(cfg: EvalConfig, model: WorldModel, task) -> Planner:
    """The planner of an eval config for a model of `task`, with the task's action bounds: built by its registry
    entry (wmplan.planning.registry) from cfg.settings, with its own or the task's defaults where one is None."""
    entry = planner_entry(cfg.planner)  # a ValueError lists the planners there are
    task_name = model.dims.task
    low, high = action_bounds(model, task)
    objective = objective_for(task_name, mode=cfg.settings.objective or objective_mode(task_name, cfg.mpc))
    planner = entry.build(cfg.settings, PlanningSetup(task_name, cfg.mpc, objective, low, high))
    if not isinstance(planner, Planner) or not dataclasses.is_dataclass(planner.cfg):
        raise TypeError(
            f"the {cfg.planner} planner's entry built {type(planner).__name__!r}, which is no Planner with a dataclass "
            "cfg (wmplan.planning.protocols: cfg, objective, last_costs, on_step, plan)"
        )
    return planner
