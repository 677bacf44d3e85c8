"""What a planner with a perfect model could reach: planning in the simulator itself.

Two references, both on the start/goal pairs that `wmplan eval --seed` draws, both asking the simulator
(which no world-model planner does): they say what the same actions and budget can reach, not a method.
- `cem_reference` (Wall, PointMaze, PushT): the eval's CEM (samples, elites, iterations, horizon of model
  steps of `frameskip` env actions), each candidate scored by simulating it from the true start; the
  final mean is executed open loop. The cost is the task's success criterion made continuous: its
  distance over its threshold, plus PushT's angle error over its own.
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

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmplan.config import preset
from wmplan.data.collect_deformable import RandomPushConfig, aimed_pushes
from wmplan.envs import make_task
from wmplan.envs.base import Task
from wmplan.envs.pushing import PushingTask
from wmplan.evaluation.eval_config import PlannerSettings
from wmplan.evaluation.paired import mean_interval, wilson_interval
from wmplan.planning import task_planning
from wmplan.writing import claim_folder


def saved(summary: dict[str, Any], out: str | Path | None) -> dict[str, Any]:
    """Write `summary` to out/summary.json (when `out` is given) and return it."""
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


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
    seed: int = 99,
    pushes: int = 10,
    candidates: int = 100,
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


def success_margin(task: Task, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(N,): the task's distance over its success threshold, plus the angle error over its threshold
    where success also needs an angle (PushT); below 1 on every term means success."""
    c = task.config
    threshold = getattr(c, "success_threshold", None) or c.success_position
    margin = task.distance(state, goal) / threshold
    if hasattr(task, "angle_error"):
        margin = margin + task.angle_error(state, goal) / c.success_angle
    return margin


def simulate(
    sim: Task, start: np.ndarray, actions: np.ndarray, goal: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Run env actions (N, T, A) from states (N, S): the final states (N, S) and, with a goal (N, S),
    whether each copy met it at any step (N,)."""
    sim.reset_to(start)
    reached = np.zeros(len(start), bool) if goal is None else sim.is_success(start, goal)
    for t in range(actions.shape[1]):
        state = sim.step(actions[:, t])
        if goal is not None:
            reached |= sim.is_success(state, goal)
    return sim.get_state(), reached


def cem_reference(
    env: str,
    out: str | Path | None = None,
    *,
    episodes: int = 20,
    seed: int = 99,
    task_settings: dict | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """CEM in the simulator with the eval's budget (PlannerSettings' samples, elites and horizon, the
    task's CEM iterations and frameskip) on `episodes` pairs of seed `seed`; writes summary.json into `out`
    (when given). Samples start from the middle of the action bounds with half their width as std and
    are clipped into them, as the simulator's actions must be."""
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    lock = claim_folder(out, "the reference") if out is not None else None  # noqa: F841 (fail before any work)
    task, sim = make_task(env, task_settings), make_task(env, task_settings)
    if isinstance(task, PushingTask):
        raise ValueError(f"{env} plans pushes: use the greedy reference (pushes, candidates) for it")
    budget, frameskip = PlannerSettings(), preset("small", env).data.frameskip
    iterations, steps = task_planning(env).cem_iterations, budget.horizon * frameskip
    start, goal = task.sample_start_goal(np.random.default_rng(seed), episodes)
    rng = np.random.default_rng(seed + 1)
    low, high = task.action_low, task.action_high
    n, k, a = episodes, budget.samples, task.action_dim
    mean = np.broadcast_to((low + high) / 2, (n, steps, a)).copy()
    std = np.broadcast_to((high - low) / 2, (n, steps, a)).copy()
    begin = time.perf_counter()
    for _ in tqdm(range(iterations), desc=f"{env} CEM in the simulator", unit="iteration", disable=not progress):
        cand = np.clip(mean[:, None] + std[:, None] * rng.standard_normal((n, k, steps, a)), low, high)
        final, _ = simulate(sim, np.repeat(start, k, axis=0), cand.reshape(n * k, steps, a))
        cost = success_margin(task, final, np.repeat(goal, k, axis=0)).reshape(n, k)
        elites = np.take_along_axis(cand, np.argsort(cost, axis=1)[:, : budget.topk, None, None], axis=1)
        mean, std = elites.mean(axis=1), elites.std(axis=1, ddof=1)
    final, reached = simulate(sim, start, np.clip(mean, low, high), goal)
    success, distance = task.is_success(final, goal), task.distance(final, goal)
    summary = {
        "task": env,
        "method": "cem_in_simulator",
        "episodes": episodes,
        "seed": seed,
        "samples": k,
        "topk": budget.topk,
        "iterations": iterations,
        "horizon": budget.horizon,
        "frameskip": frameskip,
        "success_rate": float(success.mean()),
        "ci95": wilson_interval(int(success.sum()), episodes),
        "reached_rate": float(reached.mean()),
        "mean_initial_distance": float(task.distance(start, goal).mean()),
        "mean_final_distance": float(distance.mean()),
        "final_distance_ci95": mean_interval(distance),
        "distance": task.distance_name,
        "seconds": time.perf_counter() - begin,
        "note": "CEM scored by the simulator on the true state, open loop: a reference of what the actions can reach",
    }
    return saved(summary, out)


def simulator_reference(
    env: str,
    out: str | Path | None = None,
    *,
    episodes: int = 20,
    seed: int = 99,
    pushes: int = 10,
    candidates: int = 100,
    progress: bool = True,
) -> dict[str, Any]:
    """The task's reference: greedy pushes for Rope and Granular, CEM in the simulator for the others.
    Either summary has `method`, `success_rate` and `mean_final_distance` (after all pushes)."""
    if plans_pushes(env):
        return greedy_reference(
            env, out, episodes=episodes, seed=seed, pushes=pushes, candidates=candidates, progress=progress
        )
    return cem_reference(env, out, episodes=episodes, seed=seed, progress=progress)
