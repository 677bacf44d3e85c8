"""Receding-horizon control: plan, execute the first k model steps, observe, replan warm-started.

The controller reaches the world only through two callbacks, so planning stays simulator-free:
`observe() -> Latent` (the current frame's latent, (B, 1, ...)) and `execute(actions)` (runs model
actions (B, k, A) in the environment). It keeps no ground-truth notion of success: the caller scores.

Example:
    >>> mpc = MPC(planner, MPCConfig(replans=10, execute=1))                           # doctest: +SKIP
    >>> mpc.run(model, observe, execute, goal, generator=gens)                         # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from wmplan.models.world_model import Latent
from wmplan.planning.protocols import Dynamics, Planner


@dataclass
class MPCConfig:
    replans: int = 10
    """Planning calls per episode (a fixed budget; the first plan counts)."""
    execute: int = 1
    """Model steps executed from each plan before replanning (k)."""


def shift_plan(plan: torch.Tensor, executed: int) -> torch.Tensor:
    """The warm start for the next plan: the unused tail plan[:, k:] (B, H - k, A); the planner pads
    the missing end steps by its own init rule."""
    return plan[:, executed:]


@dataclass
class MPCResult:
    executed: list[torch.Tensor] = field(default_factory=list)  # (B, k, A) per replan
    plans: list[torch.Tensor] = field(default_factory=list)  # (B, H, A) per replan
    plan_seconds: list[float] = field(default_factory=list)  # wall-clock of each planning call


class MPC:
    def __init__(self, planner: Planner, cfg: MPCConfig):
        if cfg.execute < 1 or cfg.execute > planner.cfg.horizon:
            raise ValueError(f"mpc.execute must be in [1, horizon={planner.cfg.horizon}], got {cfg.execute}")
        self.planner, self.cfg = planner, cfg

    def run(
        self,
        model: Dynamics,
        observe: Callable[[], Latent],
        execute: Callable[[torch.Tensor], None],
        goal: Latent,
        generator=None,
    ) -> MPCResult:
        result, warm = MPCResult(), None
        for _ in range(self.cfg.replans):
            z0 = observe()
            start = time.perf_counter()
            plan = self.planner.plan(model, z0, goal, init=warm, generator=generator)
            _sync(plan)
            result.plan_seconds.append(time.perf_counter() - start)
            step = plan[:, : self.cfg.execute]
            execute(step)
            result.plans.append(plan)
            result.executed.append(step)
            warm = shift_plan(plan, self.cfg.execute)
        return result


def _sync(t: torch.Tensor) -> None:
    """Planning time is wall-clock: wait for queued GPU work before reading the clock."""
    if t.is_cuda:
        torch.cuda.synchronize(t.device)
