"""Subnormal floats in planning: Adam planning time with and without flushing them to zero, in one run.

    python benchmarks/denormals.py --run results/demo/runs/conv/base [--episodes 20] [--steps 30] [--json PATH]

Every wmplan command calls torch.set_flush_denormal(True) before it plans (cli.main), because on x86 CPUs
arithmetic on subnormal floats (|x| < 1.2e-38) runs many times slower, and planners' backward passes
through attention can produce them. This plans the same episodes with the same seed twice per setting,
flushing off then on, and prints the seconds per plan, their ratio, and the share of subnormal values
seen in the predictor's outputs and the actions' gradients with flushing off (0 means the guard has
nothing to do on this model). The pairs are eval's (seed 99), encoded by the model.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wmplan.closed_loop import encode_states
from wmplan.envs import make_task
from wmplan.models.world_model import WorldModel
from wmplan.planning import GDConfig, GDPlanner, objective_for

SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def subnormal_share(t: torch.Tensor) -> float:
    values = t.detach().abs()
    return float(((values > 0) & (values < SMALLEST_NORMAL)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained run (e.g. a demo's runs/conv/base)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30, help="Adam steps per plan")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    model = WorldModel.load(args.run).eval()
    task = make_task(model.dims.task, model.task_settings)
    start, goal_state = task.sample_start_goal(np.random.default_rng(99), args.episodes)  # eval's pairs
    with torch.no_grad():
        z0, goal = encode_states(model, task, start), encode_states(model, task, goal_state)
    n = args.episodes
    planner = GDPlanner(GDConfig(steps=args.steps), objective_for(model.dims.task))
    shares: list[float] = []
    hook = model.predictor.register_forward_hook(lambda _m, _i, out: shares.append(subnormal_share(out)))
    seconds = {}
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        planner.plan(model, z0, goal)  # warm-up
        start = time.perf_counter()
        planner.plan(model, z0, goal)
        seconds[flush] = time.perf_counter() - start
        if not flush:
            hook.remove()
    result = {
        "run": args.run,
        "episodes": n,
        "steps": args.steps,
        "seconds_flush_off": seconds[False],
        "seconds_flush_on": seconds[True],
        "slowdown_without_flush": seconds[False] / seconds[True],
        "subnormal_share_predictor_outputs": max(shares) if shares else 0.0,
    }
    print(f"{args.run}: Adam {args.steps} steps on {n} episodes")
    print(f"  flush off  {seconds[False]:.2f} s   flush on  {seconds[True]:.2f} s")
    print(f"  slowdown without flushing   {result['slowdown_without_flush']:.2f}x")
    print(
        f"  most subnormal share in a predictor output (flush off)   {result['subnormal_share_predictor_outputs']:.2e}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
