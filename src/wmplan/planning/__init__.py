"""Planners over a world model's latent rollouts: gradient descent (SGD / Adam) and CEM, and the
latent-distance objective they minimise. A planner sees the model only through `rollout` and
`action_dim`, never the simulator."""

from wmplan.planning.cem import CEMConfig, CEMPlanner
from wmplan.planning.gd import GDConfig, GDPlanner
from wmplan.planning.objective import Objective, objective_for
from wmplan.planning.task_defaults import task_planning

__all__ = [
    "CEMConfig",
    "CEMPlanner",
    "GDConfig",
    "GDPlanner",
    "Objective",
    "TASK_PLANNING",
    "objective_for",
    "task_planning",
]
