"""Online World Modeling: train on the simulator's answer to the model's own plans (DAgger-like).

Every `online.every` training batches (from the first) the loss module refreshes its buffer:
  1. draw `online.windows` frames t of training-split trajectories whose frame t + goal_steps * fs lies
     in the same episode; start = the true simulator state at t, goal = the state at t + goal_steps * fs;
  2. plan H = `online.horizon` model actions with the current model (GD/Adam, last-frame cost, a
     1-frame context, model in eval mode);
  3. execute them in the simulator from the start state and record the state at every model step:
     H + 1 executed frames (rendered, encoded with the frozen encoder);
  4. cut windows of h + 1 frames (h = num_hist) out of that ONE rollout: frames i..i+h with actions
     i..i+h-1, i = 0..H-h. Context and target come from the same executed trajectory (the authors' code
     put the rollout's frames after h ground-truth frames, although the rollout started at the first).
Each training step then uses (1 - s) x B expert windows and s x B windows drawn from the FIFO buffer,
s = online_fraction (or, with online.share=growing, k / (k + 1) in the k-th pass over the training windows);
the loss is their sample-weighted mean, i.e. the plain loss of the mixed batch.

Example:
    >>> online = OnlineLoss(model, data, cfg.online)     # doctest: +SKIP
    >>> online(batch)["loss"].backward()                 # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmplan.closed_loop import action_bounds, encode_states, execute, model_device, reset
from wmplan.config import OnlineConfig
from wmplan.data.windows import WindowSpec, window_starts
from wmplan.envs import make_task
from wmplan.models.world_model import Latent, WorldModel
from wmplan.planning import GDConfig, GDPlanner, objective_for
from wmplan.writing import atomic_write

KEYS = ("visual", "proprio", "action", "state")
LOG_COLUMNS = ["step", "expert_loss", "online_loss", "buffer", "plan_cost", "final_distance"]


class OnlineBuffer:
    """A bounded FIFO of windows in the trainer's batch format, kept on the CPU: visual (N, W, P, D),
    proprio (N, W, Pp) normalised, action (N, W - 1, fs * A) normalised, state (N, W, S) raw."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"online.buffer_size must be >= 1, got {capacity}")
        self.capacity = capacity
        self.data: dict[str, torch.Tensor] = {}
        self.added = 0  # windows ever added (the buffer keeps the last `capacity` of them)

    def __len__(self) -> int:
        return len(self.data["state"]) if self.data else 0

    def add(self, windows: dict[str, torch.Tensor]) -> None:
        """Append windows (N, ...) per key; the oldest beyond `capacity` are dropped."""
        windows = {k: windows[k].detach().cpu() for k in KEYS}
        self.data = {k: torch.cat([self.data[k], v]) if self.data else v for k, v in windows.items()}
        self.data = {k: v[-self.capacity :] for k, v in self.data.items()}
        self.added += len(windows["state"])

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """n windows drawn uniformly with replacement (the buffer may hold fewer than n)."""
        idx = torch.randint(0, len(self), (n,), generator=generator)
        return {k: v[idx] for k, v in self.data.items()}


@torch.no_grad()
def execute_plan(
    task, model: WorldModel, start: np.ndarray, actions: torch.Tensor, layout: np.ndarray | None = None
) -> dict[str, torch.Tensor]:
    """closed_loop.execute's H + 1 frames per model step as the trainer's tensors: state (B, H + 1, S),
    obs uint8 (B, H + 1, Hi, Wi, 3), proprio normalised (B, H + 1, Pp), visual tokens (B, H + 1, P, D)."""
    frames = execute(task, model, start, actions, layout)
    out = {
        "state": torch.as_tensor(frames["state"]),
        "obs": torch.as_tensor(frames["obs"]),
        "proprio": torch.as_tensor(model.normalizer.normalize_proprio(frames["proprio"]), dtype=torch.float32),
    }
    device = model_device(model)
    out["visual"] = model.encode_visual(obs=out["obs"].to(device), state=out["state"].to(device)).cpu()
    return out


def build_windows(rollout: dict[str, torch.Tensor], actions: torch.Tensor, num_hist: int) -> dict[str, torch.Tensor]:
    """Training windows of h + 1 frames (h = num_hist) from ONE executed rollout (H + 1 frames per key,
    as from execute_plan) and the actions (B, H, fs * A) that produced it: window i holds frames i..i+h
    and actions i..i+h-1, so its context i..i+h-1 and target i+1..i+h are aligned. Returns (B * (H - h
    + 1), ...) per key, episode-major (window i of episode b at b * (H - h + 1) + i)."""
    horizon = actions.shape[1]
    if horizon < num_hist:
        raise ValueError(
            f"a rollout of {horizon} model steps holds no window of num_hist={num_hist}; raise online.horizon"
        )
    n = horizon - num_hist + 1
    out = {
        k: torch.stack([rollout[k][:, i : i + num_hist + 1] for i in range(n)], 1).flatten(0, 1)
        for k in ("visual", "proprio", "state")
    }
    out["action"] = (
        torch.stack([actions[:, i : i + num_hist] for i in range(n)], 1).flatten(0, 1).detach().cpu().float()
    )
    return out


class OnlineLoss(nn.Module):
    """forward(batch) -> {"loss", "baseline", "expert_loss", "online_loss"} (the last is NaN while the
    buffer is empty); used by the Trainer in place of LossModule. Holds the buffer and a call counter
    and refreshes the buffer itself every `cfg.every` calls. `log` has one row per call (step,
    expert_loss, online_loss, buffer; plan_cost and final_distance on refresh steps)."""

    def __init__(self, model: WorldModel, data, cfg: OnlineConfig, seed: int = 0, world_size: int = 1):
        super().__init__()
        self.world_size = world_size  # the processes whose batches together make one step (share=growing's passes)
        cfg.check()
        if cfg.horizon < model.num_hist:
            raise ValueError(f"online.horizon={cfg.horizon} must be >= num_hist={model.num_hist} to give any window")
        self.model, self.data, self.cfg = model, data, cfg
        self.buffer = OnlineBuffer(cfg.buffer_size)
        self.calls, self.refreshes = 0, 0
        self.gen = torch.Generator().manual_seed(seed * 1_000_003 + 17)
        self.task = make_task(model.dims.task, model.task_settings)
        # Starts whose goal (goal_steps model steps on) lies in the same training episode; indices are the
        # train split's local frames (data.train.state / obs), built the way TrajectoryWindows builds them.
        lengths = [e - s for s, e in data.store.episode_bounds(data.train_eps)]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        local = [(int(offsets[i]), int(offsets[i + 1])) for i in range(len(lengths))]
        self.fs = model.cfg.data.frameskip
        self.starts = torch.as_tensor(window_starts(local, WindowSpec(cfg.goal_steps, 1, self.fs)))
        if len(self.starts) == 0:
            raise ValueError(f"no training episode is longer than online.goal_steps={cfg.goal_steps} model steps")
        # Random Wall layouts are per episode: plan and execute in the trajectory's own arena.
        self.layouts = (
            torch.from_numpy(data.store.read("layout", data.train_eps)) if "layout" in data.store.keys else None
        )
        lo, hi = action_bounds(model, self.task)
        gd = GDConfig(optimizer="adam", lr=cfg.lr, steps=cfg.plan_steps, noise=cfg.noise, horizon=cfg.horizon)
        self.planner = GDPlanner(gd, objective_for(model.dims.task, mode="last"), lo, hi)
        self.log: list[dict] = []

    def encode_states(self, state: np.ndarray, layout: np.ndarray | None) -> Latent:
        """Latents (B, 1, ...) of simulator states in their own arenas, rendered as the training frames were."""
        reset(self.task, state, layout)
        return encode_states(self.model, self.task, state)

    def refresh(self) -> dict:
        """Plan from `cfg.windows` training starts to their goals, execute, add the aligned windows."""
        pick = self.starts[torch.randint(0, len(self.starts), (self.cfg.windows,), generator=self.gen)]
        start = self.data.train.state[pick].numpy().astype(np.float64)
        goal = self.data.train.state[pick + self.cfg.goal_steps * self.fs].numpy().astype(np.float64)
        layout = self.layouts[pick].numpy().astype(np.float64) if self.layouts is not None else None
        was_training = self.model.training
        self.model.eval()  # no dropout while planning: the plan must be the model's best guess
        device = model_device(self.model)
        try:
            # full precision: the trainer's bf16 autocast is for its training step, not for the planner
            with torch.autocast(device.type, enabled=False):
                z_goal, z0 = self.encode_states(goal, layout), self.encode_states(start, layout)
                gens = torch.Generator(device=device).manual_seed(self.gen.initial_seed() + self.refreshes)
                actions = self.planner.plan(self.model, z0, z_goal, generator=gens)
                rollout = execute_plan(self.task, self.model, start, actions, layout)
        finally:
            self.model.train(was_training)
        self.buffer.add(build_windows(rollout, actions, self.model.num_hist))
        final_dist = self.task.distance(rollout["state"][:, -1].numpy().astype(np.float64), goal)
        self.refreshes += 1
        costs = self.planner.last_costs
        assert costs is not None  # set by the plan above
        return {"plan_cost": float(costs.mean()), "final_distance": float(np.mean(final_dist))}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        row = {"step": self.calls, **(self.refresh() if self.calls % self.cfg.every == 0 else {})}
        b = len(batch["action"])
        n_online = int(round(self.online_share(b) * b)) if len(self.buffer) else 0
        self.calls += 1
        n_online = min(n_online, b - 1)  # keep at least one expert window per step
        expert = self.model.loss({k: v[: b - n_online] for k, v in batch.items()})
        out = {
            "loss": expert["loss"],
            "baseline": expert["baseline"],
            "expert_loss": expert["loss"].detach(),
            "online_loss": torch.full((), float("nan"), device=batch["action"].device),
        }
        row["expert_loss"] = float(expert["loss"].detach())
        if n_online:
            device = batch["action"].device
            # Two forward passes rather than one concatenated batch: the expert batch may carry obs (no
            # token cache) or more frames (num_pred > 1) than the online windows' h + 1.
            online = self.model.loss({k: v.to(device) for k, v in self.buffer.sample(n_online, self.gen).items()})
            w = n_online / b  # sample-weighted: the plain loss of the mixed batch
            out["loss"] = (1 - w) * expert["loss"] + w * online["loss"]
            out["baseline"] = (1 - w) * expert["baseline"] + w * online["baseline"]
            out["online_loss"] = online["loss"].detach()
            row["online_loss"] = float(online["loss"].detach())
        self.log.append({**row, "buffer": len(self.buffer)})
        return out

    def online_share(self, batch_size: int) -> float:
        """The share of this step's batch drawn from the buffer (OnlineConfig.share)."""
        if self.cfg.share == "fixed":
            return self.cfg.online_fraction
        seen = self.calls * batch_size * self.world_size  # training windows before this step, all ranks
        passes = 1 + seen // max(1, len(self.data.train))
        return passes / (passes + 1)

    def describe(self) -> dict:
        """What config.json records: refreshes, buffer fill and the mean expert / online losses so far."""

        def mean(key: str) -> float | None:
            values = [r[key] for r in self.log if key in r]
            return round(float(np.mean(values)), 6) if values else None

        return {
            "online": {
                "refreshes": self.refreshes,
                "buffer_windows": len(self.buffer),
                "windows_added": self.buffer.added,
                "expert_loss": mean("expert_loss"),
                "online_loss": mean("online_loss"),
                "plan_cost": mean("plan_cost"),
                "final_distance": mean("final_distance"),
            }
        }

    def write_log(self, path) -> None:
        """online_metrics.csv: one row per training step (plan_cost / final_distance only on refreshes)."""
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=LOG_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(self.log)
        atomic_write(Path(path), lambda p: p.write_text(text.getvalue()))
