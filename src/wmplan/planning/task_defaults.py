"""Each task's planner defaults (wmplan.tasks: objective weight and frames, CEM iterations, MPC schedule),
checked against the planners' budget when the task is registered (TaskPlanning.check).

Example:
    >>> task_planning("pusht").mpc_execute
    5
"""

from __future__ import annotations

from wmplan.tasks import TaskPlanning, task_spec


def task_planning(task: str) -> TaskPlanning:
    return task_spec(task).planning
