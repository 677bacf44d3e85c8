"""The planning objective (latent distance to a goal) and small helpers the planners share.

cost = MSE(visual tokens) + alpha * MSE(proprio embedding), per episode, between predicted frames and
the goal's single frame: the last frame only (the paper's equation) or every predicted frame i = 1..H
weighted base**i, the weights normalised to sum 1 (the authors' code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from wmplan.models.world_model import Latent
from wmplan.planning.task_defaults import task_planning

#: Either one generator for the whole batch, or one per episode (then an episode's random draws do not
#: depend on which other episodes share its batch: planning a batch equals planning each episode alone).
Generators = torch.Generator | Sequence[torch.Generator] | None


@dataclass
class Objective:
    """alpha: weight of the proprio term; mode: "last" (final frame) or "all" (frames 1..H weighted
    base**i, normalised); base: the "all" weights' base (> 1 favours late frames)."""

    alpha: float = 1.0
    mode: str = "last"
    base: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in ("last", "all"):
            raise ValueError(f"unknown objective mode {self.mode!r}; choose last or all")

    def cost(self, z: Latent, goal: Latent, horizon: int | None = None) -> torch.Tensor:
        """Per-episode cost (B,). z: a rollout (B, T0 + H, ...) whose first T0 frames are context;
        goal: (B, 1, ...) (or (1, 1, ...), broadcast). horizon: H, the number of predicted frames at the
        end of z; None means every frame after frame 0 (a rollout from a single context frame)."""
        if goal.visual.shape[1] != 1:
            raise ValueError(f"the goal must be a single frame, got {goal.visual.shape[1]}")
        t = z.visual.shape[1]
        h = t - 1 if horizon is None else horizon
        if not 1 <= h < t:
            raise ValueError(f"a rollout of {t} frames cannot hold {h} predicted frames after its context")
        pred = z.frames(slice(t - 1, t) if self.mode == "last" else slice(t - h, t))
        visual = (pred.visual - goal.visual).pow(2).mean(dim=(2, 3))  # (B, T')
        proprio = (pred.proprio - goal.proprio).pow(2).mean(dim=2)  # (B, T')
        per_frame = visual + self.alpha * proprio
        if self.mode == "last":
            return per_frame[:, 0]
        w = torch.tensor([self.base**i for i in range(1, h + 1)], dtype=per_frame.dtype, device=per_frame.device)
        return per_frame @ (w / w.sum())


def objective_mode(task: str, mpc: bool) -> str:
    """The task's default objective mode (last | all) for open loop (mpc False) or MPC."""
    return task_planning(task).objective_mode(mpc)


def objective_for(task: str, **overrides) -> Objective:
    """The task's default objective (wmplan.tasks), with any field overridden."""
    return Objective(**{"alpha": task_planning(task).alpha, **overrides})


def resolve_generators(
    generator: Generators, batch: int, device: torch.device
) -> torch.Generator | list[torch.Generator]:
    """The default is a new generator seeded 0 on `device` (never the global RNG)."""
    if generator is None:
        return torch.Generator(device=device).manual_seed(0)
    if isinstance(generator, torch.Generator):
        return generator
    gens = list(generator)
    if len(gens) != batch:
        raise ValueError(f"{len(gens)} generators for {batch} episodes; pass one, or one per episode")
    return gens


def randn(shape: tuple[int, ...], gens: torch.Generator | list[torch.Generator], device: torch.device) -> torch.Tensor:
    """Standard normal noise of `shape` = (B, ...): one draw from a shared generator, or row b from
    the b-th per-episode generator."""
    if isinstance(gens, torch.Generator):
        return torch.randn(shape, generator=gens, device=device)
    return torch.stack([torch.randn(shape[1:], generator=g, device=device) for g in gens])


def initial_actions(
    init: torch.Tensor | None, batch: int, horizon: int, action_dim: int, fill: str, gens, device: torch.device
) -> torch.Tensor:
    """(B, H, A) starting actions: `init` (B, H', A) (a warm start; truncated to H, or padded at the
    end with `fill` = "randn" | "zero"), or all `fill` when init is None."""
    if fill not in ("randn", "zero"):
        raise ValueError(f"unknown init {fill!r}; choose randn or zero")
    head = (
        torch.zeros(batch, 0, action_dim, device=device)
        if init is None
        else init.detach().to(device, torch.float32)[:, :horizon]
    )
    if head.shape[0] != batch or head.shape[2] != action_dim:
        given = tuple(head.shape if init is None else init.shape)
        raise ValueError(f"init has shape {given}, expected ({batch}, <= {horizon}, {action_dim})")
    rest = (batch, horizon - head.shape[1], action_dim)
    tail = randn(rest, gens, device) if fill == "randn" else torch.zeros(rest, device=device)
    return torch.cat([head, tail], 1)


class Bounds:
    """Box bounds (A,) in the model's normalised action space; a no-op when not `bounded`."""

    def __init__(self, bounded: bool, low: torch.Tensor | None, high: torch.Tensor | None):
        if bounded and (low is None or high is None):
            raise ValueError("bounded planning needs action_low and action_high")
        self.bounded, self.low, self.high = bounded, low, high

    def clamp(self, actions: torch.Tensor) -> torch.Tensor:
        if not self.bounded:
            return actions
        low, high = (torch.as_tensor(b, dtype=actions.dtype, device=actions.device) for b in (self.low, self.high))
        return torch.maximum(torch.minimum(actions, high), low)
