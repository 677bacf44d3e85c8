"""The train-test gap (the paper's Figure 4): a model's open-loop error on expert vs planner trajectories.

For each run, the open-loop latent prediction error over H model steps:
  expert  - on windows of held-out expert trajectories (the validation episodes of the FIRST run's
            dataset, split exactly as the trainer splits it);
  planner - from the same start states, along the actions a GD planner chose to reach the expert
            window's state H model steps later, executed in the real simulator.
error = mean over the H predicted steps (and over windows) of the `WorldModel.latent_mse` squared
error between the rolled-out latents and the encoded true frames. Every run is scored on the SAME
windows and the SAME planner trajectories, planned with the FIRST run's model: the comparison
between runs is paired (a run's planner error is then "error where run 1's planner goes"; with run 1
the base model, that is exactly where a finetuned model is meant to have improved).

Example:
    >>> result = gap(["runs/wall", "runs/wall-adv"], Path("results/gap"))     # doctest: +SKIP
    >>> result["wall-adv"]["ratio"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wmplan.closed_loop import encode_frames, execute, model_device
from wmplan.data.store import open_run_dataset
from wmplan.data.windows import split_episodes
from wmplan.defaults import GD_LR, GD_NOISE, GD_STEPS, PLAN_HORIZON
from wmplan.envs import make_task
from wmplan.models.run_folder import RunFolder
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.planning import GDConfig, GDPlanner, objective_for
from wmplan.writing import claim_folder

#: The online-world-modeling planner of PAPER.md (horizon set per call).
PLANNER: dict[str, Any] = dict(
    optimizer="adam", lr=GD_LR["open loop"], steps=GD_STEPS["mpc"], noise=GD_NOISE
)  # online finetuning's


def load_runs(
    runs: list[str | Path], device: str | torch.device = "cpu", allow_unfinished: bool = False
) -> tuple[list[WorldModel], list[str], list[dict[str, Any]]]:
    """Models (eval mode) of the runs, unique labels (folder names, deduplicated with a suffix) and what
    the results record of each run (RunState.record); a ValueError if the runs are not all of one task,
    an UnfinishedRunError for an unfinished run unless `allow_unfinished`."""
    if not runs:
        raise ValueError("give at least one run")
    models = [WorldModel.load(r, device=device).eval() for r in runs]
    records = [m.run_folder.require_finished(allow_unfinished).record() for m in models if m.run_folder]
    tasks = {m.dims.task for m in models}
    if len(tasks) > 1:
        raise ValueError(
            f"the runs are models of different tasks {sorted(tasks)}: "
            + ", ".join(f"{r} ({m.dims.task})" for r, m in zip(runs, models))
        )
    labels: list[str] = []
    seen: dict[str, int] = {}
    for r in runs:  # the same folder name twice (e.g. one run given twice) -> "name", "name (2)"
        name = Path(r).resolve().name
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return models, labels, records


@torch.no_grad()
def open_loop_error(model: WorldModel, frames: dict[str, np.ndarray], env_actions: np.ndarray) -> np.ndarray:
    """Per-step errors (B, H): roll out from the encoded frame 0 along env actions (B, H * fs, A) and
    compare with the encoded true frames 1..H. frames: obs (B, 1+H, ...), state, proprio."""
    true = encode_frames(model, frames["obs"], frames["state"], frames["proprio"])
    pred = model.rollout(true.frames(0), model.model_actions(env_actions))
    diff = (pred.flat()[:, 1:] - true.flat()[:, 1:]).pow(2).mean(-1)  # latent_mse per window and step
    return diff.cpu().numpy()


def expert_windows(
    model: WorldModel, run: str | Path, episodes: int, horizon: int, seed: int, data: str | Path | None = None
) -> dict[str, np.ndarray]:
    """`episodes` windows of the run's validation episodes, chosen once by a seeded rng: obs
    (B, 1+H, ...), state (B, 1+H, S), proprio (B, 1+H, P) at frames t, t+fs, .., t+H*fs; env actions
    (B, H*fs, A) from t on; layout (B, 2) where the dataset has one (Wall's random layouts). `data`:
    where the run's dataset is now, if it moved."""
    store = open_run_dataset(run, RunFolder(run).dataset(), model.dims.task, data)
    _, val = split_episodes(store.n_episodes, model.cfg.data.val_fraction, model.cfg.data.split_seed)
    fs = model.cfg.data.frameskip
    span = horizon * fs
    starts = np.concatenate(
        [np.arange(s, e - span) for s, e in store.episode_bounds(val) if e - s > span] or [np.zeros(0, int)]
    )
    if len(starts) == 0:
        raise ValueError(
            f"no validation episode of {store.path} is longer than {span} frames (H={horizon}, frameskip {fs})"
        )
    chosen = np.sort(np.random.default_rng(seed).choice(starts, size=min(episodes, len(starts)), replace=False))
    keys = ["obs", "state", "proprio"] + (["layout"] if "layout" in store.keys else [])
    arrays: dict[str, Any] = {k: store.group[f"data/{k}"] for k in keys + ["action"]}
    out = {k: np.stack([arrays[k][t : t + span + 1 : fs] for t in chosen]) for k in ("obs", "state", "proprio")}
    out["action"] = np.stack([arrays["action"][t : t + span] for t in chosen])
    if "layout" in keys:
        out["layout"] = np.stack([arrays["layout"][t] for t in chosen])
    out["start_index"] = chosen
    return out


def planner_trajectories(
    model: WorldModel, windows: dict[str, np.ndarray], horizon: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Plan from each window's start to its frame H with `model`, execute in the simulator; returns
    the true frames (obs/state/proprio (B, 1+H, ...), frame 0 = the window's) and env actions (B, H*fs, A)."""
    task = make_task(model.dims.task, model.task_settings)
    z = encode_frames(model, windows["obs"], windows["state"], windows["proprio"])
    planner = GDPlanner(GDConfig(**PLANNER, horizon=horizon), objective_for(model.dims.task))
    gens = [torch.Generator(device=model_device(model)).manual_seed(seed * 1_000_003 + i) for i in range(len(z.visual))]
    actions = planner.plan(model, z.frames(0), z.frames(-1), generator=gens)
    start = windows["state"][:, 0].astype(np.float64)
    frames = execute(task, model, start, actions, windows.get("layout"))
    for k in ("obs", "state", "proprio"):  # frame 0 is the window's own, as stored in the dataset
        frames[k][:, 0] = windows[k][:, 0]
    return frames, model.env_actions(actions)


def gap(
    runs: list[str | Path],
    out: Path,
    *,
    episodes: int = 50,
    horizon: int = PLAN_HORIZON,
    seed: int = 0,
    progress: bool = True,
    device: str | None = None,
    data: str | Path | None = None,
    allow_unfinished: bool = False,
) -> dict[str, Any]:
    """Expert vs planner open-loop error of each run; writes out/gap.json and out/gap.png. `data`: the
    first run's dataset, if it moved. Returns {label: {expert_error, planner_error, ratio,
    expert_per_step, planner_per_step, run_fingerprint, run_epoch, run_epochs, run_finished}, "settings":
    {...}}. An unfinished run is refused unless `allow_unfinished`."""
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    models, labels, records = load_runs(runs, resolve_device(device), allow_unfinished)
    lock = claim_folder(out, "the gap results")  # noqa: F841 (fail before any work; held until gap returns)
    windows = expert_windows(models[0], runs[0], episodes, horizon, seed, data)
    bar = tqdm(total=1 + len(models), desc="gap: plan, then each model's errors", unit="step", disable=not progress)
    executed, planned = planner_trajectories(models[0], windows, horizon, seed)
    bar.update()
    result: dict[str, Any] = {}
    for label, model, record in zip(labels, models, records):
        expert = open_loop_error(model, windows, windows["action"])
        planner = open_loop_error(model, executed, planned)
        e, p = float(expert.mean()), float(planner.mean())
        result[label] = {
            "expert_error": e,
            "planner_error": p,
            "ratio": p / e if e > 0 else float("inf"),
            "expert_per_step": expert.mean(0).tolist(),
            "planner_per_step": planner.mean(0).tolist(),
            **record,
        }
        bar.update()
    bar.close()
    result["settings"] = {
        "runs": [str(r) for r in runs],
        "task": models[0].dims.task,
        "windows": int(len(windows["state"])),
        "horizon": horizon,
        "frameskip": models[0].cfg.data.frameskip,
        "seed": seed,
        "planner": {**PLANNER, "horizon": horizon, "objective": "last frame", "model": labels[0]},
        "window_source": "validation episodes of the first run's dataset (trainer's split)",
        "window_start_frames": windows["start_index"].tolist(),
        "error": "mean over windows and the H predicted steps of latent_mse(rollout, encoded true frames)",
        "paired": "every run scored on the same expert windows and the same planner trajectories (first run's planner)",
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gap.json").write_text(json.dumps(result, indent=2))
    plot_gap(result, labels, out / "gap.png")
    return result


def plot_gap(result: dict[str, Any], labels: list[str], path: Path) -> None:
    """Grouped bars: expert vs planner error per run, log-scale y (errors span orders of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.8, 1.8 + 1.4 * len(labels)), 3.6))
    for offset, key, name in (
        (-0.2, "expert_error", "expert trajectories"),
        (0.2, "planner_error", "planner trajectories"),
    ):
        ax.bar(x + offset, [result[label][key] for label in labels], width=0.4, label=name)
    ax.set_xticks(x, labels, rotation=15)
    ax.set_yscale("log")
    values = [result[label][k] for label in labels for k in ("expert_error", "planner_error") if result[label][k] > 0]
    if values:  # a log axis's default bottom can hide the shorter bars' length
        ax.set_ylim(bottom=min(values) / 4)
    s = result["settings"]
    ax.set_ylabel(f"open-loop latent MSE ({s['horizon']} model steps)")
    ax.set_title(f"train-test gap, {s['task']} ({s['windows']} windows)")
    ax.legend(fontsize=8, framealpha=0.7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
