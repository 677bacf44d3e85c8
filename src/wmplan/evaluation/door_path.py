"""The cost a Wall model's planner sees along a path through the door: does it rise before it falls?

On a detour pair (the straight line from start to goal misses the door: `WallTask.pair_kinds`) a planner
must first move along the wall, away from the goal or no closer to it. A cost that measures true
distance rises or stalls there, so the wall in front of the goal is a local minimum for every local
planner; a cost that saturates (no overlap between the dot images, as DINOv2 patch distances behave)
stays flat and lets replanning wander. This measures, for each model, the planner's objective between
the latent of each point of the way out of that minimum (the wall's face nearest the goal -> along the
face to the door -> through it -> goal) and the goal's latent, beside the true distance, on the detour
pairs of the evaluation pairs: how far each cost rises before it falls.

Example:
    >>> result = door_path_costs({"conv": "runs/wall/conv/base"}, "results/door_path")   # doctest: +SKIP
    >>> result["conv"]["rises"]   # share of detour pairs whose latent cost rises before it falls  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmplan.closed_loop import encode_states
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.envs.wall import WallTask
from wmplan.models.world_model import Latent, WorldModel
from wmplan.planning.objective import objective_for
from wmplan.writing import atomic_write

RISE = 0.01
"""A cost 'rises' where it exceeds its start value by more than this share of the start value."""


def door_paths(task, start: np.ndarray, goal: np.ndarray, points: int) -> np.ndarray:
    """(N, points, 2): for each pair, `points` positions evenly spaced along the path a planner stuck at the
    wall must take: from the point of the wall's face on the start's side nearest the goal (where a cost
    that measures distance has its local minimum) along the face to the door's centre row, through the
    door, then straight to the goal; 2 dot stds clear of the wall's faces and the frame."""
    c = task.config
    pad = 2 * c.dot_std
    left_face, right_face = c.wall_x - c.wall_half_width - pad, c.wall_x + c.wall_half_width + pad
    low, high = c.border_line + pad, c.image_size - 1 - c.border_line - pad
    paths = []
    for s, g in zip(start, goal):
        near, far = (left_face, right_face) if s[0] < c.wall_x else (right_face, left_face)
        corners = np.array([[near, np.clip(g[1], low, high)], [near, c.door_y], [far, c.door_y], g], float)
        lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
        along = np.concatenate([[0.0], np.cumsum(lengths)])
        where = np.linspace(0.0, along[-1], points)
        paths.append(np.stack([np.interp(where, along, corners[:, k]) for k in range(2)], axis=1))
    return np.stack(paths)


@torch.no_grad()
def path_costs(model: WorldModel, task, paths: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(N, points): the model's planning objective ('last' mode, the task's alpha) between each path
    point's latent and its pair's goal latent."""
    n, points, _ = paths.shape
    z = encode_states(model, task, paths.reshape(n * points, 2))
    g = encode_states(model, task, np.repeat(goal, points, axis=0))
    two_frames = Latent.cat([z, z])  # the objective scores the last frame after one frame of context
    cost = objective_for(model.dims.task, mode="last").cost(two_frames, g, horizon=1)
    return cost.float().cpu().numpy().reshape(n, points)


def shape_of(costs: np.ndarray) -> dict[str, float]:
    """How costs (N, points) along the paths behave: the share of paths that rise more than RISE above
    their start before reaching their minimum, the mean largest rise (a share of the start value), and
    the mean normalised curve (each path's costs over its start cost)."""
    start = costs[:, :1]
    before_min = [c[: int(np.argmin(c)) + 1] for c in costs]
    rise = np.array([(b.max() - s[0]) / max(s[0], 1e-12) for b, s in zip(before_min, start)])
    return {
        "rises": float(np.mean(rise > RISE)),
        "mean_largest_rise": float(rise.mean()),
        "mean_curve": (costs / np.maximum(start, 1e-12)).mean(axis=0).tolist(),
    }


def door_path_costs(
    runs: dict[str, str | Path], out: str | Path | None = None, *, episodes: int = 50, points: int = 41
) -> dict[str, Any]:
    """For each named Wall run, the shape of its latent cost along the door paths of the detour pairs
    among `episodes` evaluation pairs (seed REPORT_PAIR_SEED), beside the true distance; writes
    door_path.json and door_path.png into `out` (when given)."""
    task = WallTask()
    start, goal = task.sample_start_goal(np.random.default_rng(REPORT_PAIR_SEED), episodes)
    detour = task.pair_kinds(start, goal) == "detour"
    result: dict[str, Any] = {"pairs": int(detour.sum()), "pair_seed": REPORT_PAIR_SEED}
    if not detour.any():  # a handful of pairs may all be direct: nothing to trace
        return result
    paths = door_paths(task, start[detour], goal[detour], points)
    result["true distance"] = shape_of(np.linalg.norm(paths - goal[detour][:, None], axis=2))
    for name, run in runs.items():
        model = WorldModel.load(run, device=torch.device("cpu"))
        model.eval()
        result[name] = shape_of(path_costs(model, task, paths, goal[detour]))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, indent=2)
        atomic_write(out / "door_path.json", lambda tmp: tmp.write_text(text))
        _plot(result, out / "door_path.png")
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, shape in result.items():
        if isinstance(shape, dict):
            curve = shape["mean_curve"]
            ax.plot(np.linspace(0, 1, len(curve)), curve, label=f"{name} (rises on {100 * shape['rises']:.0f}%)")
    ax.set_xlabel("share of the path: wall face nearest the goal -> door -> goal")
    ax.set_ylabel("cost / cost at the start (mean over detour pairs)")
    ax.set_title(f"Wall: cost along a path through the door, {result['pairs']} detour pairs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
