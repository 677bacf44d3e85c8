"""The planning cost landscape over actions (the paper's Figure 2): a 2-D slice through a GD optimum.

One planning problem (start/goal pair `episode` of the task's `sample_start_goal` with `seed`), the
same for every run. The FIRST run's model finds a GD optimum a* (Adam, lr 0.3, 300 steps, no noise:
deterministic); a* is flattened to (H * fs * A,). Two random Gaussian directions d1, d2 (seeded), each
normalised to unit norm (plain random directions: no 'filter normalisation', there are no filters
in an action sequence). The slice is c(a* + alpha d1 + beta d2) for alpha, beta on a grid x grid
lattice in [-span, span] * ||a*||, i.e. relative to the optimum's own size, so span=1 reaches plans
as far from a* as a* is from the zero (mean) action. Each run's model scores the SAME actions
(carried between runs in env units, as runs may have different normalisers) from its own encoding
of the same start and goal. Per run:
  roughness   = mean |second difference| of the cost along alpha and along beta (averaged), divided
                by the cost range (max - min) of the slice: scale-free, lower = smoother;
  basin_width = fraction of grid points with cost < min + 0.1 * (max - min): higher = wider basin.

Example:
    >>> result = landscape(["runs/wall", "runs/wall-adv"], Path("results/landscape"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from wmplan.closed_loop import SimulatedEpisodes, model_device
from wmplan.defaults import GD_LR, GD_STEPS, PLAN_HORIZON
from wmplan.envs import make_task
from wmplan.evaluation.gap import load_runs
from wmplan.models.world_model import WorldModel, resolve_device
from wmplan.planning import GDConfig, GDPlanner, objective_for
from wmplan.writing import claim_folder

#: The open-loop GD planner of PAPER.md without noise, so the optimum is a function of the seed.
PLANNER: dict[str, Any] = dict(optimizer="adam", lr=GD_LR["open loop"], steps=GD_STEPS["open loop"], noise=0.0)


def check_grid(grid: int) -> None:
    """A slice's points per axis: odd, so that its centre is the optimum, and at least 3."""
    if grid < 3 or grid % 2 == 0:
        raise ValueError(f"grid must be odd and >= 3 (its centre is the optimum), got {grid}")


def grid_coordinates(grid: int, span: float) -> np.ndarray:
    """(grid,) coordinates in [-span, span] whose centre is exactly 0 (so the centre is a* itself)."""
    check_grid(grid)
    half = grid // 2
    return np.arange(-half, half + 1) * (span / half)


@torch.no_grad()
def slice_costs(model: WorldModel, z0, goal, actions: torch.Tensor, horizon: int, chunk: int = 256) -> torch.Tensor:
    """Planning costs (N,) of N action sequences (N, H, fs * A) from one start z0 (1, 1, ...) to one
    goal (1, 1, ...), in chunks of `chunk` rollouts to bound memory."""
    objective = objective_for(model.dims.task)
    costs = []
    for i in range(0, len(actions), chunk):
        a = actions[i : i + chunk]
        z = type(z0)(z0.visual.expand(len(a), *z0.visual.shape[1:]), z0.proprio.expand(len(a), *z0.proprio.shape[1:]))
        costs.append(objective.cost(model.rollout(z, a), goal, horizon=horizon))
    return torch.cat(costs)


def surface_stats(cost: np.ndarray) -> dict[str, float]:
    """roughness and basin_width (see the module docstring) of a (grid, grid) cost slice."""
    lo, hi = float(cost.min()), float(cost.max())
    scale = hi - lo if hi > lo else 1.0
    d2a = np.abs(np.diff(cost, n=2, axis=0)).mean()
    d2b = np.abs(np.diff(cost, n=2, axis=1)).mean()
    return {
        "roughness": float((d2a + d2b) / 2 / scale),
        "basin_width": float((cost < lo + 0.1 * (hi - lo)).mean()) if hi > lo else 1.0,
        "min_cost": lo,
        "max_cost": hi,
    }


def slice_points(flat: torch.Tensor, coords: np.ndarray, seed: int) -> torch.Tensor:
    """The slice's plans a* + alpha d1 + beta d2 (grid^2, H * fs * A), alpha (rows) and beta over
    `coords`: the directions are drawn here, from `seed`, so that every run is scored on the same plans."""
    gen = torch.Generator().manual_seed(seed)
    d1, d2 = (v / v.norm() for v in torch.randn(2, flat.numel(), generator=gen, dtype=torch.float64))
    alpha, beta = np.meshgrid(coords, coords, indexing="ij")
    return flat + torch.as_tensor(alpha.reshape(-1, 1)) * d1 + torch.as_tensor(beta.reshape(-1, 1)) * d2


def _actions_for(model: WorldModel, first: WorldModel, points: torch.Tensor, env_points: np.ndarray) -> torch.Tensor:
    """The slice's plans in `model`'s own normalised actions. Runs sharing the first run's action
    normaliser and frameskip (finetuned children do) take its normalised actions as they are: no float
    round trip through env units, so the centre is a* bit for bit."""
    same = all(
        np.array_equal(getattr(model.normalizer, k), getattr(first.normalizer, k))
        for k in ("action_mean", "action_std")
    )
    if same and model.cfg.data.frameskip == first.cfg.data.frameskip:
        return points.to(model_device(model))
    return model.model_actions(env_points)


def landscape(
    runs: list[str | Path],
    out: Path,
    *,
    grid: int = 41,
    span: float = 1.0,
    seed: int = 0,
    episode: int = 0,
    horizon: int = PLAN_HORIZON,
    progress: bool = True,
    device: str | None = None,
    allow_unfinished: bool = False,
) -> dict[str, Any]:
    """Cost slices of each run around the first run's GD optimum; writes out/landscape.json and
    out/landscape.png. Returns {label: {cost (grid x grid, [i][j] = alpha_i, beta_j), centre_cost,
    roughness, basin_width, min_cost, max_cost, run_fingerprint, run_epoch, run_epochs, run_finished},
    "settings": {..., planner_cost (the first run's cost at a*, which its centre_cost reproduces)}}. An
    unfinished run is refused unless `allow_unfinished`."""
    coords = grid_coordinates(grid, span)  # checks the grid before any work
    models, labels, records = load_runs(runs, resolve_device(device), allow_unfinished)
    lock = claim_folder(out, "the landscape results")  # noqa: F841 (fail before any work; held until landscape returns)
    first = models[0]
    task = make_task(first.dims.task, first.task_settings)
    start, goal = task.sample_start_goal(np.random.default_rng(seed), episode + 1)
    start, goal = start[episode : episode + 1], goal[episode : episode + 1]
    sim = {id(m): SimulatedEpisodes(task, m, start, goal) for m in models}
    encoded = {id(m): (sim[id(m)].encode(start), sim[id(m)].encode(goal)) for m in models}
    planner = GDPlanner(GDConfig(**PLANNER, horizon=horizon), objective_for(first.dims.task))
    z0, zg = encoded[id(first)]
    a_star = planner.plan(first, z0, zg, generator=torch.Generator(device=model_device(first)).manual_seed(seed))
    assert planner.last_costs is not None  # set by the plan above
    planner_cost = float(planner.last_costs[0])
    env_star = first.env_actions(a_star)[0]  # (H * fs, A)
    flat = a_star.flatten().cpu().double()
    coords = coords * float(flat.norm())
    points = slice_points(flat, coords, seed).float().reshape(-1, *a_star.shape[1:])  # the first run's actions
    env_points = first.env_actions(points)
    result: dict[str, Any] = {}
    for label, model, record in tqdm(
        list(zip(labels, models, records)), desc="landscape", unit="model", disable=not progress
    ):
        acts = _actions_for(model, first, points, env_points)
        z0, zg = encoded[id(model)]
        cost = slice_costs(model, z0, zg, acts, horizon).cpu().double().numpy().reshape(grid, grid)
        centre = float(cost[grid // 2, grid // 2])
        result[label] = {"cost": cost.tolist(), "centre_cost": centre, **surface_stats(cost), **record}
    result["settings"] = {
        "runs": [str(r) for r in runs],
        "task": first.dims.task,
        "seed": seed,
        "episode": episode,
        "grid": grid,
        "span": span,
        "horizon": horizon,
        "planner_cost": planner_cost,
        "planner": {**PLANNER, "horizon": horizon, "objective": "last frame", "model": labels[0]},
        "start": start[0].tolist(),
        "goal": goal[0].tolist(),
        "optimum_env_actions": env_star.tolist(),
        "optimum_norm": float(flat.norm()),
        "coordinates": coords.tolist(),
        "directions": "two seeded Gaussian directions in the first run's normalised action space, each of unit norm (no filter normalisation)",
        "axes": "alpha, beta in [-span, span] * ||a*||",
        "roughness": "mean |2nd difference| along both axes / (max - min cost); lower = smoother",
        "basin_width": "fraction of grid points with cost < min + 0.1 (max - min)",
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "landscape.json").write_text(json.dumps(result, indent=2))
    plot_landscape(result, labels, out / "landscape.png")
    return result


def plot_landscape(result: dict[str, Any], labels: list[str], path: Path) -> None:
    """Filled contours of log10 cost, one panel per run, axes in units of ||a*||, the optimum marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["settings"]
    c = np.asarray(s["coordinates"]) / max(s["optimum_norm"], 1e-12)
    fig, axes = plt.subplots(1, len(labels), figsize=(3.6 * len(labels), 3.4), squeeze=False)
    for ax, label in zip(axes[0], labels):
        cost = np.log10(np.maximum(np.asarray(result[label]["cost"]), 1e-12))
        im = ax.contourf(c, c, cost.T, levels=20)  # .T: rows of `cost` are alpha, contourf wants rows = y
        ax.plot([0], [0], "r+", markersize=12, markeredgewidth=2, label="GD optimum a*")
        ax.set_title(
            f"{label}\nroughness {result[label]['roughness']:.3f}, basin {result[label]['basin_width']:.2f}", fontsize=9
        )
        ax.set_xlabel("alpha / ||a*||")
        ax.set_ylabel("beta / ||a*||")
        fig.colorbar(im, ax=ax, label="log10 planning cost")
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"cost landscape, {s['task']} (2-D random slice through a*)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
