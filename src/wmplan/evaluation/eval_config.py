"""What an eval plans with: the planner's settings (PlannerSettings), the MPC schedule (MPCSettings), the
whole eval's config (EvalConfig, checked before any work) and the planner they build for a model of a task
(build_planner), with the task's defaults (wmplan.tasks) wherever a setting is left None.
"""

from __future__ import annotations

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
    bf16: bool = False
    """CUDA only (ignored on the CPU): the predictor in bfloat16 autocast while planning; the actions, the
    cost and the optimizer stay fp32."""
    warm_steps: int | None = None
    """GD/Adam steps of an MPC replan, which starts from the previous plan's tail (default: steps)."""
    plateau: float = 0.0
    """GD/Adam: stop once the mean model cost fell by less than this fraction over the last 10 steps (0: never)."""
    objective: str | None = None
    """Frames the cost scores: last (the horizon's final frame, the paper's) or all (every predicted
    frame, later ones weighted more); default per task and mode (wmplan.tasks)."""


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

    def resolve(self, task: str, horizon: int, protocol: str = "fixed") -> MPCConfig:
        """The MPC schedule for a task, plan horizon and protocol. Fixed: the task's default `execute`
        (never beyond the horizon) and replans; paper: the whole plan executed (DINO-WM's loop), up to
        `max_replans` calls."""
        if protocol == "paper":
            return MPCConfig(replans=self.max_replans, execute=self.execute if self.execute is not None else horizon)
        execute = self.execute if self.execute is not None else min(task_planning(task).mpc_execute, horizon)
        replans = self.replans if self.replans is not None else max(1, MPC_MODEL_STEPS // execute)
        return MPCConfig(replans=replans, execute=execute)


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
        """Raise a ValueError naming the first setting out of its range; returns self."""
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
                "settings.topk": 1,
                "settings.iterations": 1,
                "settings.restarts": 1,
                "settings.warm_steps": 1,
                "settings.plateau": 0,
                "mpc_settings.replans": 1,
                "mpc_settings.max_replans": 1,
                "mpc_settings.execute": 1,
            },
            ("settings.lr",),
            names={
                "settings": "planner",
                "mpc_settings": "mpc",
                "episodes": "--episodes",
                "seed": "--seed",
                "batch": "--batch",
            },
        )
        for name, value, allowed in (
            ("init", self.settings.init, ("randn", "zero")),
            ("optimizer", self.settings.optimizer, (None, "sgd", "adam")),
            ("objective", self.settings.objective, (None, "last", "all")),
        ):
            if value not in allowed:
                raise ValueError(f"unknown planner.{name} {value!r}; choose {' or '.join(a for a in allowed if a)}")
        check_protocol(self.protocol, self.mpc)
        if self.settings.topk > self.settings.samples:
            raise ValueError(
                f"planner.topk ({self.settings.topk}) cannot exceed planner.samples ({self.settings.samples})"
            )
        if self.mpc and (self.mpc_settings.execute or 0) > self.settings.horizon:
            raise ValueError(
                f"mpc.execute ({self.mpc_settings.execute}) cannot exceed planner.horizon ({self.settings.horizon})"
            )
        return self


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
    if cfg.planner in ("cem", "cem_best"):
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
    if hybrid:
        return HybridPlanner(HybridConfig(cem=cem, gd=gd), objective, low, high)
    return GDPlanner(gd, objective, low, high)
