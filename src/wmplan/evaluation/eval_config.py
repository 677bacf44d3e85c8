"""What an eval plans with: the planner's settings (PlannerSettings), the MPC schedule (MPCSettings), the
whole eval's config (EvalConfig, checked before any work) and the planner they build for a model of a task
(build_planner), with the task's defaults (wmplan.tasks) wherever a setting is left None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wmplan.closed_loop import action_bounds
from wmplan.config import (
    CEM_SAMPLES,
    CEM_TOPK,
    GD_LR,
    GD_NOISE,
    GD_STEPS,
    HYBRID_ADAM_STEPS,
    HYBRID_CEM_ITERATIONS,
    MAX_REPLANS,
    MPC_MODEL_STEPS,
    MULTISTART_RESTARTS,
    PLAN_HORIZON,
    PLANNERS,
    REPORT_PAIR_SEED,
    SEED_MAX,
    check_finite,
    check_ranges,
)
from wmplan.evaluation.protocols import check_protocol
from wmplan.models.world_model import WorldModel
from wmplan.planning import (
    CEMConfig,
    CEMPlanner,
    GDConfig,
    GDPlanner,
    HybridConfig,
    HybridPlanner,
    objective_for,
    task_planning,
)
from wmplan.planning.mpc import MPCConfig
from wmplan.planning.objective import objective_mode
from wmplan.precision import check_precision


@dataclass
class PlannerSettings:
    """Planner knobs reachable as planner.<name>; None means the paper's default for the mode."""

    lr: float | None = None
    """GD/Adam step size (open loop 0.3, MPC 0.2)."""
    steps: int | None = None
    """GD/Adam steps (open loop 300, MPC 100; hybrid: 30 after its CEM iterations)."""
    optimizer: str | None = None
    """sgd or adam (default: from --planner)."""
    noise: float = GD_NOISE
    """GD/Adam: std of the noise added to the actions after each step."""
    horizon: int = PLAN_HORIZON
    """Model steps planned."""
    samples: int = CEM_SAMPLES
    """CEM samples per iteration."""
    topk: int = CEM_TOPK
    """CEM elites."""
    iterations: int | None = None
    """CEM iterations (default per task, wmplan.tasks: Wall and PointMaze 10, PushT 30; hybrid: 3)."""
    bounded: bool = False
    """Keep plans inside the task's action bounds (GD: projection; CEM: clipped samples)."""
    init: str = "randn"
    """GD/Adam initial actions: randn or zero."""
    restarts: int | None = None
    """GD/Adam starts optimised at once per episode, the lowest final model cost kept (default 1;
    multistart: 8)."""
    precision: str = "fp32"
    """The predictor's precision while planning (wmplan.precision): fp32, auto (bf16 autocast where the
    device multiplies bf16 faster) or bf16. The actions, the cost and the optimizer stay fp32."""
    warm_steps: int | None = None
    """GD/Adam steps of an MPC replan, which starts from the previous plan's tail (default: steps)."""
    plateau: float = 0.0
    """GD/Adam: stop once the mean model cost fell by less than this fraction over the last 10 steps (0: never)."""
    objective: str | None = None
    """Frames the cost scores: last (the horizon's final frame, the paper's) or all (every predicted
    frame, later ones weighted more); default per task and mode (wmplan.tasks)."""


PLANNER_CONFIGS: dict[str, tuple[type, ...]] = {
    "gd": (GDConfig,),
    "adam": (GDConfig,),
    "multistart": (GDConfig,),
    "cem": (CEMConfig,),
    "cem_best": (CEMConfig,),
    "hybrid": (CEMConfig, GDConfig),
}
"""The planners by name, each with the config classes of its stages in the order they run (build_planner): a
planner.<field> applies to a planner one of whose configs has a field of that name."""
AROUND_THE_PLANNER = ("objective", "precision")
"""planner.<field> settings of what surrounds every planner (the cost it minimises, the model's precision)."""
if set(PLANNER_CONFIGS) != set(PLANNERS):
    raise RuntimeError(f"PLANNER_CONFIGS {sorted(PLANNER_CONFIGS)} must name the planners {PLANNERS}")
_unplaced = [
    f.name
    for f in dataclasses.fields(PlannerSettings)
    if f.name not in AROUND_THE_PLANNER
    and not any(f.name in {g.name for g in dataclasses.fields(c)} for c in (GDConfig, CEMConfig))
]
if _unplaced:
    raise RuntimeError(f"planner settings {_unplaced} belong to no planner config and are not AROUND_THE_PLANNER")


def planners_taking(name: str, mpc: bool) -> list[str]:
    """The planners that planner.<name> changes, open loop (mpc False) or under MPC."""
    if name in AROUND_THE_PLANNER:
        return list(PLANNER_CONFIGS)
    takers = [
        p for p, cfgs in PLANNER_CONFIGS.items() if any(name in {f.name for f in dataclasses.fields(c)} for c in cfgs)
    ]
    if name == "warm_steps" and not mpc:  # only a warm-started plan: an MPC replan, or a stage after another
        takers = [p for p in takers if len(PLANNER_CONFIGS[p]) > 1]
    return takers


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
    """gd (plain SGD, the paper's GD), adam or cem; beyond the paper: cem_best, hybrid, multistart."""
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
        if self.settings.topk > self.settings.samples:
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
    (PLANNER_CONFIGS, planners_taking), or an mpc.<field> that no MPC mode reads under `protocol`
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


def build_planner(cfg: EvalConfig, model: WorldModel, task):
    """The planner of an eval config for a model of `task`, with the task's action bounds."""
    s, task_name = cfg.settings, model.dims.task
    if cfg.planner not in PLANNERS:
        raise ValueError(f"unknown planner {cfg.planner!r}; choose one of {', '.join(PLANNERS)}")
    low, high = action_bounds(model, task)
    objective = objective_for(task_name, mode=s.objective or objective_mode(task_name, cfg.mpc))
    mode = "mpc" if cfg.mpc else "open loop"
    hybrid = cfg.planner == "hybrid"
    iterations = HYBRID_CEM_ITERATIONS if hybrid else task_planning(task_name).cem_iterations
    cem = CEMConfig(
        samples=s.samples,
        topk=s.topk,
        iterations=s.iterations if s.iterations is not None else iterations,
        horizon=s.horizon,
        bounded=s.bounded,
        keep_best=cfg.planner == "cem_best",
    )
    stages = PLANNER_CONFIGS[cfg.planner]
    if GDConfig not in stages:
        return CEMPlanner(cem, objective, low, high)
    gd = GDConfig(
        optimizer=s.optimizer or ("sgd" if cfg.planner == "gd" else "adam"),
        lr=s.lr if s.lr is not None else GD_LR[mode],
        steps=s.steps if s.steps is not None else HYBRID_ADAM_STEPS if hybrid else GD_STEPS[mode],
        noise=s.noise,
        horizon=s.horizon,
        init=s.init,
        bounded=s.bounded,
        restarts=s.restarts if s.restarts is not None else MULTISTART_RESTARTS if cfg.planner == "multistart" else 1,
        warm_steps=s.warm_steps,
        plateau=s.plateau,
    )
    if CEMConfig in stages:
        return HybridPlanner(HybridConfig(cem=cem, gd=gd), objective, low, high)
    return GDPlanner(gd, objective, low, high)
