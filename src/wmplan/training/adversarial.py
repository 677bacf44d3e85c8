"""Adversarial World Modeling: finetune on worst-case perturbations of the input latents and actions.

    min_theta E[ max_{|dz| <= eps_z, |da| <= eps_a} || f(z_t + dz, a_t + da) - z_{t+1} ||^2 ]

with clean targets, training on the perturbed batch only (PAPER.md, "Adversarial World Modeling").
The inner max is FGSM with a random start: d ~ U(-eps, eps), one gradient g of the loss w.r.t. d,
d <- clamp(d + 1.25 eps sign(g), -eps, eps); `adversarial.pgd_steps = k > 1` repeats the ascent k times
(PGD). The model then takes one ordinary training step on the perturbed input.

Three groups, each with its own L-inf radius eps = lambda x std:
  visual   the context's visual latents   (B, h, P, D)
  proprio  the context's proprio embedding (B, h, Ep)
  action   the context's actions: normalised actions (B, h, fs * A) with `action_space=raw` (the
           paper's equation), or their embeddings (B, h, Ea) with `embedding` (the authors' code).
std is the pooled std of all the group's elements in the batch's context window. (The authors' code takes
each sample's std over its group and averages over the batch; on DINOv2 tokens the two agree closely, but
per-sample std is degenerate for low-dimensional latents such as the `state` encoder's 2-D token.)
`eps_mode=fixed` (default) measures it on the first minibatch and keeps it: the paper found this stable
and re-estimating per batch (`adaptive`) no better. Default lambdas: see config.AdversarialConfig.

Example:
    >>> adv = AdversarialLoss(model, cfg.adversarial)        # doctest: +SKIP
    >>> adv(batch)["loss"].backward()                        # doctest: +SKIP
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from wmplan.config import AdversarialConfig
from wmplan.models.world_model import Latent, WorldModel

GROUPS = ("visual", "proprio", "action")


class AdversarialLoss(nn.Module):
    """forward(batch) -> {"loss": the loss on the adversarially perturbed context, "baseline": the
    copy-last-frame loss}; used by the Trainer in place of LossModule (so DDP can wrap it). The radii
    live in buffers: `eps` (3,) in GROUPS order and `eps_set`, set on the first batch in fixed mode."""

    # buffers (register_buffer), declared for the type checker
    lambdas: torch.Tensor
    eps: torch.Tensor
    eps_set: torch.Tensor

    def __init__(self, model: WorldModel, cfg: AdversarialConfig):
        super().__init__()
        if cfg.eps_mode not in ("fixed", "adaptive"):
            raise ValueError(f"adversarial.eps_mode must be fixed or adaptive, got {cfg.eps_mode!r}")
        if cfg.action_space not in ("raw", "embedding"):
            raise ValueError(f"adversarial.action_space must be raw or embedding, got {cfg.action_space!r}")
        if cfg.pgd_steps < 1:
            raise ValueError(f"adversarial.pgd_steps must be >= 1 (1 = FGSM), got {cfg.pgd_steps}")
        lambdas = (cfg.lambda_visual, cfg.lambda_proprio, cfg.lambda_action)
        if min(lambdas) < 0:
            raise ValueError(f"adversarial lambdas must be >= 0, got {lambdas}")
        self.model, self.cfg = model, cfg
        self.register_buffer("lambdas", torch.tensor(lambdas))
        self.register_buffer("eps", torch.zeros(3))
        self.register_buffer("eps_set", torch.zeros((), dtype=torch.bool))

    # ----- the parts, public so they can be tested one by one --------------------------------------
    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[Latent, torch.Tensor, Latent]:
        """(context latents (B, h, ...), the action group in its perturbed space (B, h, fs * A) raw or
        (B, h, Ea) embedded, clean detached target latents (B, h, ...))."""
        context, actions, target = self.model.encode_window(batch)
        act = actions.float() if self.cfg.action_space == "raw" else self.model.embed_actions(actions)
        return context, act, target

    @torch.no_grad()
    def radii(self, context: Latent, act: torch.Tensor) -> torch.Tensor:
        """eps (3,) = lambda x pooled std of each group; fixed mode measures once (averaged over ranks
        under DDP, so every rank uses the same radii) and returns the stored radii afterwards."""
        if self.cfg.eps_mode == "fixed" and bool(self.eps_set):
            return self.eps
        stds = torch.stack([x.detach().float().std() for x in (context.visual, context.proprio, act)])
        eps = self.lambdas * stds.to(self.lambdas.device)
        if self.cfg.eps_mode == "fixed":
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(eps)
                eps /= dist.get_world_size()
            self.eps_set.fill_(True)
        self.eps.copy_(eps)  # adaptive: the last batch's radii, for describe()
        return eps

    def perturbed_loss(
        self, context: Latent, act: torch.Tensor, target: Latent, deltas: list[torch.Tensor]
    ) -> torch.Tensor:
        """The model's teacher-forced loss with (d_visual, d_proprio, d_action) added to its inputs;
        the target stays clean."""
        d_visual, d_proprio, d_action = deltas
        z = Latent(context.visual + d_visual, context.proprio + d_proprio)
        emb = self.model.embed_actions(act + d_action) if self.cfg.action_space == "raw" else act + d_action
        return self.model.prediction_loss(z, emb, target)

    @torch.enable_grad()
    def attack(self, context: Latent, act: torch.Tensor, target: Latent, eps: torch.Tensor) -> list[torch.Tensor]:
        """Detached perturbations [d_visual, d_proprio, d_action], each shaped like its group and
        inside its L-inf ball: a random start, then pgd_steps signed-gradient ascent steps of
        step_factor x eps, each clamped back into the ball."""
        # The inputs are detached: the attack needs d's gradient only, not the encoders' graph.
        groups = (context.visual.detach(), context.proprio.detach(), act.detach())
        deltas = [(torch.rand_like(x) * 2 - 1) * e for x, e in zip(groups, eps)]
        for _ in range(self.cfg.pgd_steps):
            deltas = [d.requires_grad_(True) for d in deltas]
            loss = self.perturbed_loss(Latent(groups[0], groups[1]), groups[2], target, deltas)
            # autograd.grad w.r.t. d alone leaves the parameters' .grad (and DDP's hooks) untouched.
            grads = torch.autograd.grad(loss, deltas)
            deltas = [
                torch.clamp(d.detach() + self.cfg.step_factor * e * g.sign(), -e, e)
                for d, g, e in zip(deltas, grads, eps)
            ]
        return deltas

    # ----- the training loss -----------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        context, act, target = self.inputs(batch)
        eps = self.radii(context, act)
        deltas = self.attack(context, act, target, eps)
        # Perturbed batch only (no clean term), gradients through the predictor and both embeddings.
        loss = self.perturbed_loss(context, act, target, deltas)
        return {"loss": loss, "baseline": self.model.latent_mse(context.detach(), target)}

    def describe(self) -> dict:
        """What config.json records of the attack: the radii (fixed: as measured on the first batch;
        adaptive: the last batch's), once a batch has been seen."""
        if not bool(self.eps.any()):
            return {}
        return {"adversarial_eps": {g: round(float(e), 6) for g, e in zip(GROUPS, self.eps)}}
