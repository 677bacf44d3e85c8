"""Where a simulator meets a world model: everything that touches both, written once.

Evaluation (planning episodes), online finetuning (executing the model's plans), the train-test gap
and the cost landscape all go through these functions, so the four cannot disagree on how a simulator
state becomes a latent, how model actions become env steps, where Wall's per-episode layouts apply, or
what the action bounds are in the model's normalised space. Planners stay simulator-free (planning/);
this module sits above them and below evaluation/ and training/.

Shapes: B episodes, S state dims, H model steps, fs frameskip, A env action dims.

Example:
    >>> z = encode_states(model, task, start)                    # (B, 1, ...) latents   # doctest: +SKIP
    >>> frames = execute(task, model, start, actions)            # H + 1 frames each     # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch

from wmplan.models.world_model import Latent, WorldModel


def model_device(model: WorldModel) -> torch.device:
    return next(model.parameters()).device


def action_bounds(model: WorldModel, task) -> tuple[torch.Tensor, torch.Tensor]:
    """The task's env action box (A,) in the model's normalised action space, repeated for the
    frameskip: low and high (fs * A,), what a bounded planner clamps to."""
    norm, fs = model.normalizer, model.cfg.data.frameskip
    return tuple(  # type: ignore[return-value]
        torch.as_tensor(np.tile((b - norm.action_mean) / norm.action_std, fs), dtype=torch.float32)
        for b in (task.action_low, task.action_high)
    )


def reset(task, state: np.ndarray, layout: np.ndarray | None = None) -> None:
    """Put the task's copies in `state` (B, S), in their own arenas where the dataset has layouts
    (Wall's random layouts, (B, 2)); without one, the task's default arena."""
    task.reset_to(state) if layout is None else task.reset_to(state, layout)


@torch.no_grad()
def encode_frames(model: WorldModel, obs: np.ndarray | None, state: np.ndarray | None, proprio: np.ndarray) -> Latent:
    """Latent (B, T, ...) of raw frames: obs uint8 (B, T, H, W, 3), state (B, T, S), proprio raw (B, T, P).
    The one of obs and state that the model's encoder does not read may be None (a state encoder reads state)."""
    device = model_device(model)
    p = model.normalizer.normalize_proprio(proprio.astype(np.float32)).astype(np.float32)
    return model.encode(
        obs=None if obs is None else torch.as_tensor(obs, device=device),
        proprio=torch.as_tensor(p, device=device),
        state=None if state is None else torch.as_tensor(state, dtype=torch.float32, device=device),
    )


def encode_states(model: WorldModel, task, state: np.ndarray) -> Latent:
    """Latent (B, 1, ...) of simulator states (B, S), rendered as the model saw its training frames, in
    the arenas the task's copies are in now (call `reset` first where episodes have their own layouts)."""
    return encode_frames(model, task.render(state)[:, None], state[:, None], task.proprio(state)[:, None])


def execute(
    task, model: WorldModel, start: np.ndarray, actions: torch.Tensor, layout: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Run normalised model actions (B, H, fs * A) from `start` (B, S) and record the frame at the end of
    every model step: state float32 (B, H + 1, S), obs uint8 (B, H + 1, Hi, Wi, 3), proprio float32 raw
    (B, H + 1, P); frame 0 is the start itself. The frames are what the model predicts at each step."""
    fs = model.cfg.data.frameskip
    reset(task, start, layout)
    env = model.env_actions(actions)  # (B, H * fs, A)
    frames = [task.get_state()]
    for t in range(env.shape[1]):
        task.step(env[:, t])
        if (t + 1) % fs == 0:  # a model step ends: this is the frame the model predicts for it
            frames.append(task.get_state())
    return {
        "state": np.stack(frames, 1).astype(np.float32),
        "obs": np.stack([task.render(s) for s in frames], 1),  # the task's own layouts, from the full-precision state
        "proprio": np.stack([task.proprio(s) for s in frames], 1).astype(np.float32),
    }


class SimulatedEpisodes:
    """B episodes in the task's simulator, stepped as plans arrive: observe as latents, execute model
    actions, track whether each episode has met its goal at any env step (`reached`), and keep every
    env step's image of the first `record` episodes (`frames`, for videos). Under the paper protocol,
    `boundary()` scores the episodes at a replanning boundary and freezes those that succeeded: their
    outcome is the state they reached there (`outcome_states`), and their frames hold still."""

    def __init__(self, task, model: WorldModel, start: np.ndarray, goal: np.ndarray, record: int = 0):
        self.task, self.model, self.goal = task, model, goal
        self.device = model_device(model)
        task.reset_to(start)
        self.reached = task.is_success(task.get_state(), goal)
        self.frames: list[np.ndarray] = [task.render()[:record]] if record else []
        self.record = record
        self.frozen = np.zeros(len(start), bool)
        self.frozen_state = np.array(start, copy=True)

    def encode(self, state: np.ndarray) -> Latent:
        """Latent (B, 1, ...) of states (B, S) in these episodes' arenas (e.g. their goals)."""
        return encode_states(self.model, self.task, state)

    def observe(self) -> Latent:
        return self.encode(self.task.get_state())

    def execute(self, actions: torch.Tensor, active: torch.Tensor | None = None) -> None:
        """Model actions (n, k, fs * A), normalised, of the episodes `active` (n,) (default all) -> k * fs
        env steps; the other episodes take zero env actions (frozen: their outcome is already kept)."""
        env = self.model.env_actions(actions)
        if active is not None and len(active) != len(self.goal):
            full = np.zeros((len(self.goal), *env.shape[1:]), dtype=env.dtype)
            full[np.asarray(active.cpu())] = env
            env = full
        for t in range(env.shape[1]):
            state = self.task.step(env[:, t])
            self.reached |= self.task.is_success(state, self.goal)
            if self.record:
                frame = self.task.render()[: self.record]
                still = self.frozen[: self.record]
                frame[still] = self.frames[-1][still]
                self.frames.append(frame)

    def boundary(self) -> np.ndarray:
        """(B,) bool: the episodes done at this replanning boundary, newly succeeded ones frozen here."""
        state = self.task.get_state()
        now = np.asarray(self.task.is_success(state, self.goal)) & ~self.frozen
        self.frozen_state[now] = state[now]
        self.frozen |= now
        return self.frozen.copy()

    def outcome_states(self) -> np.ndarray:
        """(B, S): each episode's scored state: where it was frozen, else where it is now."""
        return np.where(self.frozen[:, None], self.frozen_state, self.task.get_state())
