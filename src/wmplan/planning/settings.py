"""The planner settings a command can give (`--set planner.<field>`, a sweep's `planner:`): one flat set of knobs
for every planner, so the keys in sweeps' files and stored summaries stay one vocabulary. Which planner reads a
setting is not listed here: a planner reads it where one of its stage configs has a field of that name
(wmplan.planning.registry.planners_taking); the settings of AROUND_THE_PLANNER apply to every planner.
"""

from __future__ import annotations

from dataclasses import dataclass

from wmplan.defaults import CEM_SAMPLES, CEM_TOPK, GD_NOISE, PLAN_HORIZON


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


AROUND_THE_PLANNER = ("objective", "precision")
"""planner.<field> settings of what surrounds every planner (the cost it minimises, the model's precision)."""
WARM_START_ONLY = ("warm_steps",)
"""planner.<field> settings that only a warm-started plan reads: an MPC replan, or a stage started from the plan
of the stage before it (hybrid's Adam stage). Open loop, a planner reads one only in a stage after its first."""
