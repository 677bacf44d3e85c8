"""The simulator reference of Wall, PointMaze and PushT: the eval's CEM with every candidate scored by
simulating it from the true state, open loop or under either MPC protocol (evaluation.protocols).

It asks the simulator, which no world-model planner does, so it is a ceiling, not a method: what these
planners could reach with a perfect model at the same budget. A fixed-protocol budget is only
informative where this reference succeeds within it.

Shapes: n episodes, k candidates, T env steps planned (horizon x frameskip), A env action dims.

Example:
    >>> summary = cem_reference("wall", episodes=50, protocol="paper")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmplan.config import preset
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.envs import make_task
from wmplan.envs.base import Task
from wmplan.envs.pushing import PushingTask
from wmplan.evaluation.eval_config import MPCSettings, PlannerSettings
from wmplan.evaluation.paired import mean_interval, wilson_interval
from wmplan.evaluation.protocols import PROTOCOL_NOTES, check_protocol
from wmplan.planning import task_planning
from wmplan.writing import atomic_write, claim_folder


@dataclass(frozen=True)
class SimBudget:
    """The planner's budget: CEM samples, elites and iterations per plan, horizon in model steps of
    `frameskip` env steps (defaults: the eval's, PlannerSettings and the task's CEM iterations)."""

    samples: int
    topk: int
    iterations: int
    horizon: int
    frameskip: int

    @classmethod
    def of(cls, env: str, **changes: int | None) -> SimBudget:
        defaults = PlannerSettings()
        budget = cls(
            samples=defaults.samples,
            topk=defaults.topk,
            iterations=task_planning(env).cem_iterations,
            horizon=defaults.horizon,
            frameskip=preset("small", env).data.frameskip,
        )
        return dataclasses.replace(budget, **{k: v for k, v in changes.items() if v is not None})

    @property
    def steps(self) -> int:
        return self.horizon * self.frameskip


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


SIM_CHUNK = 2048  # candidate copies simulated at once: PointMaze keeps one MjData (~1.3 MB) per copy, and
# 50 episodes x 300 candidates at once held 20 GB


def simulate_final(sim: Task, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """`simulate`'s final states (N, S), SIM_CHUNK copies at a time (each copy is independent of the others,
    so the states are those of one batch of N)."""
    return np.concatenate(
        [
            simulate(sim, start[i : i + SIM_CHUNK], actions[i : i + SIM_CHUNK])[0]
            for i in range(0, len(start), SIM_CHUNK)
        ]
    )


def plan_in_simulator(
    task: Task, sim: Task, state: np.ndarray, goal: np.ndarray, mean: np.ndarray, budget: SimBudget, rng
) -> np.ndarray:
    """One CEM plan (n, T, A) per episode from true states (n, S) to goals (n, S), starting from the
    mean (n, T, A) with half the action range as std; candidates clipped into the action bounds."""
    low, high = task.action_low, task.action_high
    n, k, (steps, a) = len(state), budget.samples, mean.shape[1:]
    std = np.broadcast_to((high - low) / 2, mean.shape).copy()
    for _ in range(budget.iterations):
        cand = np.clip(mean[:, None] + std[:, None] * rng.standard_normal((n, k, steps, a)), low, high)
        final = simulate_final(sim, np.repeat(state, k, axis=0), cand.reshape(n * k, steps, a))
        cost = success_margin(task, final, np.repeat(goal, k, axis=0)).reshape(n, k)
        elites = np.take_along_axis(cand, np.argsort(cost, axis=1)[:, : budget.topk, None, None], axis=1)
        mean, std = elites.mean(axis=1), elites.std(axis=1, ddof=1)
    return np.clip(mean, low, high)


def run_plans(
    task: Task,
    sim: Task,
    world: Task,
    start: np.ndarray,
    goal: np.ndarray,
    budget: SimBudget,
    rounds: Iterable[object],
    execute: int,
    protocol: str | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From `start` (n, S), once per item of `rounds` (one per replan, a progress bar say): plan from the
    true state, then execute `execute` model steps of each plan in `world`. Returns the final states (n, S)
    (under the paper protocol, those at the boundary where an episode was reached and frozen), whether
    each episode met its goal at any env step (n,) and the plans it made (n,). Each plan is warm-started
    with the previous plan's unused tail."""
    episodes = len(start)
    middle = (task.action_low + task.action_high) / 2
    world.reset_to(start)
    reached = task.is_success(start, goal)
    done, frozen = np.zeros(episodes, bool), start.copy()
    calls = np.zeros(episodes, int)
    active, tail = np.arange(episodes), np.zeros((episodes, 0, task.action_dim))
    for _ in rounds:
        mean = np.broadcast_to(middle, (len(active), budget.steps, task.action_dim)).copy()
        mean[:, : tail.shape[1]] = tail
        state = world.get_state()
        plan = plan_in_simulator(task, sim, state[active], goal[active], mean, budget, rng)
        chunk = np.zeros((episodes, execute * budget.frameskip, task.action_dim))  # frozen episodes rest
        chunk[active] = plan[:, : chunk.shape[1]]
        for t in range(chunk.shape[1]):
            reached[active] |= task.is_success(world.step(chunk[:, t])[active], goal[active])
        calls[active] += 1
        tail = plan[:, chunk.shape[1] :]
        if protocol == "paper":  # score at the replanning boundary; the episodes reached there are frozen
            state = world.get_state()
            now = task.is_success(state[active], goal[active])
            frozen[active[now]], done[active[now]] = state[active[now]], True
            active, tail = active[~now], tail[~now]
            if not len(active):
                break
    return np.where(done[:, None], frozen, world.get_state()), reached, calls


def cem_reference(
    env: str,
    out: str | Path | None = None,
    *,
    episodes: int = 20,
    seed: int = REPORT_PAIR_SEED,
    protocol: str | None = None,
    mpc: MPCSettings | None = None,
    budget: SimBudget | None = None,
    task_settings: dict | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """CEM in the simulator on `episodes` pairs of seed `seed`: open loop (`protocol` None: one plan
    executed whole) or MPC under `protocol` with the schedule `mpc` resolves to (the eval's: fixed, the
    task's replans x executed steps; paper, whole plans up to mpc.max_replans). Episodes live in one
    persistent simulator (hidden state such as PushT's block velocity carries across replans); each
    plan starts from the true state, warm-started with the previous plan's unused tail. Writes
    summary.json into `out` (when given), with per-episode outcomes."""
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    if protocol is not None:
        check_protocol(protocol)
    lock = claim_folder(out, "the reference") if out is not None else None  # noqa: F841 (fail before any work)
    task, sim, world = (make_task(env, task_settings) for _ in range(3))
    if isinstance(task, PushingTask):
        raise ValueError(f"{env} plans pushes: use the greedy reference (pushes, candidates) for it")
    budget = budget or SimBudget.of(env)
    schedule = (mpc or MPCSettings()).resolve(env, budget.horizon, protocol) if protocol else None
    replans, execute = (schedule.replans, schedule.execute) if schedule else (1, budget.horizon)
    start, goal = task.sample_start_goal(np.random.default_rng(seed), episodes)
    rng = np.random.default_rng(seed + 1)
    begin = time.perf_counter()
    bar = tqdm(range(replans), desc=f"{env} CEM in the simulator", unit="plan", disable=not progress)
    final, reached, calls = run_plans(task, sim, world, start, goal, budget, bar, execute, protocol, rng)
    success, distance = task.is_success(final, goal), task.distance(final, goal)
    mode = f"MPC, {protocol} protocol" if protocol else "open loop"
    summary = {
        "task": env,
        "method": "cem_in_simulator",
        "mode": "open loop" if protocol is None else "mpc",
        "protocol": protocol or "fixed",
        "protocol_note": PROTOCOL_NOTES[protocol] if protocol else "open loop: one plan, scored at its end",
        "episodes": episodes,
        "seed": seed,
        **dataclasses.asdict(budget),
        "mpc_config": {"replans": replans, "execute": execute},
        "success_rate": float(success.mean()),
        "ci95": wilson_interval(int(success.sum()), episodes),
        "reached_rate": float(reached.mean()),
        "mean_initial_distance": float(task.distance(start, goal).mean()),
        "mean_final_distance": float(distance.mean()),
        "final_distance_ci95": mean_interval(distance),
        "distance": task.distance_name,
        "mean_replans": float(calls.mean()),
        "seconds": time.perf_counter() - begin,
        "note": f"CEM scored by the simulator on the true state, {mode}: a ceiling of what the actions can reach",
        "episode_success": [bool(v) for v in success],
        "episode_reached": [bool(v) for v in reached],
        "episode_final_distance": [float(v) for v in distance],
        "episode_replans": [int(v) for v in calls],
    }
    return saved(summary, out)


def saved(summary: dict[str, Any], out: str | Path | None) -> dict[str, Any]:
    """Write `summary` to out/summary.json atomically (when `out` is given) and return it."""
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(summary, indent=2)
        atomic_write(out / "summary.json", lambda tmp: tmp.write_text(text))
    return summary
