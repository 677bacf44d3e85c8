"""Planning time: Adam against CEM, and batched against one-episode-at-a-time planning, in one run.

    python benchmarks/planning.py [--episodes 50] [--json PATH]

One untrained `small` Wall model with the conv encoder's token shape (timing does not depend on the
weights). Prints seconds per plan for Adam (100 steps), CEM 300 x 10 and CEM 300 x 30 on all episodes at
once, and Adam planned one episode at a time. Targets: adam_over_cem30 <= 0.10, batched_speedup >= 10.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wmplan.config import preset
from wmplan.data.windows import Normalizer
from wmplan.models.world_model import Latent, TaskDims, WorldModel
from wmplan.planning import CEMConfig, CEMPlanner, GDConfig, GDPlanner, objective_for


def untrained_model() -> WorldModel:
    torch.manual_seed(0)
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    norm = Normalizer(zeros, ones, zeros, ones, zeros, ones)
    return WorldModel(preset("small", "wall"), TaskDims("wall", 64, 2, 2, 2), norm).eval()


def latents(model: WorldModel, n: int, seed: int) -> Latent:
    g = torch.Generator().manual_seed(seed)
    visual = torch.rand(n, 1, model.encoder.num_tokens, model.encoder.dim, generator=g) * 2 - 1
    return model.encode(proprio=torch.randn(n, 1, 2, generator=g), visual=visual)


def seconds(fn, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    model, n = untrained_model(), args.episodes
    with torch.no_grad():
        z0, goal = latents(model, n, 0), latents(model, n, 1)
    objective = objective_for("wall")
    adam = GDPlanner(GDConfig(optimizer="adam", steps=100), objective)
    cem10 = CEMPlanner(CEMConfig(iterations=10), objective)
    cem30 = CEMPlanner(CEMConfig(iterations=30), objective)
    GDPlanner(GDConfig(steps=2), objective).plan(model, z0, goal)  # warm-up: first-call allocations
    t = {
        "adam100": seconds(lambda: adam.plan(model, z0, goal)),
        "cem300x10": seconds(lambda: cem10.plan(model, z0, goal)),
        "cem300x30": seconds(lambda: cem30.plan(model, z0, goal)),
    }
    single = [Latent(z.visual[i : i + 1], z.proprio[i : i + 1]) for z in (z0, goal) for i in range(n)]
    t["adam100_one_at_a_time"] = seconds(lambda: [adam.plan(model, single[i], single[n + i]) for i in range(n)])
    result = {
        "episodes": n,
        "threads": torch.get_num_threads(),
        "seconds": t,
        "adam_over_cem10": t["adam100"] / t["cem300x10"],
        "adam_over_cem30": t["adam100"] / t["cem300x30"],
        "batched_speedup": t["adam100_one_at_a_time"] / t["adam100"],
    }
    print(f"{n} episodes, untrained small Wall model, {result['threads']} threads; seconds per planning call:")
    for name, value in t.items():
        print(f"  {name:<24} {value:8.2f} s")
    print(f"  Adam 100 / CEM 300x10    {result['adam_over_cem10']:.3f}")
    print(f"  Adam 100 / CEM 300x30    {result['adam_over_cem30']:.3f}   (target <= 0.10)")
    print(f"  batched speed-up         {result['batched_speedup']:.1f}x  (target >= 10)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
