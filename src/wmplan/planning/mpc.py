"""Receding-horizon control: plan, execute the first k model steps, observe, replan warm-started.

The controller reaches the world only through callbacks, so planning stays simulator-free:
`observe() -> Latent` (the current frame's latent, (B, 1, ...)) and `execute(actions, active)` (runs
model actions (k, A) of the episodes `active` in the environment). Two protocols:
- fixed (no `done` callback): every episode makes cfg.replans planning calls; nothing the planner or
  the loop sees depends on the simulator's success test; the caller scores at the end.
- paper (DINO-WM's loop, which the paper's Table 1 inherits; pass `done`): after each executed chunk
  the caller's `done() -> (B,) bool` (the simulator's success test at this replanning boundary) freezes
  the episodes it names; only the others are planned and executed again, until none is left or
  cfg.replans calls were made. The planner itself never sees the test; the loop does.

Example:
    >>> mpc = MPC(planner, MPCConfig(replans=10, execute=1))                           # doctest: +SKIP
    >>> mpc.run(model, observe, execute, goal, generator=gens)                         # doctest: +SKIP
    >>> mpc.run(model, observe, execute, goal, generator=gens, done=reached_now)      # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from wmplan.models.world_model import Latent
from wmplan.planning.protocols import Dynamics, Planner


@dataclass
class MPCConfig:
    replans: int = 10
    """Planning calls per episode (fixed protocol: every episode makes them all; paper protocol: the
    most an episode makes before it is scored; the first plan counts)."""
    execute: int = 1
    """Model steps executed from each plan before replanning (k)."""
    hold: bool = False
    """Keep a reached goal: an episode whose current frame the model already scores at most as far from
    the goal as the end of its new plan (the objective on the current frame against the plan's cost)
    executes nothing this round, so a later plan cannot walk away from where an earlier one arrived.
    It still counts the planning call. Only the model's own cost decides: nothing peeks at the simulator."""


def shift_plan(plan: torch.Tensor, executed: int) -> torch.Tensor:
    """The warm start for the next plan: the unused tail plan[:, k:] (B, H - k, A); the planner pads
    the missing end steps by its own init rule."""
    return plan[:, executed:]


@dataclass
class MPCResult:
    executed: list[torch.Tensor] = field(default_factory=list)  # (B, k, A) per replan
    plans: list[torch.Tensor] = field(default_factory=list)  # (B, H, A) per replan
    plan_seconds: list[float] = field(default_factory=list)  # wall-clock of each planning call
    replans: torch.Tensor | None = None  # (B,) planning calls each episode took
    held: torch.Tensor | None = None  # (B,) of those, the calls after which it held (MPCConfig.hold)


class MPC:
    def __init__(self, planner: Planner, cfg: MPCConfig):
        if cfg.execute < 1 or cfg.execute > planner.cfg.horizon:
            raise ValueError(f"mpc.execute must be in [1, horizon={planner.cfg.horizon}], got {cfg.execute}")
        self.planner, self.cfg = planner, cfg

    def run(
        self,
        model: Dynamics,
        observe: Callable[[], Latent],
        execute: Callable[[torch.Tensor, torch.Tensor], None],
        goal: Latent,
        generator=None,
        done: Callable[[], Any] | None = None,
    ) -> MPCResult:
        """Plan and execute until the budget is spent (or, with `done`, every episode is done). Planning
        calls plan the active episodes only, each drawing from its own generator (a list of B), so an
        episode's plan does not depend on which others are still active beyond BLAS's rounding.
        execute(actions (n, k, A), active (n,) long): the episodes `active` take their actions;
        done() -> (B,) bool (array or tensor): the episodes finished at this boundary."""
        b = goal.visual.shape[0]
        replans, held = torch.zeros(b, dtype=torch.long), torch.zeros(b, dtype=torch.long)
        result = MPCResult(replans=replans, held=held)
        active = torch.arange(b)
        warm: torch.Tensor | None = None
        gens = generator if isinstance(generator, list) else None
        for _ in range(self.cfg.replans):
            z0 = _rows(observe(), active)
            start = time.perf_counter()
            rows_gen = [gens[i] for i in active.tolist()] if gens is not None else generator
            plan = self.planner.plan(model, z0, _rows(goal, active), init=warm, generator=rows_gen)
            _sync(plan)
            result.plan_seconds.append(time.perf_counter() - start)
            step = plan[:, : self.cfg.execute]
            moves = self._moves(z0, _rows(goal, active), plan)
            if moves.all():
                execute(step, active)
            elif moves.any():
                execute(step[moves.to(step.device)], active[moves])
            replans[active] += 1
            held[active[~moves]] += 1
            result.plans.append(plan)
            result.executed.append(step)
            warm = shift_plan(plan, self.cfg.execute)
            if not moves.all():  # a held episode is where it was: its warm start is its plan's unexecuted head
                stay = (~moves).to(warm.device)
                warm = torch.where(stay[:, None, None], plan[:, : warm.shape[1]], warm)
            if done is not None:
                keep = ~torch.as_tensor(done(), dtype=torch.bool)[active]
                if not keep.any():
                    break
                active, warm = active[keep], warm[keep.to(warm.device)]
        return result

    def _moves(self, z0: Latent, goal: Latent, plan: torch.Tensor) -> torch.Tensor:
        """(n,) bool on the CPU: the episodes that execute their plan's first steps (all, unless `hold`)."""
        if not self.cfg.hold:
            return torch.ones(len(plan), dtype=torch.bool)
        planned = self.planner.last_costs
        if planned is None:
            raise ValueError("mpc.hold needs a planner that reports its plan's cost (last_costs)")
        here = self.planner.objective.cost(_repeat_last(z0), goal, horizon=1)  # the current frame, as if predicted
        return (planned.to(here.device) < here).cpu()


def _repeat_last(z: Latent) -> Latent:
    """z (B, T, ...) with its last frame appended again: a rollout whose one predicted frame is now."""
    return Latent(torch.cat([z.visual, z.visual[:, -1:]], 1), torch.cat([z.proprio, z.proprio[:, -1:]], 1))


def _rows(z: Latent, index: torch.Tensor) -> Latent:
    """The episodes `index` of a batch of latents (all of them: z itself, no copy)."""
    if len(index) == z.visual.shape[0]:
        return z
    i = index.to(z.visual.device)
    return Latent(z.visual[i], z.proprio[i])


def _sync(t: torch.Tensor) -> None:
    """Planning time is wall-clock: wait for queued GPU work before reading the clock."""
    if t.is_cuda:
        torch.cuda.synchronize(t.device)
