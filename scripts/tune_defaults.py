"""A task's planning defaults measured on the tuning pairs: Adam and CEM, open loop and MPC, with each
objective mode, on one trained run; the evidence for the objective modes in wmplan.tasks.

    python scripts/tune_defaults.py --run results/wall50/runs/conv/base --episodes 50 \
        --out docs/results/ceilings/wall_objective_tuning.json [--set mpc.execute=5]

Every cell plans the tuning pairs (defaults.TUNING_PAIR_SEED), which no report evaluates on, under the
fixed protocol; `--set mpc.<field>` sets the MPC schedule of every cell (default: the task's). Rows
already in --out are kept, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wmplan.defaults import TUNING_PAIR_SEED
from wmplan.evaluation.episodes import evaluate
from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
from wmplan.overrides import apply_dataclass_overrides, parse_set_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=TUNING_PAIR_SEED)
    parser.add_argument("--planners", default="adam,cem")
    parser.add_argument("--set", action="append", default=[], metavar="mpc.KEY=VALUE")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    mpc_sets = {k.split(".", 1)[1]: v for k, v in parse_set_args(args.set).items()}
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    for mpc in (False, True):
        for planner in args.planners.split(","):
            for objective in ("last", "all"):
                key = {"planner": planner, "mpc": mpc, "objective": objective, **({"mpc_set": mpc_sets} if mpc else {})}
                if any(row["setting"] == key for row in rows):
                    continue
                cfg = EvalConfig(
                    planner=planner,
                    mpc=mpc,
                    episodes=args.episodes,
                    seed=args.seed,
                    settings=PlannerSettings(objective=objective),
                )
                apply_dataclass_overrides(cfg.mpc_settings, mpc_sets, "mpc")
                s = evaluate(args.run, cfg, None, device="cpu")
                rows.append(
                    {
                        "setting": key,
                        "mpc_config": s["mpc_config"],
                        "success_rate": s["success_rate"],
                        "ci95": s["ci95"],
                        "mean_final_distance": s["mean_final_distance"],
                        "seconds_per_plan": s["seconds_per_plan"],
                        "episode_success": s["episode_success"],
                    }
                )
                print(f"{key}: success {s['success_rate']:.0%}, distance {s['mean_final_distance']:.2f}")
                document = {"run": args.run, "pair_seed": args.seed, "episodes": args.episodes, "rows": rows}
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
