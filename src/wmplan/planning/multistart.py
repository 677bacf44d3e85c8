"""Multi-start gradient planning: Adam from MULTISTART_RESTARTS starts at once per episode (the first from the
warm start or the init rule, the others random), the one with the lowest final model cost kept. It is GDPlanner
with `restarts` (wmplan.planning.gd); this module registers it as the planner multistart
(wmplan.planning.registry).
"""

from __future__ import annotations

from wmplan.defaults import MULTISTART_RESTARTS
from wmplan.planning.gd import GDConfig, GDPlanner, gd_stage
from wmplan.planning.registry import PlannerEntry, PlanningSetup, register_planner
from wmplan.planning.settings import PlannerSettings


def build_multistart(s: PlannerSettings, setup: PlanningSetup) -> GDPlanner:
    cfg = gd_stage(s, setup, optimizer="adam", restarts=MULTISTART_RESTARTS)
    return GDPlanner(cfg, setup.objective, setup.action_low, setup.action_high)


register_planner(
    PlannerEntry("multistart", f"Adam, {MULTISTART_RESTARTS} starts", "tab:red", (GDConfig,), build_multistart)
)
