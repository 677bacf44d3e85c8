"""One open-loop plan from a frame towards a goal frame, for frames of one's own (a dataset's, a simulator's, a
robot's), with no simulator in the loop: in one call what an eval does before each plan (encode the frame and
the goal, build the planner from its settings with the task's defaults and action bounds, plan).

Example:
    >>> episode = TrajectoryStore.open("data/wall").episode(0)                                 # doctest: +SKIP
    >>> start, goal = {k: v[:1] for k, v in episode.items()}, {k: v[-1:] for k, v in episode.items()}  # doctest: +SKIP
    >>> plan_to_goal(model, start, goal, "cem").shape   # env actions (B, H * fs, A)           # doctest: +SKIP
    (1, 25, 2)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from wmplan.closed_loop import encode_frames, model_device
from wmplan.envs import make_task
from wmplan.evaluation.eval_config import EvalConfig, build_planner
from wmplan.models.world_model import Latent, WorldModel
from wmplan.planning.settings import PlannerSettings
from wmplan.precision import use_bf16

FRAME_DIMS = {"obs": 4, "state": 2, "proprio": 2}
"""Axes of each array of a batch of frames: obs uint8 (B, H, W, 3), state (B, S), raw proprio (B, P)."""


def plan_to_goal(
    model: WorldModel,
    start: Mapping[str, np.ndarray],
    goal: Mapping[str, np.ndarray],
    planner: str = "cem",
    settings: PlannerSettings | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Env actions (B, H * fs, A) of one open-loop plan by the registered `planner` (settings: its
    planner.<field> knobs, None the paper's and the task's defaults) from the frames `start` towards the frames
    `goal`, B of each. A batch of frames maps obs uint8 (B, H, W, 3), state (B, S) and raw proprio (B, P), as a
    dataset's frames or a simulator's are; a state encoder reads state, every other encoder obs, so the other may
    be left out (other keys, such as a dataset's action, are ignored). `seed` seeds the planner's random
    stream. The model plans in eval mode and at settings.precision; it is left as it was."""
    cfg = EvalConfig(planner=planner, settings=settings or PlannerSettings()).check()
    z0, z_goal = _latent(model, start, "start"), _latent(model, goal, "goal")
    if z0.visual.shape[0] != z_goal.visual.shape[0]:
        raise ValueError(
            f"start holds {z0.visual.shape[0]} frames and goal {z_goal.visual.shape[0]}; give one goal per start"
        )
    built = build_planner(cfg, model, make_task(model.dims.task, model.task_settings))
    device = model_device(model)
    was_training, was_bf16 = model.training, model.plan_bf16
    model.eval()
    model.plan_bf16 = use_bf16(cfg.settings.precision, device)
    try:
        actions = built.plan(model, z0, z_goal, generator=torch.Generator(device=device).manual_seed(seed))
    finally:
        model.train(was_training)
        model.plan_bf16 = was_bf16
    return model.env_actions(actions)


def _latent(model: WorldModel, frames: Mapping[str, np.ndarray], name: str) -> Latent:
    """The latent (B, 1, ...) of a batch of frames, after checking that it has what the model's encoder reads,
    each array with its axes and all of one batch size; a ValueError names `name`, the key and the fix."""
    reads = ("state" if model.uses_state else "obs", "proprio")
    arrays = {}
    for key in reads:
        if key not in frames:
            raise ValueError(
                f"{name} has no {key}: this model's {model.cfg.model.encoder.name} encoder reads {' and '.join(reads)}"
            )
        arrays[key] = np.asarray(frames[key])
        if arrays[key].ndim != FRAME_DIMS[key]:
            raise ValueError(
                f"{name}[{key!r}] must have {FRAME_DIMS[key]} axes, the first a batch of frames, got shape "
                f"{arrays[key].shape}; for one frame, add the batch axis ({key}[None])"
            )
    sizes = {key: len(a) for key, a in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{name}'s arrays hold different numbers of frames: {sizes}")
    return encode_frames(
        model,
        arrays["obs"][:, None] if "obs" in arrays else None,
        arrays["state"][:, None] if "state" in arrays else None,
        arrays["proprio"][:, None],
    )
