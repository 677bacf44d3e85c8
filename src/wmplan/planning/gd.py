"""Gradient-based planning: optimise the action sequence through the differentiable world model.

The planner knows the model only through `rollout(z0, actions) -> Latent` and `action_dim`. This module
registers the planners gd (plain SGD, the paper's GD) and adam (wmplan.planning.registry); multistart runs this
planner from several starts (wmplan.planning.multistart).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wmplan.defaults import GD_LR, GD_NOISE, GD_STEPS, PLAN_HORIZON
from wmplan.models.world_model import Latent
from wmplan.planning.objective import Bounds, Generators, Objective, initial_actions, randn, resolve_generators
from wmplan.planning.protocols import Dynamics, StepCallback
from wmplan.planning.registry import PlannerEntry, PlanningSetup, register_planner
from wmplan.planning.settings import PlannerSettings


@dataclass
class GDConfig:
    """optimizer: "sgd" (the paper's GD) or "adam"; lr: step size; steps: optimisation steps;
    noise: std of the Gaussian noise added to the actions after each step (the authors' code);
    horizon: H, model steps planned; init: "randn" | "zero" (ignored where a warm start covers it);
    bounded: clamp the actions into [action_low, action_high] after each step (projected GD);
    restarts: K starts optimised at once per episode (the first from `init`, the others random), the one
    with the lowest final model cost returned (multi-start gradient planning);
    warm_steps: steps of a warm-started plan (an MPC replan, which starts from the last plan's tail),
    None for `steps`; plateau: stop once the batch's mean model cost fell by less than this fraction of
    itself over the last PLATEAU_WINDOW steps (0: never; the model's own cost, no simulator)."""

    optimizer: str = "adam"
    lr: float = GD_LR["open loop"]
    steps: int = GD_STEPS["open loop"]
    noise: float = GD_NOISE
    horizon: int = PLAN_HORIZON
    init: str = "randn"
    bounded: bool = False
    restarts: int = 1
    warm_steps: int | None = None
    plateau: float = 0.0


PLATEAU_WINDOW = 10
"""Steps over which `plateau` compares the mean cost: Adam's cost is noisy step to step (GD_NOISE)."""


class GDPlanner:
    """Plans B episodes at once. After `plan`: `last_costs` (B,) at the returned actions and
    `history` (steps,) the mean cost before each step."""

    def __init__(
        self,
        cfg: GDConfig,
        objective: Objective,
        action_low: torch.Tensor | None = None,
        action_high: torch.Tensor | None = None,
    ):
        if cfg.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose sgd or adam")
        if cfg.restarts < 1:
            raise ValueError(f"restarts must be at least 1, got {cfg.restarts}")
        self.cfg, self.objective = cfg, objective
        self.bounds = Bounds(cfg.bounded, action_low, action_high)
        self.last_costs: torch.Tensor | None = None
        self.history: torch.Tensor | None = None
        self.on_step: StepCallback | None = None  # told "adam 40/100" after each step (progress bars)

    def plan(
        self, model: Dynamics, z0: Latent, goal: Latent, init: torch.Tensor | None = None, generator: Generators = None
    ) -> torch.Tensor:
        """Actions (B, H, A) minimising the objective from context z0 (B, T0, ...) to goal (B, 1, ...).
        init: warm start (B, H', A), H' <= H (the rest filled per cfg.init); generator: one, or one per
        episode (then each episode's result does not depend on its batch); default: seeded 0."""
        cfg, h, k = self.cfg, self.cfg.horizon, self.cfg.restarts
        steps = cfg.warm_steps if init is not None and cfg.warm_steps is not None else cfg.steps
        # Detached: a context encoded with grad would tie every step's graph to the encoder's, and that
        # graph is freed after the first backward.
        z0, goal = z0.detach(), goal.detach()
        b, device = z0.visual.shape[0], z0.visual.device
        gens = resolve_generators(generator, b, device)
        first = initial_actions(init, b, h, model.action_dim, cfg.init, gens, device)
        if k > 1:  # each episode's K starts side by side (rows b*K .. b*K + K - 1), drawn from its own generator
            others = randn((b, k - 1, h, model.action_dim), gens, device)
            first = torch.cat([first[:, None], others], 1).flatten(0, 1)
            z0 = Latent(z0.visual.repeat_interleave(k, 0), z0.proprio.repeat_interleave(k, 0))
            if goal.visual.shape[0] == b:
                goal = Latent(goal.visual.repeat_interleave(k, 0), goal.proprio.repeat_interleave(k, 0))
            if not isinstance(gens, torch.Generator):
                gens = [g for g in gens for _ in range(k)]
        actions = self.bounds.clamp(first)
        actions.requires_grad_(True)
        # Both optimisers act elementwise, so with the summed cost each episode follows its own path.
        opt_cls = torch.optim.SGD if cfg.optimizer == "sgd" else torch.optim.Adam
        opt = opt_cls([actions], lr=cfg.lr)
        history = torch.empty(steps, device=device)
        for step in range(steps):
            with torch.enable_grad():
                costs = self.objective.cost(model.rollout(z0, actions), goal, horizon=h)
                # Gradients w.r.t. the actions only: the model's parameters never get a .grad.
                (grad,) = torch.autograd.grad(costs.sum(), actions)
            history[step] = costs.detach().mean()
            if self.on_step is not None:
                self.on_step(f"{cfg.optimizer} {step + 1}/{steps}")
            if cfg.plateau > 0 and step >= PLATEAU_WINDOW:
                before, now = history[step - PLATEAU_WINDOW].item(), history[step].item()
                if before - now < cfg.plateau * abs(before):  # the last step's update is not taken either
                    history = history[: step + 1]
                    break
            actions.grad = grad
            opt.step()
            with torch.no_grad():
                if cfg.noise > 0:
                    actions.add_(cfg.noise * randn(tuple(actions.shape), gens, device))
                actions.copy_(self.bounds.clamp(actions))
        result = actions.detach().clone()
        with torch.no_grad():
            self.last_costs = self.objective.cost(model.rollout(z0, result), goal, horizon=h)
        self.history = history
        if k > 1:  # per episode, the start that ended lowest
            costs = self.last_costs.view(b, k)
            pick = costs.argmin(1)
            result = result.view(b, k, h, -1)[torch.arange(b, device=device), pick]
            self.last_costs = costs.gather(1, pick[:, None])[:, 0]
        return result


def gd_stage(
    s: PlannerSettings, setup: PlanningSetup, optimizer: str = "adam", steps: int | None = None, restarts: int = 1
) -> GDConfig:
    """The GDConfig of the planner.<field> settings `s`; where one is None, the planner's own default given
    here (its optimizer, its steps, else the paper's for the mode, its restarts) or the paper's step size."""
    return GDConfig(
        optimizer=s.optimizer or optimizer,
        lr=s.lr if s.lr is not None else GD_LR[setup.mode],
        steps=s.steps if s.steps is not None else steps if steps is not None else GD_STEPS[setup.mode],
        noise=s.noise,
        horizon=s.horizon,
        init=s.init,
        bounded=s.bounded,
        restarts=s.restarts if s.restarts is not None else restarts,
        warm_steps=s.warm_steps,
        plateau=s.plateau,
    )


def build_gd(s: PlannerSettings, setup: PlanningSetup) -> GDPlanner:
    return GDPlanner(gd_stage(s, setup, optimizer="sgd"), setup.objective, setup.action_low, setup.action_high)


def build_adam(s: PlannerSettings, setup: PlanningSetup) -> GDPlanner:
    return GDPlanner(gd_stage(s, setup), setup.objective, setup.action_low, setup.action_high)


register_planner(PlannerEntry("gd", "GD", "tab:blue", (GDConfig,), build_gd))
register_planner(PlannerEntry("adam", "Adam", "tab:orange", (GDConfig,), build_adam))
