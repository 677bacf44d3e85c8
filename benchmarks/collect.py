"""Wall collection throughput: simulation + rendering alone, and end to end into a zarr store.

    python benchmarks/collect.py [--episodes 1920] [--json PATH]

Prints frames per second (with 64x64 RGB images) measured in this run on one process, and the time
to collect the paper-scale Wall dataset (1,920 episodes x 50 steps). Target: >= 20,000 frames/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from wmplan.data.collect import WallWalkConfig, collect, random_walk_wall
from wmplan.envs.wall import WallTask


def simulate_only(episodes: int, batch: int = 64) -> tuple[float, int]:
    task, cfg = WallTask(), WallWalkConfig()
    frames = 0
    start = time.perf_counter()
    for begin in range(0, episodes, batch):
        n = min(batch, episodes - begin)
        data = random_walk_wall(task, np.random.default_rng([0, begin]), n, cfg)
        frames += data["obs"].shape[0] * data["obs"].shape[1]
    return time.perf_counter() - start, frames


def to_disk(episodes: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = collect("wall", f"{tmp}/wall", episodes=episodes, seed=0, progress=False)
        return time.perf_counter() - start, store.n_frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1920)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    sim_s, sim_frames = simulate_only(args.episodes)
    disk_s, disk_frames = to_disk(args.episodes)
    result = {
        "episodes": args.episodes,
        "simulate_render_fps": sim_frames / sim_s,
        "end_to_end_fps": disk_frames / disk_s,
        "end_to_end_seconds": disk_s,
        "store_share_of_time": 1 - sim_s / disk_s,
    }
    print(f"Wall, {args.episodes} episodes x 50 steps ({disk_frames} frames of 64x64x3):")
    print(f"  simulate + render     {result['simulate_render_fps']:>10,.0f} frames/s   (target >= 20,000)")
    print(f"  end to end into zarr  {result['end_to_end_fps']:>10,.0f} frames/s   {disk_s:.1f} s in all")
    print(f"  writing the store takes {100 * result['store_share_of_time']:.0f}% of the end-to-end time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
