"""A hybrid planner: a few CEM iterations find the basin, then Adam refines the elite mean.

CEM's samples explore where a gradient from a random start may stall; a handful of its iterations costs
a fraction of CEM's full budget, and Adam then descends from its mean with far fewer steps than from
noise. The planner knows the model only through `rollout(z0, actions) -> Latent` and `action_dim`. This
module registers it as the planner hybrid (wmplan.planning.registry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from wmplan.defaults import HYBRID_ADAM_STEPS, HYBRID_CEM_ITERATIONS
from wmplan.models.world_model import Latent
from wmplan.planning.cem import CEMConfig, CEMPlanner, cem_stage
from wmplan.planning.gd import GDConfig, GDPlanner, gd_stage
from wmplan.planning.objective import Generators, Objective
from wmplan.planning.protocols import Dynamics, StepCallback
from wmplan.planning.registry import PlannerEntry, PlanningSetup, register_planner
from wmplan.planning.settings import PlannerSettings


@dataclass
class HybridConfig:
    """cem: the first stage (its iterations few); gd: the second, started from CEM's mean (its init is
    unused). Both plan the same horizon."""

    cem: CEMConfig = field(default_factory=lambda: CEMConfig(iterations=HYBRID_CEM_ITERATIONS))
    gd: GDConfig = field(default_factory=lambda: GDConfig(steps=HYBRID_ADAM_STEPS))

    def __post_init__(self) -> None:
        if self.cem.horizon != self.gd.horizon:
            raise ValueError(f"hybrid stages plan different horizons: CEM {self.cem.horizon}, GD {self.gd.horizon}")

    @property
    def horizon(self) -> int:
        return self.cem.horizon


class HybridPlanner:
    """Plans B episodes at once. After `plan`: `last_costs` (B,) at the returned actions."""

    def __init__(
        self,
        cfg: HybridConfig,
        objective: Objective,
        action_low: torch.Tensor | None = None,
        action_high: torch.Tensor | None = None,
    ):
        self.cfg, self.objective = cfg, objective
        self.cem = CEMPlanner(cfg.cem, objective, action_low, action_high)
        self.gd = GDPlanner(cfg.gd, objective, action_low, action_high)
        self.last_costs: torch.Tensor | None = None

    @property
    def on_step(self) -> StepCallback | None:
        return self.gd.on_step

    @on_step.setter
    def on_step(self, callback: StepCallback | None) -> None:
        self.cem.on_step = self.gd.on_step = callback

    def plan(
        self, model: Dynamics, z0: Latent, goal: Latent, init: torch.Tensor | None = None, generator: Generators = None
    ) -> torch.Tensor:
        """Actions (B, H, A): CEM from `init` (a warm start of its mean), then GD from CEM's mean; the
        same generator(s) drive both stages."""
        mean = self.cem.plan(model, z0, goal, init=init, generator=generator)
        actions = self.gd.plan(model, z0, goal, init=mean, generator=generator)
        self.last_costs = self.gd.last_costs
        return actions


def build_hybrid(s: PlannerSettings, setup: PlanningSetup) -> HybridPlanner:
    """Its own budgets where a setting is None: HYBRID_CEM_ITERATIONS, then HYBRID_ADAM_STEPS of Adam."""
    cfg = HybridConfig(
        cem=cem_stage(s, HYBRID_CEM_ITERATIONS), gd=gd_stage(s, setup, optimizer="adam", steps=HYBRID_ADAM_STEPS)
    )
    return HybridPlanner(cfg, setup.objective, setup.action_low, setup.action_high)


register_planner(PlannerEntry("hybrid", "CEM then Adam", "tab:purple", (CEMConfig, GDConfig), build_hybrid))
