"""Training the JEPA encoder end to end with a predictor: next-latent prediction plus SIGReg.

On windows of the training split (the world model's own: frames `frameskip` env steps apart, each
transition's actions concatenated), the encoder maps every frame to a latent z, and a small residual
MLP predicts z[k + 1] from z[k], the actions between them and the frame's proprio. The loss is the
prediction's mean squared error plus `sigreg_weight` times SIGReg over all the batch's latents
(wmplan.models.jepa_encoder.sigreg, on SIGREG_PROJECTIONS random directions drawn afresh each step).
Both terms train the encoder: no stop-gradient, no target network.

This MLP serves the encoder's training only. Afterwards the encoder is frozen and the world model's
transformer predictor is trained on its tokens like on any other encoder's, so finetuning (online,
adversarial) and planning treat a JEPA model like the rest.

If the latents collapse anyway (their spread below COLLAPSE_FLOOR from step CHECK_FROM on; SIGReg aims at
1), training stops with an error before anything is written.

This module registers the `jepa` encoder (wmplan.models.encoder_registry).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wmplan.data.windows import TrajectoryWindows
from wmplan.models.encoder_registry import EncoderEntry, Pretraining, PretrainingData, register_encoder
from wmplan.models.encoder_training import CPU, MEAN_IMAGE_FRAMES, reinitialise, step_and_report
from wmplan.models.encoders import images_to_float
from wmplan.models.jepa_encoder import JepaEncoder, random_directions, sigreg

if TYPE_CHECKING:
    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims

SIGREG_PROJECTIONS = 64
COLLAPSE_FLOOR = 0.05  # the latents' mean per-feature std over a batch, below which they have collapsed
CHECK_EVERY = 50  # steps between collapse checks
CHECK_FROM = 100  # the first check, once the optimiser has settled


INIT_FRAMES = 512  # frames on which the untrained latents are brought to zero mean and unit spread


def standardise_output(encoder: JepaEncoder, frames: torch.Tensor) -> None:
    """Rescale the encoder's last layer so that its latents over `frames` have zero mean and unit std per
    feature. Untrained, they all sit near one point (the mean image is subtracted, and most pixels do not
    move), where SIGReg's gradient vanishes (it grows with the spread): training would first have to
    find its way out of a collapse."""
    z = encoder(frames.to(encoder.mean_image.device)).flatten(1)  # wherever the encoder lives
    mean, std = z.mean(dim=0), z.std(dim=0).clamp_min(1e-8)
    last = encoder.head[-1]
    assert isinstance(last, nn.Linear)
    last.weight.div_(std[:, None])
    last.bias.sub_(mean).div_(std)


class LatentCollapse(RuntimeError):
    """The JEPA's latents lost their spread: the encoder maps every frame to nearly the same point."""


class TransitionPredictor(nn.Module):
    """(z (B, F), actions (B, A'), proprio (B, P)) -> the next latent (B, F): z plus a learned step."""

    def __init__(self, latent_dim: int, action_dim: int, proprio_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim + action_dim + proprio_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, latent_dim),
        )

    def forward(self, z: torch.Tensor, action: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        return z + self.net(torch.cat([z, action, proprio], dim=-1))


def pretrain_jepa_encoder(
    encoder: JepaEncoder,
    windows: TrajectoryWindows,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    sigreg_weight: float,
    progress: bool = True,
    device: torch.device = CPU,
) -> dict:
    """Adam on prediction + SIGReg over random batches of `windows`. Deterministic given `seed` (weights,
    mean-image frames, batches and projections all come from one torch.Generator). Returns the final
    (smoothed) losses, the latents' spread and the time taken; raises LatentCollapse (naming the step
    and the fix) when the spread falls below COLLAPSE_FLOOR or the loss is not finite."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    latent_dim = encoder.num_tokens * encoder.dim
    action_dim = windows.spec.frameskip * int(windows.action.shape[-1])  # a transition's env actions, concatenated
    predictor = TransitionPredictor(latent_dim, action_dim, int(windows.proprio.shape[-1]))
    reinitialise([*encoder.modules(), *predictor.modules()], gen)
    with torch.no_grad():
        frames = torch.randint(0, len(windows.obs), (min(len(windows.obs), MEAN_IMAGE_FRAMES),), generator=gen)
        encoder.mean_image.copy_(images_to_float(windows.obs[frames]).mean(dim=0, keepdim=True))
        standardise_output(encoder, windows.obs[frames[:INIT_FRAMES]])
    encoder.to(device).train().requires_grad_(True)  # also a frozen encoder is trained (freeze it again after)
    predictor.to(device)
    opt = torch.optim.Adam([*encoder.parameters(), *predictor.parameters()], lr=lr)
    smoothed: dict[str, float] = {}
    spread = float("nan")
    bar = tqdm(range(steps), desc="train JEPA encoder", disable=not progress)
    for step in bar:
        batch = windows.batch(torch.randint(0, len(windows), (batch_size,), generator=gen))
        obs = batch["obs"].to(device)
        b, w = obs.shape[:2]
        z = encoder(obs.flatten(0, 1)).view(b, w, latent_dim)
        action, proprio = batch["action"].to(device), batch["proprio"][:, :-1].to(device)
        losses = {
            "predict": F.mse_loss(predictor(z[:, :-1], action, proprio), z[:, 1:]),
            "sigreg": sigreg(z.flatten(0, 1), random_directions(latent_dim, SIGREG_PROJECTIONS, gen).to(device)),
        }
        loss = losses["predict"] + sigreg_weight * losses["sigreg"]
        if not torch.isfinite(loss):
            raise LatentCollapse(
                f"the JEPA encoder's loss became {loss.item()} at step {step}; nothing was written. Lower "
                "model.encoder.pretrain_lr"
            )
        step_and_report(opt, loss, losses, smoothed, bar)
        if step % CHECK_EVERY == 0 or step == steps - 1:
            spread = float(z.detach().flatten(0, 1).std(dim=0).mean())
            if spread < COLLAPSE_FLOOR and step >= CHECK_FROM:
                raise LatentCollapse(
                    f"the JEPA encoder's latents collapsed at step {step} (spread {spread:.3g} < {COLLAPSE_FLOOR}); "
                    "nothing was written. Raise model.encoder.jepa_sigreg_weight or lower model.encoder.pretrain_lr"
                )
    encoder.eval()
    return {**smoothed, "spread": spread, "seconds": time.perf_counter() - start}


def build_jepa_encoder(cfg: EncoderConfig, dims: TaskDims) -> JepaEncoder:
    if dims.image_size < 16:
        raise ValueError(
            f"the jepa encoder learns from images, and {dims.task}'s are {dims.image_size} px; use the state encoder"
        )
    return JepaEncoder(image_size=dims.image_size, num_tokens=cfg.jepa_tokens, dim=cfg.jepa_dim)


def jepa_pretraining_inputs(enc: EncoderConfig, data: PretrainingData, seed: int) -> tuple[Any, dict[str, Any]]:
    """The training split's windows (transitions with their actions) and the SIGReg weight."""
    return data.train, {"sigreg_weight": enc.jepa_sigreg_weight}


register_encoder(
    EncoderEntry(
        "jepa",
        "pixel model (`jepa` encoder: learned end to end with a predictor on RGB frames, SIGReg against collapse)",
        build_jepa_encoder,
        pretraining=Pretraining(pretrain_jepa_encoder, jepa_pretraining_inputs),
        minimums={"jepa_tokens": 1, "jepa_dim": 1},
        positive=("jepa_sigreg_weight",),  # without it the latents collapse
        settings=("pretrain_steps", "pretrain_batch", "pretrain_lr"),  # whole windows: no pretrain_frames
    )
)
