"""Does bf16 planning change a result? A demo's eval cells planned again with planner.precision=bf16 on the
same pairs, each compared with the demo's own (fp32) cell, paired: success difference (McNemar's exact test,
Tango's score interval), p-values Holm-adjusted over the cells compared, and the mean final distances.

    python scripts/compare_precision.py --demo results/wall50 --encoder conv --cells cem,cem_mpc,cem_mpc_paper \\
        --out results/precision_wall [--json docs/results/speed/precision_wall.json]

One cell is also planned again in fp32 first (`--check`, default the first model's first cell): it must
reproduce the demo's cell episode for episode, or the comparison would mix precision with code changes.
Cells are resumable: a finished bf16 cell in --out is read, not planned again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from wmplan.evaluation.episodes import evaluate
from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.multiple import holm
from wmplan.evaluation.paired import success_difference
from wmplan.overrides import apply_dataclass_overrides

MODELS = ("base", "online", "adversarial")


def cell_config(summary: dict, precision: str) -> EvalConfig:
    """The eval config that made a demo cell (its summary), with the planner's precision set."""
    planner = summary["planner"]
    cfg = EvalConfig(
        planner=planner,
        mpc=summary["mpc"],
        episodes=summary["episodes"],
        seed=summary["seed"],
        protocol=summary.get("protocol", "fixed"),
    )
    settings = {k: v for k, v in summary["planner_config"].items() if hasattr(cfg.settings, k)}
    apply_dataclass_overrides(cfg.settings, {**settings, "precision": precision}, "planner")
    if summary["mpc"]:
        mpc = {"execute": summary["mpc_config"]["execute"]}
        if cfg.protocol == "fixed":
            mpc["replans"] = summary["mpc_config"]["replans"]
        else:
            mpc["max_replans"] = summary["mpc_config"]["replans"]
        apply_dataclass_overrides(cfg.mpc_settings, mpc, "mpc")
    cfg.settings.objective = summary["objective"]["mode"]
    return cfg


def plan(run: Path, summary: dict, precision: str, out: Path) -> dict:
    if (out / "summary.json").exists():
        return json.loads((out / "summary.json").read_text())
    return dict(evaluate(run, cell_config(summary, precision), out, progress=True, device="cpu"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, required=True, help="a finished `wmplan demo` folder")
    parser.add_argument("--encoder", default="conv")
    parser.add_argument("--cells", default="cem,cem_mpc,cem_mpc_paper", help="cell folders, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-check", action="store_true", help="skip the fp32 reproduction check")
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as every wmplan command does
    models, cells = args.models.split(","), args.cells.split(",")
    runs, evals = args.demo / "runs" / args.encoder, args.demo / "eval" / args.encoder
    if not args.no_check:
        fp32 = json.loads((evals / models[0] / cells[0] / "summary.json").read_text())
        again = plan(runs / models[0], fp32, "fp32", args.out / "fp32_check" / models[0] / cells[0])
        if again["episode_success"] != fp32["episode_success"] or not np.allclose(
            again["episode_final_distance"], fp32["episode_final_distance"]
        ):
            raise SystemExit(
                f"fp32 does not reproduce {evals / models[0] / cells[0]}: the code changed since; plan the demo again"
            )
        print(f"fp32 reproduces {models[0]}/{cells[0]} episode for episode")
    rows = []
    for model in models:
        for cell in cells:
            fp32 = json.loads((evals / model / cell / "summary.json").read_text())
            bf16 = plan(runs / model, fp32, "bf16", args.out / model / cell)
            effect = success_difference(np.array(bf16["episode_success"]), np.array(fp32["episode_success"]))
            rows.append(
                {
                    "model": model,
                    "cell": cell,
                    "fp32_success": fp32["success_rate"],
                    "bf16_success": bf16["success_rate"],
                    "difference": effect.estimate,
                    "ci95": list(effect.ci95),
                    "p_value": effect.p_value,
                    "fp32_mean_final_distance": fp32["mean_final_distance"],
                    "bf16_mean_final_distance": bf16["mean_final_distance"],
                    "fp32_seconds_per_plan": fp32["seconds_per_plan"],
                    "bf16_seconds_per_plan": bf16["seconds_per_plan"],
                    "bf16_precision_recorded": bf16["precision"],
                }
            )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    print(
        f"{'model':<12} {'cell':<16} {'fp32':>5} {'bf16':>5} {'diff (95% CI)':>22} {'p Holm':>7} {'dist fp32/bf16':>16}"
    )
    for r in rows:
        ci = f"{100 * r['difference']:+.0f} ({100 * r['ci95'][0]:+.0f} to {100 * r['ci95'][1]:+.0f})"
        print(
            f"{r['model']:<12} {r['cell']:<16} {100 * r['fp32_success']:>4.0f}% {100 * r['bf16_success']:>4.0f}% "
            f"{ci:>22} {r['p_holm']:>7.3f} {r['fp32_mean_final_distance']:>7.2f}/{r['bf16_mean_final_distance']:<7.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"demo": str(args.demo), "encoder": args.encoder, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
