"""Trajectory generators: simulate many episodes at once, append them to a store one by one.

Example:
    >>> summary = collect("wall", "data/wall", episodes=1920, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from wmplan.data.episode_arrays import episode_arrays
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.envs import make_task
from wmplan.envs.wall import WallTask
from wmplan.overrides import typed_dataclass
from wmplan.range_checks import check_interval, check_ranges
from wmplan.tasks import load_code, task_entry
from wmplan.writing import is_empty


@dataclass(frozen=True)
class WallWalkConfig:
    """PLDM-style random walks of the Wall dot."""

    steps: int = 50
    """Env steps per episode (an episode stores steps + 1 frames)."""
    turn_kappa: float = 5.0
    """Concentration of the von Mises turning angle added to the heading each step (larger: straighter)."""
    step_mean: float = 1.0
    """Mean of the truncated-normal step length, in pixels."""
    step_std: float = 0.6
    step_min: float = 0.2
    step_max: float = 1.8

    def check(self) -> None:
        """Refuse settings that cannot make an episode, naming them: the step lengths are drawn from
        N(step_mean, step_std) until they land in (step_min, step_max), which must hold enough of it."""
        check_ranges(self, {"steps": 1, "turn_kappa": 0, "step_min": 0}, ("step_std",), prefix="collector setting ")
        check_interval("step_min", self.step_min, "step_max", self.step_max, strict=True)
        share = _normal_share(self.step_mean, self.step_std, self.step_min, self.step_max)
        if share < MIN_DRAW_SHARE:
            raise ValueError(
                f"step_min ({self.step_min}) and step_max ({self.step_max}) hold {share:.2g} of the step lengths "
                f"N(step_mean={self.step_mean}, step_std={self.step_std}) draws, too few to collect; move "
                "step_mean between them or widen them"
            )


MIN_DRAW_SHARE = 1e-3
"""The least share of the normal that the step-length range must hold (beyond it a batch's steps take
thousands of redraws each)."""


def _normal_share(mean: float, std: float, low: float, high: float) -> float:
    """P(low < X < high) for X ~ N(mean, std)."""
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    return cdf(high) - cdf(low)


def _truncated_normal(rng: np.random.Generator, mean: float, std: float, lo: float, hi: float, n: int) -> np.ndarray:
    out = rng.normal(mean, std, n)
    bad = (out < lo) | (out > hi)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < lo) | (out > hi)
    return out


def _free_positions(task: WallTask, rng: np.random.Generator, layout: np.ndarray) -> np.ndarray:
    """One uniformly drawn free position (not in a solid) per layout row."""
    n = len(layout)
    pos = np.zeros((n, 2))
    todo = np.arange(n)
    size = task.image_size
    while len(todo):
        pos[todo] = rng.uniform(0, size - 1, (len(todo), 2))
        todo = todo[task.in_solid(pos[todo], layout[todo])]
    return pos


def random_walk_wall(task: WallTask, rng: np.random.Generator, n: int, cfg: WallWalkConfig) -> dict[str, np.ndarray]:
    """n episodes of random walks at once; arrays (n, steps + 1, ...), the last action NaN."""
    layout = task.sample_layout(rng, n)
    task.reset_to(_free_positions(task, rng, layout), layout)
    heading = rng.uniform(0, 2 * np.pi, n)
    states, images, actions = [task.get_state()], [task.render()], []
    for _ in range(cfg.steps):
        heading = heading + rng.vonmises(0.0, cfg.turn_kappa, n)
        length = _truncated_normal(rng, cfg.step_mean, cfg.step_std, cfg.step_min, cfg.step_max, n)
        action = (length / task.config.action_scale)[:, None] * np.stack([np.cos(heading), np.sin(heading)], 1)
        actions.append(action)
        states.append(task.step(action))
        images.append(task.render())
    out = episode_arrays(task, states, images, actions)
    if task.config.random_layout:
        out["layout"] = np.repeat(layout[:, None], cfg.steps + 1, axis=1).astype(np.float32)
    return out


def collector(env: str) -> tuple[Callable[..., dict[str, np.ndarray]], type]:
    """Task `env`'s collector and its settings class, as registered with it (wmplan.tasks.register_task)."""
    entry = task_entry(env)
    return load_code(entry.collector), load_code(entry.collector_config)


def collect(
    env: str,
    out: str | Path,
    *,
    episodes: int,
    seed: int = 0,
    overwrite: bool = False,
    append: bool = False,
    task_settings: dict[str, Any] | None = None,
    collector_settings: dict[str, Any] | None = None,
    batch: int = 64,
    commit_every: int = 16,
    progress: bool = True,
) -> TrajectoryStore:
    """Collect `episodes` episodes of task `env` into the store at `out`.

    Episodes are simulated `batch` at a time and committed `commit_every` at a time (an interrupt
    loses at most the episodes of one commit); the random stream of each
    batch is seeded by (seed, index of its first episode), so a run is a pure function of its
    arguments. With `append`, the task settings come from the existing store."""
    policy, cfg_type = collector(env)  # first: an unknown task is named before any other complaint
    if overwrite and append:
        raise ValueError("--overwrite and --append exclude each other")
    if episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {episodes}")
    cfg = typed_dataclass(cfg_type, collector_settings or {}, f"collector settings of {env}")  # checked: cfg.check()
    if seed < 0:
        raise ValueError(f"--seed must be at least 0, got {seed}")
    if append and not is_empty(out):
        store = TrajectoryStore.open(out, mode="r+", task=env)
        task = make_task(env, store.task_settings)
        # compared as stored: JSON turns a config's tuples into lists
        if store.attrs.get("collector", {}).get("config") not in (None, json.loads(json.dumps(asdict(cfg)))):
            raise DatasetError(
                f"{out} was collected with other collector settings: {store.attrs['collector']['config']}"
            )
    else:
        task = make_task(env, task_settings)
        extra: dict[str, tuple[tuple[int, ...], str]] | None = (
            {"layout": ((2,), "float32")} if getattr(task.config, "random_layout", False) else None
        )
        store = TrajectoryStore.create(
            out,
            task,
            frames_per_episode=cfg.steps + 1,
            extra_keys=extra,
            overwrite=overwrite,
            collector={"name": policy.__name__, "config": asdict(cfg), "seed": seed},
        )
    first = store.n_episodes
    with tqdm(total=episodes, desc=f"collect {env}", unit="ep", disable=not progress) as bar:
        for begin in range(first, first + episodes, batch):
            n = min(batch, first + episodes - begin)
            rng = np.random.default_rng([seed, begin])
            data = policy(task, rng, n, cfg)
            for first_in_commit in range(0, n, commit_every):
                chunk = range(first_in_commit, min(n, first_in_commit + commit_every))
                store.append_episodes([{k: v[i] for k, v in data.items()} for i in chunk])
                bar.update(len(chunk))
    return store
