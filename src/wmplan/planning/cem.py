"""The cross-entropy method: sample action sequences, keep the best, refit a diagonal Gaussian.

The planner knows the model only through `rollout(z0, actions) -> Latent` and `action_dim`. This module
registers the planners cem and cem_best (CEM that keeps its best sample) (wmplan.planning.registry).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmplan.defaults import CEM_SAMPLES, CEM_TOPK, PLAN_HORIZON
from wmplan.models.world_model import Latent
from wmplan.planning.objective import Bounds, Generators, Objective, initial_actions, randn, resolve_generators
from wmplan.planning.protocols import Dynamics, StepCallback
from wmplan.planning.registry import PlannerEntry, PlanningSetup, register_planner
from wmplan.planning.settings import PlannerSettings
from wmplan.planning.task_defaults import task_planning


@dataclass
class CEMConfig:
    """samples: action sequences drawn per episode and iteration; topk: elites kept; iterations: refits;
    sigma0: initial std (normalised actions); horizon: H, model steps planned; chunk: most rollouts
    evaluated at once (bounds memory); bounded: clip samples and the result into the action bounds;
    keep_best: make the current mean one of each iteration's samples (as DINO-WM's CEM does) and return
    the lowest-cost sequence seen, rather than the final mean (the mean of two distinct solutions can be
    neither)."""

    samples: int = CEM_SAMPLES
    topk: int = CEM_TOPK
    iterations: int = 10
    sigma0: float = 1.0
    horizon: int = PLAN_HORIZON
    chunk: int = 4096
    bounded: bool = False
    keep_best: bool = False


class CEMPlanner:
    """Plans B episodes at once. After `plan`: `last_costs` (B,), the cost of the returned mean."""

    def __init__(
        self,
        cfg: CEMConfig,
        objective: Objective,
        action_low: torch.Tensor | None = None,
        action_high: torch.Tensor | None = None,
    ):
        if not 1 <= cfg.topk <= cfg.samples:
            raise ValueError(f"topk must be in [1, samples={cfg.samples}], got {cfg.topk}")
        if cfg.topk < 2:
            raise ValueError("topk must be at least 2 to estimate a std")
        self.cfg, self.objective = cfg, objective
        self.bounds = Bounds(cfg.bounded, action_low, action_high)
        self.last_costs: torch.Tensor | None = None
        self.on_step: StepCallback | None = None  # told "cem 3/10" after each iteration (progress bars)

    @torch.no_grad()
    def evaluate(self, model: Dynamics, z0: Latent, goal: Latent, actions: torch.Tensor) -> torch.Tensor:
        """Costs (B, S) of candidate sequences (B, S, H, A), at most cfg.chunk rollouts at a time."""
        b, s, h, a = actions.shape
        flat = actions.reshape(b * s, h, a)
        costs = torch.empty(b * s, device=actions.device)
        for start in range(0, b * s, self.cfg.chunk):
            idx = torch.arange(start, min(start + self.cfg.chunk, b * s), device=actions.device)
            ep = idx // s  # each rollout's episode: index, rather than repeat all of z0 / goal at once
            gep = ep if goal.visual.shape[0] == b else torch.zeros_like(ep)  # a (1, 1, ...) goal is shared
            zc, gc = Latent(z0.visual[ep], z0.proprio[ep]), Latent(goal.visual[gep], goal.proprio[gep])
            costs[idx] = self.objective.cost(model.rollout(zc, flat[idx]), gc, horizon=h).float()
        return costs.view(b, s)

    @torch.no_grad()
    def plan(
        self, model: Dynamics, z0: Latent, goal: Latent, init: torch.Tensor | None = None, generator: Generators = None
    ) -> torch.Tensor:
        """Actions (B, H, A) from context z0 (B, T0, ...) to goal (B, 1, ...). init: the starting mean
        (B, H', A), H' <= H, zero-padded (default all zeros); generator: one, or one per episode (then
        each episode's result does not depend on its batch); default: seeded 0."""
        cfg, h = self.cfg, self.cfg.horizon
        z0, goal = z0.detach(), goal.detach()
        b, device = z0.visual.shape[0], z0.visual.device
        gens = resolve_generators(generator, b, device)
        mean = initial_actions(init, b, h, model.action_dim, "zero", gens, device)
        std = torch.full_like(mean, cfg.sigma0)
        a = mean.shape[2]
        best, best_costs = mean.clone(), torch.full((b,), float("inf"), device=device)
        for iteration in range(cfg.iterations):
            eps = randn((b, cfg.samples, h, a), gens, device)
            cand = self.bounds.clamp(mean[:, None] + std[:, None] * eps)  # (B, S, H, A)
            if cfg.keep_best:
                cand[:, 0] = self.bounds.clamp(mean)
            costs = self.evaluate(model, z0, goal, cand)
            elite_costs, elite_idx = costs.topk(cfg.topk, dim=1, largest=False)  # (B, K), best first
            elites = cand.gather(1, elite_idx[:, :, None, None].expand(-1, -1, h, a))
            if cfg.keep_best:
                better = elite_costs[:, 0] < best_costs
                best[better], best_costs[better] = elites[better, 0], elite_costs[better, 0]
            mean, std = elites.mean(1), elites.std(1)
            if self.on_step is not None:
                self.on_step(f"cem {iteration + 1}/{cfg.iterations}")
        mean = self.bounds.clamp(mean)
        self.last_costs = self.evaluate(model, z0, goal, mean[:, None])[:, 0]
        if cfg.keep_best:
            keep = best_costs < self.last_costs
            mean[keep], self.last_costs[keep] = best[keep], best_costs[keep]
        return mean


def cem_stage(s: PlannerSettings, iterations: int, keep_best: bool = False) -> CEMConfig:
    """The CEMConfig of the planner.<field> settings `s`, with the planner's own `iterations` where
    planner.iterations is None."""
    return CEMConfig(
        samples=s.samples,
        topk=s.topk,
        iterations=s.iterations if s.iterations is not None else iterations,
        horizon=s.horizon,
        bounded=s.bounded,
        keep_best=keep_best,
    )


def build_cem(s: PlannerSettings, setup: PlanningSetup) -> CEMPlanner:
    cfg = cem_stage(s, task_planning(setup.task).cem_iterations)
    return CEMPlanner(cfg, setup.objective, setup.action_low, setup.action_high)


def build_cem_best(s: PlannerSettings, setup: PlanningSetup) -> CEMPlanner:
    cfg = cem_stage(s, task_planning(setup.task).cem_iterations, keep_best=True)
    return CEMPlanner(cfg, setup.objective, setup.action_low, setup.action_high)


register_planner(PlannerEntry("cem", "CEM", "tab:green", (CEMConfig,), build_cem))
register_planner(PlannerEntry("cem_best", "CEM, best kept", "tab:olive", (CEMConfig,), build_cem_best))
