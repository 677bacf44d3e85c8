"""What a planner with a perfect model could reach: planning in the simulator itself.

Two references, both on the start/goal pairs that `wmplan eval --seed` draws, both asking the simulator
(which no world-model planner does): they say what the same actions and budget can reach, not a method.
- `cem_reference` (Wall, PointMaze, PushT; experiments/sim_cem.py): the eval's CEM (samples, elites,
  iterations, horizon of model steps of `frameskip` env actions), each candidate scored by simulating it
  from the true state, open loop or under either MPC protocol. The cost is the task's success criterion
  made continuous: its distance over its threshold, plus PushT's angle error over its own.
- `greedy_reference` (Rope, Granular), below.

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

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmplan.data.collect_deformable import RandomPushConfig, aimed_pushes
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.envs import make_task
from wmplan.envs.pushing import PushingTask
from wmplan.evaluation.eval_config import MPCSettings
from wmplan.experiments.sim_cem import cem_reference, saved, simulate, success_margin
from wmplan.writing import claim_folder

GREEDY_PUSHES, GREEDY_CANDIDATES = 10, 100
"""The greedy reference's defaults: pushes per episode (an MPC episode's) and aimed pushes tried per push."""

__all__ = ["cem_reference", "greedy_reference", "simulate", "simulator_reference", "success_margin"]


def plans_pushes(env: str) -> bool:
    """Whether a task's actions are pushes (Rope, Granular: the greedy reference) rather than moves."""
    return isinstance(make_task(env), PushingTask)


def greedy_step(
    task: PushingTask,
    sim: PushingTask,
    state: np.ndarray,
    goal: np.ndarray,
    current: float,
    candidates: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One greedy push for one episode: state (2K,) at distance `current` from goal (2K,) -> the next
    state (2K,), never farther."""
    tried = np.repeat(state[None], candidates, axis=0)
    sim.reset_to(tried)
    after = sim.step(aimed_pushes(task, tried, rng, RandomPushConfig()))
    distance = task.distance(after, np.repeat(goal[None], candidates, axis=0))
    best = int(np.argmin(distance))
    return after[best] if distance[best] < current else state


def greedy_reference(
    env: str,
    out: str | Path | None = None,
    *,
    episodes: int = 20,
    seed: int = REPORT_PAIR_SEED,
    pushes: int = GREEDY_PUSHES,
    candidates: int = GREEDY_CANDIDATES,
    progress: bool = True,
) -> dict[str, Any]:
    """Greedy simulator planning on `episodes` start/goal pairs of seed `seed`; writes summary.json into
    `out` (when given) with the mean distance and success rate after every push count 0..pushes."""
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    lock = claim_folder(out, "the reference") if out is not None else None  # noqa: F841 (fail before any work)
    task, sim = make_task(env), make_task(env)
    if not isinstance(task, PushingTask) or not isinstance(sim, PushingTask):
        raise ValueError(f"the simulator reference covers the pushing tasks (rope, granular), not {env!r}")
    if pushes < 1 or candidates < 1:
        raise ValueError(f"pushes and candidates must be at least 1, got {pushes} and {candidates}")
    start, goal = task.sample_start_goal(np.random.default_rng(seed), episodes)
    rng = np.random.default_rng(seed + 1)
    state, distances, successes = start.copy(), [task.distance(start, goal)], [task.is_success(start, goal)]
    begin = time.perf_counter()
    for _ in tqdm(range(pushes), desc=f"{env} greedy reference", unit="push", disable=not progress):
        state = np.stack(
            [greedy_step(task, sim, state[i], goal[i], distances[-1][i], candidates, rng) for i in range(episodes)]
        )
        distances.append(task.distance(state, goal))
        successes.append(task.is_success(state, goal))
    summary = {
        "task": env,
        "method": "greedy_pushes_in_simulator",
        "episodes": episodes,
        "seed": seed,
        "pushes": pushes,
        "candidates": candidates,
        "distance": task.distance_name,
        "mean_distance_after": [float(d.mean()) for d in distances],
        "success_rate_after": [float(s.mean()) for s in successes],
        "mean_final_distance": float(distances[-1].mean()),
        "success_rate": float(successes[-1].mean()),
        "seconds": time.perf_counter() - begin,
        "note": "greedy planning in the simulator on the true state: a reference of what the pushes can reach",
    }
    return saved(summary, out)


def simulator_reference(
    env: str,
    out: str | Path | None = None,
    *,
    episodes: int = 20,
    seed: int = REPORT_PAIR_SEED,
    pushes: int = GREEDY_PUSHES,
    candidates: int = GREEDY_CANDIDATES,
    progress: bool = True,
    protocol: str | None = None,
    mpc: MPCSettings | None = None,
) -> dict[str, Any]:
    """The task's reference: greedy pushes for Rope and Granular, CEM in the simulator for the others
    (open loop, or MPC under `protocol` with the schedule `mpc`). Either summary has `method`,
    `success_rate` and `mean_final_distance` (after all pushes)."""
    if plans_pushes(env):
        return greedy_reference(
            env, out, episodes=episodes, seed=seed, pushes=pushes, candidates=candidates, progress=progress
        )
    return cem_reference(env, out, episodes=episodes, seed=seed, progress=progress, protocol=protocol, mpc=mpc)
