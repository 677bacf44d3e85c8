"""What a planner with a perfect model could reach: greedy planning in the simulator itself (pushing tasks).

On Rope and Granular no world model may reach the success threshold, and a mean final Chamfer distance
means little without knowing what the same number of pushes can do. This reference answers it: from
the same start/goal pairs that `wmplan eval --seed` draws, each step tries `candidates` pushes in the
simulator (drawn like the collector's: aimed at a random particle, 10% uniform) and executes the one
that leaves the particles closest to the goal, or none when no candidate gets closer. It sees the
true state and asks the simulator, which no world-model planner does: it is a reference, not a method.

Example:
    >>> summary = greedy_reference("rope", episodes=20, pushes=10, candidates=100)   # doctest: +SKIP
    >>> summary["mean_distance_after"][5]   # mean Chamfer distance after 5 pushes  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmplan.data.collect_deformable import RandomPushConfig, aimed_pushes
from wmplan.envs import make_task
from wmplan.envs.pushing import PushingTask


def greedy_step(task: PushingTask, sim: PushingTask, state: np.ndarray, goal: np.ndarray, current: float,
                candidates: int, rng: np.random.Generator) -> np.ndarray:
    """One greedy push for one episode: state (2K,) at distance `current` from goal (2K,) -> the next
    state (2K,), never farther."""
    tried = np.repeat(state[None], candidates, axis=0)
    sim.reset_to(tried)
    after = sim.step(aimed_pushes(task, tried, rng, RandomPushConfig()))
    distance = task.distance(after, np.repeat(goal[None], candidates, axis=0))
    best = int(np.argmin(distance))
    return after[best] if distance[best] < current else state


def greedy_reference(env: str, out: str | Path | None = None, *, episodes: int = 20, seed: int = 99, pushes: int = 10,
                     candidates: int = 100, progress: bool = True) -> dict[str, Any]:
    """Greedy simulator planning on `episodes` start/goal pairs of seed `seed`; writes summary.json into
    `out` (when given) with the mean distance and success rate after every push count 0..pushes."""
    task, sim = make_task(env), make_task(env)
    if not isinstance(task, PushingTask):
        raise ValueError(f"the simulator reference covers the pushing tasks (rope, granular), not {env!r}")
    if pushes < 1 or candidates < 1:
        raise ValueError(f"pushes and candidates must be at least 1, got {pushes} and {candidates}")
    start, goal = task.sample_start_goal(np.random.default_rng(seed), episodes)
    rng = np.random.default_rng(seed + 1)
    state, distances, successes = start.copy(), [task.distance(start, goal)], [task.is_success(start, goal)]
    begin = time.perf_counter()
    for _ in tqdm(range(pushes), desc=f"{env} greedy reference", unit="push", disable=not progress):
        state = np.stack([greedy_step(task, sim, state[i], goal[i], distances[-1][i], candidates, rng) for i in range(episodes)])
        distances.append(task.distance(state, goal))
        successes.append(task.is_success(state, goal))
    summary = {
        "task": env, "episodes": episodes, "seed": seed, "pushes": pushes, "candidates": candidates,
        "distance": task.distance_name,
        "mean_distance_after": [float(d.mean()) for d in distances],
        "success_rate_after": [float(s.mean()) for s in successes],
        "seconds": time.perf_counter() - begin,
        "note": "greedy planning in the simulator on the true state: a reference of what the pushes can reach",
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
