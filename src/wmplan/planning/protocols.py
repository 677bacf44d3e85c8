"""What a planner needs from a model, and what MPC, evaluation and online finetuning need from a planner.

A planner never sees a simulator, an encoder or a dataset: any model with `action_dim` and a
differentiable `rollout` can be planned with (WorldModel is one; the tests use toy dynamics).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch

from wmplan.models.world_model import Latent
from wmplan.planning.objective import Generators, Objective

StepCallback = Callable[[str], None]
"""Told where a plan is after each optimisation step or CEM iteration, e.g. "adam 40/100"."""


@runtime_checkable
class Dynamics(Protocol):
    action_dim: int
    """A: the size of one model action (frameskip x env action dims, normalised)."""

    def rollout(self, z0: Latent, actions: torch.Tensor) -> Latent:
        """Latents (B, T0 + H, ...): the context z0 (B, T0, ...) followed by the H frames predicted
        along actions (B, H, A); differentiable in the actions."""
        ...


@runtime_checkable
class Planner(Protocol):
    cfg: Any
    """The planner's settings; MPC reads `cfg.horizon`."""
    objective: Objective
    last_costs: torch.Tensor | None
    """(B,) the objective at the plan the last call returned."""
    on_step: StepCallback | None
    """Called after each step or iteration of a plan (None: nothing is told)."""

    def plan(
        self, model: Dynamics, z0: Latent, goal: Latent, init: torch.Tensor | None = None, generator: Generators = None
    ) -> torch.Tensor:
        """Actions (B, H, A) from context z0 (B, T0, ...) towards goal (B, 1, ...); init: a warm start
        (B, H', A), H' <= H; generator: one, or one per episode."""
        ...
