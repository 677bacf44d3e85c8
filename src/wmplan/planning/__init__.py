"""Planners over a world model's latent rollouts: gradient descent (SGD / Adam) and CEM, and the
latent-distance objective they minimise. A planner sees the model only through `rollout` and
`action_dim`, never the simulator."""

from wmplan.planning.cem import CEMConfig, CEMPlanner
from wmplan.planning.gd import GDConfig, GDPlanner
from wmplan.planning.objective import TASK_OBJECTIVE_DEFAULTS, Objective, objective_for

__all__ = ["CEMConfig", "CEMPlanner", "GDConfig", "GDPlanner", "Objective", "TASK_OBJECTIVE_DEFAULTS", "objective_for"]
