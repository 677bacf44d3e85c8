"""Collection throughput of every task: simulation + rendering (64x64 RGB) through the task's collector.

    python benchmarks/collect.py [--tasks wall,pointmaze,pusht,rope,granular] [--episodes N]
                                 [--no-mujoco-render] [--no-compare] [--json PATH]

For each task, prints frames per second of its collector (the one `wmplan collect` uses) simulating
and rendering `copies` episodes at once, measured in this run on one process. For Wall it also
prints the end-to-end rate into a zarr store (target >= 20,000 frames/s); for PointMaze also the
rate with MuJoCo's OpenGL renderer instead of the numpy one (where an OpenGL context can be made).

With the optional `compare` extra installed (pip install -c constraints.txt -e ".[compare]"), it
also times gym-pusht's PushT and gymnasium-robotics' PointMaze_UMaze-v3 at the same image size, one
env stepped with random actions and rendered per step (how those envs run), and prints our rate
over theirs (target >= 5x). `--episodes N` sets the episode count of every task; by default each
task gets a count that keeps the whole run within a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from wmplan.data.collect import collect, collector
from wmplan.envs import make_task

IMAGE_SIZE = 64
# task -> (default episodes, copies simulated at once)
DEFAULTS = {
    "wall": (1920, 64),
    "pointmaze": (256, 64),
    "pusht": (256, 64),
    "rope": (32, 16),
    "granular": (16, 16),
}
COMPARE_STEPS = {"pusht": 1000, "pointmaze": 1000}
INSTALL_HINT = 'pip install -c constraints.txt -e ".[compare]"'


def simulate_render(name: str, episodes: int, copies: int, settings: dict[str, Any] | None = None) -> dict[str, float]:
    """Frames per second of task `name`'s collector producing `episodes` episodes, `copies` at a time."""
    policy, cfg_type = collector(name)
    task, cfg = make_task(name, settings), cfg_type()
    policy(
        task, np.random.default_rng(1), min(copies, 2), dataclasses.replace(cfg, steps=1)
    )  # warm-up (GL context, caches)
    frames, start = 0, time.perf_counter()
    for begin in range(0, episodes, copies):
        data = policy(task, np.random.default_rng([0, begin]), min(copies, episodes - begin), cfg)
        frames += data["obs"].shape[0] * data["obs"].shape[1]
        assert data["obs"].shape[2:] == (IMAGE_SIZE, IMAGE_SIZE, 3), data["obs"].shape
    seconds = time.perf_counter() - start
    return {
        "episodes": episodes,
        "copies": min(copies, episodes),
        "frames": frames,
        "seconds": seconds,
        "fps": frames / seconds,
    }


def wall_to_disk(episodes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = collect("wall", f"{tmp}/wall", episodes=episodes, seed=0, progress=False)
        seconds = time.perf_counter() - start
        return {"frames": store.n_frames, "seconds": seconds, "fps": store.n_frames / seconds}


def _time_gym(make: Callable[[], Any], steps: int, render: bool) -> dict[str, float]:
    """Frames per second of one gymnasium env stepped `steps` times with random actions (reset when an
    episode ends); with `render`, env.render() gives each frame, else the observation is the frame."""
    env = make()
    env.action_space.seed(0)
    env.reset(seed=0)
    frame = env.render() if render else None
    frames, start = 0, time.perf_counter()
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        frame = env.render() if render else obs
        frames += 1
        if terminated or truncated:
            obs, _ = env.reset()
            frame = env.render() if render else obs
            frames += 1
    seconds = time.perf_counter() - start
    env.close()
    shape = np.asarray(frame).shape
    if shape != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise RuntimeError(f"expected {IMAGE_SIZE}x{IMAGE_SIZE} RGB frames, got shape {shape}")
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds}


def gym_pusht_fps(steps: int) -> dict[str, float]:
    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
    import gymnasium

    return _time_gym(
        lambda: gymnasium.make(
            "gym_pusht/PushT-v0",
            obs_type="pixels",
            render_mode="rgb_array",
            observation_width=IMAGE_SIZE,
            observation_height=IMAGE_SIZE,
        ),
        steps,
        render=False,
    )


def gymnasium_robotics_pointmaze_fps(steps: int) -> dict[str, float]:
    import gymnasium

    import wmplan.envs.mujoco_gl  # noqa: F401  (MUJOCO_GL=egl where libEGL loads, before mujoco's import)

    with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about Adroit rewards
        import gymnasium_robotics
    gymnasium.register_envs(gymnasium_robotics)
    return _time_gym(
        lambda: gymnasium.make("PointMaze_UMaze-v3", render_mode="rgb_array", width=IMAGE_SIZE, height=IMAGE_SIZE),
        steps,
        render=True,
    )


THEIRS = {
    "pusht": ("gym-pusht PushT-v0", "gym_pusht", gym_pusht_fps),
    "pointmaze": ("gymnasium-robotics PointMaze_UMaze-v3", "gymnasium_robotics", gymnasium_robotics_pointmaze_fps),
}


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(DEFAULTS), help="comma-separated tasks (default: all)")
    parser.add_argument("--episodes", type=int, help="episodes per task (default: per task, see DEFAULTS)")
    parser.add_argument("--no-mujoco-render", action="store_true", help="skip PointMaze with MuJoCo's OpenGL renderer")
    parser.add_argument("--no-compare", action="store_true", help="skip gym-pusht and gymnasium-robotics")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(DEFAULTS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; available: {', '.join(DEFAULTS)}")
    if args.episodes is not None and args.episodes < 1:
        parser.error("--episodes must be at least 1")

    result: dict[str, dict[str, Any]] = {}
    print(
        f"Frames/s of simulation + {IMAGE_SIZE}x{IMAGE_SIZE} RGB rendering through each task's collector, one process:"
    )
    for name in tasks:
        episodes, copies = DEFAULTS[name]
        episodes = args.episodes or episodes
        r = result[name] = simulate_render(name, episodes, copies)
        steps = r["frames"] // episodes
        target = "   (target >= 20,000)" if name == "wall" else ""
        print(
            f"  {name:10s} {r['fps']:>10,.0f} frames/s   {episodes} episodes x {steps} frames, "
            f"{r['copies']} copies at a time, {r['seconds']:.1f} s{target}"
        )
        if name == "wall":
            disk = r["end_to_end"] = wall_to_disk(episodes)
            r["store_share_of_time"] = 1 - r["seconds"] / disk["seconds"]
            print(
                f"  {'':10s} {disk['fps']:>10,.0f} frames/s   end to end into zarr, {disk['seconds']:.1f} s; "
                f"writing the store takes {100 * r['store_share_of_time']:.0f}% of it"
            )
        if name == "pointmaze" and not args.no_mujoco_render:
            try:
                gl = r["mujoco_render"] = simulate_render(name, min(episodes, copies), copies, {"render": "mujoco"})
            except Exception as exc:  # no OpenGL context here: report the numpy figure alone
                print(f"  {'':10s} MuJoCo OpenGL renderer unavailable: {type(exc).__name__}: {exc}")
            else:
                r["numpy_over_mujoco_render"] = r["fps"] / gl["fps"]
                print(
                    f"  {'':10s} {gl['fps']:>10,.0f} frames/s   with MuJoCo's OpenGL renderer instead of numpy "
                    f"({gl['episodes']} episodes): numpy is {r['numpy_over_mujoco_render']:.1f}x faster"
                )

    compared = [name for name in tasks if name in THEIRS]
    if compared and not args.no_compare:
        print(
            f"Against the reference envs, one env stepped with random actions, {IMAGE_SIZE}x{IMAGE_SIZE} frames (target >= 5x):"
        )
        missing = []
        for name in compared:
            label, module, measure = THEIRS[name]
            if not _importable(module):
                missing.append(module.replace("_", "-"))
                continue
            try:
                theirs = measure(COMPARE_STEPS[name])
            except Exception as exc:
                print(f"  {label}: could not be timed: {type(exc).__name__}: {exc}")
                continue
            ratio = result[name]["fps"] / theirs["fps"]
            result[name]["reference"] = {"env": label, **theirs, "ours_over_theirs": ratio}
            print(
                f"  {label:38s} {theirs['fps']:>8,.0f} frames/s   ours {result[name]['fps']:>8,.0f}: "
                f"{ratio:.1f}x {'(meets >= 5x)' if ratio >= 5 else '(below 5x)'}"
            )
        if missing:
            print(f"  {', '.join(missing)} not installed: {INSTALL_HINT} (the optional `compare` extra) to compare")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
