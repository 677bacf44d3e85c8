"""What the planners default to per task, in one table: the objective's proprio weight, which frames it
scores open loop and under MPC, CEM's iterations and how many model steps MPC executes per plan.

Every entry names every field (no defaults), so a new task without one fails at import, not mid-run.
The `last` / `all` and `mpc_execute` choices were measured on each task's demo base model, on the
demo's 20 pairs (seed 99), one setting for every model and planner; the comments give the numbers.

Example:
    >>> task_planning("pusht").mpc_execute
    5
"""

from __future__ import annotations

from dataclasses import dataclass

from wmplan.config import MPC_MODEL_STEPS, PLAN_HORIZON


@dataclass(frozen=True)
class TaskPlanning:
    alpha: float
    """Weight of the proprio term of the cost (PAPER.md: Wall 1, PushT 1, PointMaze 0)."""
    cem_iterations: int
    """CEM refits per plan (PAPER.md: PushT 30, PointMaze and Wall 10)."""
    open_loop_objective: str
    """Frames the cost scores open loop: last (the paper's equation) or all (the authors' code)."""
    mpc_objective: str
    """The same under MPC."""
    mpc_execute: int
    """Model steps executed from each MPC plan before replanning: 1 (the paper's text) up to the horizon
    (DINO-WM's code executes the whole plan). Replans default to MPC_MODEL_STEPS // mpc_execute, so every
    task's MPC episode executes the same number of model steps."""

    def __post_init__(self) -> None:
        for mode in (self.open_loop_objective, self.mpc_objective):
            if mode not in ("last", "all"):
                raise ValueError(f"unknown objective mode {mode!r}; choose last or all")
        if not 1 <= self.mpc_execute <= PLAN_HORIZON or MPC_MODEL_STEPS % self.mpc_execute:
            raise ValueError(f"mpc_execute must divide {MPC_MODEL_STEPS} and lie in [1, {PLAN_HORIZON}]")

    def objective_mode(self, mpc: bool) -> str:
        return self.mpc_objective if mpc else self.open_loop_objective


TASK_PLANNING: dict[str, TaskPlanning] = {
    # Wall's demo base models: MPC with "all", pixel CEM 55% -> 90%, Adam 45% -> 80%; state CEM 65% -> 90%,
    # Adam 65% -> 80%. Open loop "last" is better (pixel CEM 75% vs 50%, Adam 45% vs 30%).
    "wall": TaskPlanning(alpha=1.0, cem_iterations=10, open_loop_objective="last", mpc_objective="all", mpc_execute=1),
    # PushT's demo base models (docs/results/pusht runs): executing one model step per plan, MPC fails with
    # either objective (state control CEM 5% last, 20% all; pixel CEM 0%): a horizon-5 plan whose cost looks
    # at its end leaves its first steps free, and each replan moves the arrival one step further away.
    # Executing the whole plan (DINO-WM's code does), last: state CEM 85%, Adam 75%; pixel CEM 35%, Adam
    # 40%. With all: state CEM 60%; pixel CEM 30%, Adam 25%. Executing 2 steps per plan: state CEM 15%.
    "pusht": TaskPlanning(
        alpha=1.0, cem_iterations=30, open_loop_objective="last", mpc_objective="last", mpc_execute=5
    ),
    # PointMaze's demo base model (pixel): executing one step per plan, CEM 25% (last) and 75% (all), Adam
    # 50% (all). Executing the whole plan: last CEM 95%, Adam 35%; all CEM 70%, Adam 45%.
    "pointmaze": TaskPlanning(
        alpha=0.0, cem_iterations=10, open_loop_objective="last", mpc_objective="last", mpc_execute=5
    ),
    # One model step is one whole push; the particles are all in the image, so no proprio term.
    "rope": TaskPlanning(alpha=0.0, cem_iterations=10, open_loop_objective="last", mpc_objective="last", mpc_execute=1),
    "granular": TaskPlanning(
        alpha=0.0, cem_iterations=10, open_loop_objective="last", mpc_objective="last", mpc_execute=1
    ),
}


def task_planning(task: str) -> TaskPlanning:
    if task not in TASK_PLANNING:
        raise ValueError(f"no planning defaults for task {task!r}; known: {', '.join(sorted(TASK_PLANNING))}")
    return TASK_PLANNING[task]
