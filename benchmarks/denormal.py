"""Planning time with subnormal floats flushed to zero against kept, on a trained run, in one run.

    python benchmarks/denormal.py --run results/demo_pusht/runs/conv/base [--episodes 32] [--steps 15] [--rounds 3]

Plans the same Adam problem (the run's task, start/goal pairs from seed 99, `--steps` steps) with
torch.set_flush_denormal off and on, alternating `--rounds` times so drift on a noisy machine hits
both alike, and prints the seconds per plan of each and their ratio. Whether a run makes subnormals
depends on its weights: a trained PushT model does (the CLI flushes them for that reason); an
untrained one may not. x86 CPUs only: elsewhere set_flush_denormal returns False and nothing is measured.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wmplan.envs import make_task
from wmplan.evaluation.episodes import EvalConfig, PlannerSettings, SimulatedEpisodes, build_planner
from wmplan.models.world_model import WorldModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory of a trained model")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--steps", type=int, default=15, help="Adam steps per plan")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of off/on")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if not torch.set_flush_denormal(False):
        raise SystemExit("this CPU does not support flushing subnormals (torch.set_flush_denormal returned False)")
    model = WorldModel.load(args.run).eval()
    task = make_task(model.dims.task, model.task_settings)
    start, goal = task.sample_start_goal(np.random.default_rng(99), args.episodes)
    cfg = EvalConfig(planner="adam", mpc=True, episodes=args.episodes, settings=PlannerSettings(steps=args.steps))
    planner = build_planner(cfg, model.dims.task, model, task.action_low, task.action_high)
    episodes = SimulatedEpisodes(task, model, start, goal)
    z0, z_goal = episodes.observe(), episodes.encode(goal)

    def plan_seconds(flush: bool) -> float:
        torch.set_flush_denormal(flush)
        gens = [torch.Generator().manual_seed(i) for i in range(args.episodes)]
        begin = time.perf_counter()
        planner.plan(model, z0, z_goal, generator=gens)
        return time.perf_counter() - begin

    plan_seconds(True)  # warm-up: first-call allocations
    times: dict[str, list[float]] = {"kept": [], "flushed": []}
    for _ in range(args.rounds):
        times["kept"].append(plan_seconds(False))
        times["flushed"].append(plan_seconds(True))
    torch.set_flush_denormal(False)
    result = {
        "run": args.run, "task": model.dims.task, "episodes": args.episodes, "adam_steps": args.steps,
        "threads": torch.get_num_threads(), "seconds": times,
        "kept_over_flushed": float(np.median(times["kept"]) / np.median(times["flushed"])),
    }
    print(f"{model.dims.task} run {args.run}: Adam {args.steps} steps on {args.episodes} episodes, {result['threads']} threads")
    for name, values in times.items():
        print(f"  {name:<8} " + "  ".join(f"{v:6.2f}" for v in values) + "  s per plan")
    print(f"  kept / flushed (medians): {result['kept_over_flushed']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
