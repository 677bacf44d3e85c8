"""Planners over a world model's latent rollouts: gradient descent (SGD / Adam, also from several starts),
CEM (also keeping its best sample), a CEM-then-Adam hybrid, and the
latent-distance objective they minimise. A planner sees the model only through `rollout` and
`action_dim`, never the simulator; each is registered by name beside its code (registry.py), built from the
`planner.<field>` settings (settings.py)."""

from wmplan.planning.cem import CEMConfig, CEMPlanner
from wmplan.planning.gd import GDConfig, GDPlanner
from wmplan.planning.hybrid import HybridConfig, HybridPlanner
from wmplan.planning.objective import Objective, objective_for
from wmplan.planning.protocols import Dynamics, Planner
from wmplan.planning.registry import PlannerEntry, PlanningSetup, planner_entry, planner_names, register_planner
from wmplan.planning.settings import PlannerSettings
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
    "PlannerEntry",
    "PlannerSettings",
    "PlanningSetup",
    "planner_entry",
    "planner_names",
    "register_planner",
    "Objective",
    "objective_for",
    "task_planning",
]
