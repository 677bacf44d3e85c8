"""Every planner against CEM at CEM's planning time, with MPC, on the same pairs of each task.

    python benchmarks/equal_time.py --run wall=results/demo/runs/conv/base \
        --run pointmaze=results/demo_pointmaze/runs/conv/base --run pusht=results/demo_pusht/runs/conv/base \
        [--episodes 50] [--planners gd,adam,cem_best,hybrid,multistart] [--json OUT] [--plot OUT.png] [--out DIR]

For each model: CEM + MPC at the paper's budget sets the time, its seconds per planning call. Each other
planner's budget knob (Adam / GD / multistart steps, hybrid's Adam steps after its CEM iterations) is
then sized to that time from timed planning calls on the same batch of episodes (after a warm-up call, a
line through two calls at the knob's default and two at half of it), and the planner plans every episode
with MPC at that budget; cem_best runs CEM's own budget (keeping its best sample costs no rollouts). The
budgets come from this machine's timings, so the printed time over CEM's shows how equal the times came
out; the success of each planner follows from its budget alone (a fixed budget, not a deadline), so a
rerun with the printed budgets gives the same cells. Printed: each planner's budget, its measured seconds
per call over CEM's, its success against CEM's on the same pairs (McNemar's exact test), and last, per
planner, on how many tasks it beats CEM. Target (the speed issue): a planner beyond the paper's three
higher than CEM on at least two of Wall, PointMaze and PushT. The plot is success against planning
seconds, one panel per task.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from wmplan.evaluation.episodes import evaluate
from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.paired import success_difference
from wmplan.evaluation.report import plot_efficiency
from wmplan.overrides import apply_dataclass_overrides

KNOBS = {"gd": "steps", "adam": "steps", "multistart": "steps", "hybrid": "steps", "cem_best": "iterations"}
"""Each planner's budget knob (planner.<knob>): the count that its planning time grows with."""
BEYOND_PAPER = ("cem_best", "hybrid", "multistart")


def mpc_cell(run: str, planner: str, episodes: int, out: Path, settings: dict, replans: int | None = None) -> dict:
    cfg = EvalConfig(planner=planner, mpc=True, episodes=episodes)
    apply_dataclass_overrides(cfg.settings, settings, "planner")
    if replans is not None:
        cfg.mpc_settings.replans = replans
    return dict(evaluate(run, cfg, out, progress=False, device="cpu"))


def knob_value(summary: dict, knob: str) -> int:
    """The budget a planner ran with (the hybrid keeps its Adam settings under "gd")."""
    config = summary["planner_config"]
    return int(config[knob] if knob in config else config["gd"][knob])


def equal_time_budget(run: str, planner: str, episodes: int, target: float, out: Path) -> tuple[int, list]:
    """The knob value whose planning call takes `target` seconds on this batch: a line through two timed
    calls (the default budget and half of it); returns it with the (budget, seconds) measured."""
    knob = KNOBS[planner]
    # a first call pays one-off costs (allocations, lazy set-up) that would inflate the cost per step
    mpc_cell(run, planner, episodes, out / "warm_up", {knob: 1}, replans=1)
    first = mpc_cell(run, planner, episodes, out / "default", {}, replans=2)
    k0, t0 = knob_value(first, knob), first["seconds_per_plan"]
    k1 = max(1, k0 // 2)
    second = mpc_cell(run, planner, episodes, out / "half", {knob: k1}, replans=2)
    t1 = second["seconds_per_plan"]
    slope = (t0 - t1) / (k0 - k1) if k0 != k1 and t0 > t1 else t0 / k0
    budget = max(1, round(k0 + (target - t0) / slope))
    return budget, [(k0, t0), (k1, t1)]


def compare(task: str, run: str, planners: list[str], episodes: int, out: Path) -> dict:
    cem = mpc_cell(run, "cem", episodes, out / "cem", {})
    target = cem["seconds_per_plan"]
    print(f"{task}: CEM + MPC {target:.2f} s per call, success {cem['success_rate']:.0%}", flush=True)
    cells = {"cem": cem}
    rows: dict = {"cem": {"budget": None, "seconds_per_plan": target, "success": cem["success_rate"]}}
    for planner in planners:
        if planner == "cem_best":  # CEM's own budget: keeping the best sample costs no rollouts
            budget, calibration = knob_value(cem, "iterations"), []
        else:
            budget, calibration = equal_time_budget(run, planner, episodes, target, out / f"{planner}_calibration")
        summary = mpc_cell(run, planner, episodes, out / planner, {KNOBS[planner]: budget})
        cells[planner] = summary
        effect = success_difference(
            np.asarray(summary["episode_success"], float), np.asarray(cem["episode_success"], float)
        )
        rows[planner] = {
            "knob": KNOBS[planner],
            "budget": budget,
            "calibration": calibration,
            "seconds_per_plan": summary["seconds_per_plan"],
            "time_over_cem": summary["seconds_per_plan"] / target,
            "success": summary["success_rate"],
            "vs_cem": {"points": 100 * effect.estimate, "ci95": [100 * v for v in effect.ci95], "p": effect.p_value},
        }
        print(
            f"  {planner:<10} {KNOBS[planner]} {budget:>5}  time/CEM {rows[planner]['time_over_cem']:.2f}  "
            f"success {summary['success_rate']:.0%}  vs CEM {effect.describe(100, ' points')}",
            flush=True,
        )
    return {"run": run, "episodes": episodes, "planners": rows, "cells": cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, help="TASK=RUN_FOLDER (repeat per task)")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--planners", default="gd,adam,cem_best,hybrid,multistart")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--plot", help="write success against planning seconds to this PNG")
    parser.add_argument("--out", help="keep every eval folder here (default: a temporary folder)")
    args = parser.parse_args()
    planners = [p for p in args.planners.split(",") if p]
    unknown = [p for p in planners if p not in KNOBS]
    if unknown:
        raise SystemExit(f"unknown planners {unknown}; choose from {', '.join(KNOBS)}")
    runs = dict(item.split("=", 1) for item in args.run)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        found = {task: compare(task, run, planners, args.episodes, root / task) for task, run in runs.items()}
        if args.plot:
            grids = {t: {("base", p, True, False): s for p, s in r["cells"].items()} for t, r in found.items()}
            plot_efficiency(grids, Path(args.plot), "equal planning time", titles={t: f"{t}, MPC" for t in grids})
    result = {
        "threads": torch.get_num_threads(),
        "tasks": {t: {k: v for k, v in r.items() if k != "cells"} for t, r in found.items()},
    }
    print("\nTasks where the planner beats CEM + MPC at CEM's time (point estimate; p < 0.05):")
    for planner in planners:
        above = [t for t, r in found.items() if r["planners"][planner]["vs_cem"]["points"] > 0]
        significant = [t for t in above if found[t]["planners"][planner]["vs_cem"]["p"] < 0.05]
        result[f"tasks_above_cem_{planner}"] = above
        mark = " (beyond the paper; target: 2 tasks)" if planner in BEYOND_PAPER else ""
        print(f"  {planner:<10} {len(above)} of {len(found)} {above}; significant: {significant}{mark}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
