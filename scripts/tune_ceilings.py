"""The simulator reference on the tuning pairs over a grid of budgets: the evidence for each task's MPC
budget under both protocols (a budget is informative where a perfect model succeeds within it).

    python scripts/tune_ceilings.py --env wall --episodes 50 --out docs/results/ceilings/wall_tuning.json \
        --grid "paper:max_replans=20,50" "fixed:replans=10,20;horizon=5,10;iterations=10,30"

Each grid entry is `<protocol>:<key>=<values>;...` (protocol open, fixed or paper; keys: samples, topk,
iterations, horizon of the CEM budget, replans, execute, max_replans of the MPC schedule); every
combination runs on the tuning pairs (defaults.TUNING_PAIR_SEED), none of which a report evaluates on.
Rows already in --out are kept, so an interrupted search resumes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from wmplan.defaults import TUNING_PAIR_SEED
from wmplan.evaluation.eval_config import MPCSettings
from wmplan.experiments.sim_cem import SimBudget, cem_reference

BUDGET_KEYS = ("samples", "topk", "iterations", "horizon")
MPC_KEYS = ("replans", "execute", "max_replans")


def combinations(entry: str) -> list[tuple[str, dict[str, int]]]:
    protocol, _, rest = entry.partition(":")
    axes = [(k, [int(v) for v in values.split(",")]) for k, values in (p.split("=") for p in rest.split(";") if p)]
    unknown = [k for k, _ in axes if k not in BUDGET_KEYS + MPC_KEYS]
    if protocol not in ("open", "fixed", "paper") or unknown:
        raise SystemExit(f"bad grid entry {entry!r}: protocol open|fixed|paper, keys {BUDGET_KEYS + MPC_KEYS}")
    return [(protocol, dict(zip([k for k, _ in axes], values))) for values in itertools.product(*[v for _, v in axes])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=TUNING_PAIR_SEED)
    parser.add_argument("--grid", nargs="+", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    for protocol, setting in (c for entry in args.grid for c in combinations(entry)):
        key = {"protocol": protocol, **setting}
        if any(row["setting"] == key for row in rows):
            continue
        budget = SimBudget.of(args.env, **{k: v for k, v in setting.items() if k in BUDGET_KEYS})
        mpc = MPCSettings(**{k: v for k, v in setting.items() if k in MPC_KEYS})
        start = time.perf_counter()
        s = cem_reference(
            args.env,
            episodes=args.episodes,
            seed=args.seed,
            protocol=None if protocol == "open" else protocol,
            mpc=mpc,
            budget=budget,
            progress=False,
        )
        rows.append(
            {
                "setting": key,
                "budget": {k: s[k] for k in (*BUDGET_KEYS, "frameskip")},
                "mpc_config": s["mpc_config"],
                "success_rate": s["success_rate"],
                "ci95": s["ci95"],
                "reached_rate": s["reached_rate"],
                "mean_final_distance": s["mean_final_distance"],
                "mean_replans": s["mean_replans"],
                "seconds": time.perf_counter() - start,
            }
        )
        print(
            f"{args.env} {key}: success {s['success_rate']:.0%}, {s['mean_replans']:.1f} plans, {rows[-1]['seconds']:.0f} s"
        )
        document = {"task": args.env, "pair_seed": args.seed, "episodes": args.episodes, "rows": rows}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
