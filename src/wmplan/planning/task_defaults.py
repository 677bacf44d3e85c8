"""Each task's planner defaults (wmplan.tasks: objective weight and frames, CEM iterations, MPC schedule),
checked against the planners' budget when this module is imported.

Example:
    >>> task_planning("pusht").mpc_execute
    5
"""

from __future__ import annotations

from wmplan.defaults import MPC_MODEL_STEPS, PLAN_HORIZON
from wmplan.tasks import TASKS, TaskPlanning, task_spec


def check_planning(name: str, p: TaskPlanning) -> None:
    """ValueError naming the task and field when its planning defaults cannot be planned with."""
    for field, mode in (("open_loop_objective", p.open_loop_objective), ("mpc_objective", p.mpc_objective)):
        if mode not in ("last", "all"):
            raise ValueError(f"{name}: unknown objective mode {mode!r} in {field}; choose last or all")
    if not 1 <= p.mpc_execute <= PLAN_HORIZON or MPC_MODEL_STEPS % p.mpc_execute:
        raise ValueError(
            f"{name}: mpc_execute must divide {MPC_MODEL_STEPS} and lie in [1, {PLAN_HORIZON}], got {p.mpc_execute}"
        )
    if p.cem_iterations < 1:
        raise ValueError(f"{name}: cem_iterations must be at least 1, got {p.cem_iterations}")
    if p.chosen_on not in ("tuning", "report", "unsearched"):
        raise ValueError(f"{name}: chosen_on must be tuning, report or unsearched, got {p.chosen_on!r}")


for _name, _spec in TASKS.items():
    check_planning(_name, _spec.planning)


def task_planning(task: str) -> TaskPlanning:
    return task_spec(task).planning
