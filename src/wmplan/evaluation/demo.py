"""The end-to-end Wall job behind `make demo`: collect -> train -> plan in the simulator -> report.

Everything lands under `out` (default results/demo), which the demo rewrites on each run:
data/ (the dataset), runs/wall/ (the model), eval/<planner>[_mpc]/ (summaries) and report.md.

Example:
    >>> report = run_demo("results/demo", episodes=20)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

from wmplan.config import apply_overrides, preset
from wmplan.data.collect import collect
from wmplan.evaluation.episodes import EvalConfig, evaluate
from wmplan.evaluation.report import success_table
from wmplan.training.trainer import train

PLANNERS = ("gd", "adam", "cem")


def run_demo(
    out: str | Path = "results/demo", *, episodes: int = 20, seed: int = 0, progress: bool = True,
    preset_name: str = "small", collect_episodes: int = 1920, train_overrides: dict | None = None,
) -> str:
    """Run the whole job and return the report's Markdown (also written to out/report.md). The keyword
    arguments after `progress` shrink the job for tests."""
    out = Path(out)
    start = time.perf_counter()
    store = collect("wall", out / "data", episodes=collect_episodes, seed=seed, overwrite=True, progress=progress)
    run = out / "runs" / "wall"
    shutil.rmtree(run, ignore_errors=True)  # the demo owns its folder: a fresh model each time
    cfg = apply_overrides(preset(preset_name, "wall"), {"data.path": str(out / "data"), "train.seed": seed, **(train_overrides or {})})
    t0 = time.perf_counter()
    train(cfg, run, progress=progress)
    train_minutes = (time.perf_counter() - t0) / 60
    results = {}
    for mpc in (False, True):
        for planner in PLANNERS:
            name = f"{planner}{'_mpc' if mpc else ''}"
            results[(planner, mpc)] = evaluate(run, EvalConfig(planner=planner, mpc=mpc, episodes=episodes), out / "eval" / name, progress=progress)
    report = _report(out, store.summary(), run, results, episodes, train_minutes, (time.perf_counter() - start) / 60, preset_name)
    (out / "report.md").write_text(report)
    return report


def _report(out: Path, data: dict, run: Path, results: dict, episodes: int, train_minutes: float, total_minutes: float, run_preset: str) -> str:
    metrics = list(csv.DictReader((run / "metrics.csv").open()))[-1]
    encoder = json.loads((run / "encoder.json").read_text())
    return f"""# wmplan demo: Wall, pixel (`conv`) world model, CPU scale

Total time {total_minutes:.1f} min. Dataset: {data['episodes']} random walks, {data['frames']} frames.
World model: `{run_preset}` preset, conv keypoint encoder (latent/true distance Spearman
{encoder['latent_distance_spearman']:.4f}), trained in {train_minutes:.1f} min; final validation loss
{float(metrics['val_loss']):.2e} against {float(metrics['val_baseline_loss']):.2e} for copying the last frame.

## Planning success in the simulator ({episodes} start/goal pairs, the same for every planner)

{success_table(results, 'wall')}

Seconds per plan: wall-clock of one planning call for all {episodes} episodes at once, simulator excluded.
Success is the task's criterion (distance < 4.5 px) at the end of the budget; "reached" counts an episode that
touched the goal at any env step. The paper's column is DINO-WM with DINOv2 on 50 episodes, for direction only.

## Commands

```
wmplan collect --env wall --episodes {data['episodes']} --out {out}/data --overwrite
wmplan train --data {out}/data --out {run} --preset {run_preset}
wmplan eval --run {run} --planner gd|adam|cem [--mpc] --episodes {episodes} --out {out}/eval/NAME
```
"""
