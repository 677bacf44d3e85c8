"""Planners over a world model's latent rollouts: gradient descent (SGD / Adam, also from several starts),
CEM (also keeping its best sample), a CEM-then-Adam hybrid, and the
latent-distance objective they minimise. A planner sees the model only through `rollout` and
`action_dim`, never the simulator."""

from wmplan.planning.cem import CEMConfig, CEMPlanner
from wmplan.planning.gd import GDConfig, GDPlanner
from wmplan.planning.hybrid import HybridConfig, HybridPlanner
from wmplan.planning.objective import Objective, objective_for
from wmplan.planning.protocols import Dynamics, Planner
from wmplan.planning.task_defaults import task_planning

__all__ = [
    "Dynamics",
    "Planner",
    "CEMConfig",
    "CEMPlanner",
    "GDConfig",
    "GDPlanner",
    "HybridConfig",
    "HybridPlanner",
    "Objective",
    "objective_for",
    "task_planning",
]
