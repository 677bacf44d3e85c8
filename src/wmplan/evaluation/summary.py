"""summary.json of `wmplan eval`, typed: what `evaluate` returns and what the CLI and the reports read.

A TypedDict rather than a class: the summary is a JSON document first (users' own scripts read the
file), and the reports index it by these names; this declaration is the one place the keys are listed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from wmplan.evaluation.intervals import two_level_bootstrap
from wmplan.evaluation.paired import pair_clusters
from wmplan.evaluation.protocols import check_comparable
from wmplan.models.run_folder import notice


class EvalSummary(TypedDict):
    run: str
    """The run folder, or "(in memory)" for a model passed as an object."""
    run_fingerprint: str | None
    """Which run planned (models.run_folder.RunState): the sha256 of its checkpoint.json; a rerun of a sweep
    or demo plans a cell again when its run's fingerprint has changed since. None for a model in memory."""
    run_epoch: int | None
    """Epochs the run had trained (its last checkpoint's)."""
    run_epochs: int | None
    """Epochs its config asks for."""
    run_finished: bool | None
    """False for a run evaluated unfinished (`--allow-unfinished`): killed before its last epoch, or still
    being written."""
    task: str
    planner: str
    """gd, adam or cem."""
    mpc: bool
    protocol: str
    """fixed or paper (evaluation.protocols); open loop is recorded as fixed."""
    protocol_note: str
    """What the protocol means, in words (the paper protocol's loop uses the simulator's success test)."""
    episodes: int
    seed: int
    """Seed of the start/goal pairs and of the planners' random streams."""
    batch: int
    """Episodes planned at once (the results depend on it, never on how many processes shared the batches)."""
    success_rate: float
    """Share of episodes that meet the task's success criterion at the end of the budget."""
    ci95: list[float]
    """95% Wilson interval of success_rate."""
    reached_rate: float
    """Share that met it at any env step on the way (DINO-WM's evaluation stops there)."""
    mean_initial_distance: float
    mean_final_distance: float
    final_distance_ci95: list[float]
    distance: str
    """What the distance measures (px, position error, Chamfer distance)."""
    seconds_per_plan: float
    """Wall-clock of one batched planning call for all episodes, simulator excluded (several batches: their
    calls summed; batches sharded across processes: the slowest process's sum)."""
    planning_calls: int
    planning_seconds_total: float
    seconds_per_plan_note: str
    planner_config: dict[str, Any]
    mpc_config: dict[str, Any]
    """{"replans", "execute", "hold"}: open loop is one plan executed whole."""
    objective: dict[str, Any]
    """{"alpha", "mode" (last | all), "base"}."""
    simulator_early_stop: bool
    """True under the paper protocol, whose loop stops an episode where the simulator says it is reached
    (no planner ever asks the simulator); false under fixed."""
    mean_replans: float
    """Planning calls per episode, averaged (fixed: the budget; paper: those used before success or the cap)."""
    encoder: str
    precision: str
    """The predictor's precision while planning (bf16 | fp32; wmplan.precision)."""
    episode_success: list[bool]
    """Per episode, in the order of the pairs (episodes.jsonl has the states): for paired tests."""
    episode_final_distance: list[float]
    episode_reached: list[bool]
    episode_replans: list[int]
    episode_held: list[int]
    """mpc.hold: the planning calls after which the episode executed nothing (summaries before it lack it)."""


@dataclass
class EpisodeOutcomes:
    """How one batch of an eval's episodes ended: `indices` (n,) into the pair list, final states (n, S),
    success, reached and final distance (n,), each planning call's wall-clock, and the recorded frames
    (one (r, Hi, Wi, 3) array per env step, of the batch's first r episodes)."""

    indices: np.ndarray
    final: np.ndarray
    success: np.ndarray
    reached: np.ndarray
    distance: np.ndarray
    plan_seconds: list[float]
    frames: list[np.ndarray]
    replans: np.ndarray
    held: np.ndarray

    @classmethod
    def merge(cls, shares: list[list[EpisodeOutcomes]]) -> EpisodeOutcomes:
        """All episodes, in pair order, from each process's batches. A process plans its batches one
        after another and the processes run side by side, so a planning call for all episodes lasts, per
        call, the largest over processes of the sum over its batches."""
        batches = sorted((b for share in shares for b in share), key=lambda b: int(b.indices[0]))
        one = len(batches) == 1  # one batch in one process: exactly its own numbers
        cat = lambda name: getattr(batches[0], name) if one else np.concatenate([getattr(b, name) for b in batches])  # noqa: E731
        # The paper protocol's batches may stop after different numbers of calls: a missing call lasted 0 s.
        calls = [[sum(c) for c in _zip_longest(*(b.plan_seconds for b in share))] for share in shares if share]
        recorded = [b.frames for b in batches if b.frames]
        return cls(
            indices=cat("indices"),
            final=cat("final"),
            success=cat("success"),
            reached=cat("reached"),
            distance=cat("distance"),
            replans=cat("replans"),
            held=cat("held"),
            plan_seconds=calls[0] if len(calls) == 1 else [max(c) for c in _zip_longest(*calls)],
            frames=recorded[0] if len(recorded) == 1 else [np.concatenate(step) for step in zip(*recorded)],
        )


def _pooled_lists(summaries: list[EvalSummary], keys: tuple[str, ...]) -> dict[str, list]:
    """The per-episode lists `keys` concatenated seed after seed, where every summary has them (summaries
    written before a list existed lack it)."""
    return {
        key: [v for s in summaries for v in s[key]]  # type: ignore[literal-required]
        for key in keys
        if all(key in s for s in summaries)
    }


def planned_by(summary: Mapping[str, Any], fingerprint: str, where: Path, say: bool = True) -> bool:
    """Whether the finished eval in `where` (its `summary`) was planned by the run whose fingerprint is
    now `fingerprint` (models.run_folder.RunState); if not (and `say`), one line on stderr says it is
    planned again."""
    recorded = summary.get("run_fingerprint")
    if recorded == fingerprint or not say:
        return recorded == fingerprint
    was = f"fingerprint {recorded[:12]}" if recorded else "no run fingerprint recorded"
    notice(
        f"{where}: the run {summary.get('run')} has changed since this cell was planned ({was}, now "
        f"{fingerprint[:12]}); planning it again"
    )
    return False


def _pooled_run_record(summaries: list[EvalSummary]) -> dict[str, Any]:
    """The run_* keys of a cell pooled over seeds (None where a summary predates them)."""
    fingerprints = [s.get("run_fingerprint") for s in summaries]
    done = [s.get("run_epoch") for s in summaries]
    asked = [s.get("run_epochs") for s in summaries]
    finished = [s.get("run_finished") for s in summaries]
    return {
        "run_fingerprint": ", ".join(f for f in fingerprints if f) if all(fingerprints) else None,
        "run_epoch": min(e for e in done if e is not None) if None not in done else None,
        "run_epochs": max(e for e in asked if e is not None) if None not in asked else None,
        "run_finished": all(finished) if None not in finished else None,
    }


def _zip_longest(*lists: list[float]) -> list[tuple[float, ...]]:
    return list(itertools.zip_longest(*lists, fillvalue=0.0))


class PooledSummary(EvalSummary):
    """One cell planned by models trained with several seeds on the same pairs (`pool_over_seeds`)."""

    train_seeds: list[int]
    """The seeds, in the order in which the episode lists are concatenated."""
    seed_success_rates: list[float]
    """Each seed's success rate (their range is the spread over training seeds)."""
    seed_final_distances: list[float]
    """Each seed's mean final distance."""


POOLED_KEYS = ("train_seeds", "seed_success_rates", "seed_final_distances")


def seed_spread(summary: EvalSummary) -> dict[str, list] | None:
    """The per-seed lists of a summary pooled over two or more training seeds, else None."""
    pooled: dict[str, Any] = dict(summary)
    if len(pooled.get("train_seeds", [])) < 2:
        return None
    return {key: pooled[key] for key in POOLED_KEYS}


def pairs_of(summary: EvalSummary | PooledSummary) -> np.ndarray | None:
    """The start/goal pair of each episode of a cell pooled over seeds (the paired tests' clusters,
    evaluation.paired); None for a single seed's cell, whose episodes are its pairs."""
    seeds = len(summary.get("train_seeds") or [])  # type: ignore[arg-type]
    return pair_clusters(summary["episodes"] // seeds, seeds) if seeds > 1 else None


def pool_over_seeds(summaries: list[EvalSummary], seeds: list[int]) -> PooledSummary:
    """One summary for the same cell planned with models trained with each of `seeds` on the same
    pairs: episode lists concatenated seed after seed (so paired tests between two pooled cells pair
    each (seed, pair) with itself, and `pairs_of` gives each episode's pair for tests over pairs),
    rates and means over all of them (= the mean over seeds: each seed plans the same number of pairs),
    95% intervals by a two-level bootstrap (training seeds, then pairs: the seeds' episodes are not
    independent), each seed's own rate and distance kept. Refused for cells of different protocols or
    pair seeds. Times are per seed:
    seconds per plan averaged, totals summed. The runs' fingerprints are joined as their folders are;
    run_epoch is the fewest epochs any of them trained, run_epochs the most asked, run_finished whether
    all were finished."""
    if len(summaries) != len(seeds) or not summaries:
        raise ValueError(f"pool_over_seeds: {len(summaries)} summaries for seeds {seeds}")
    check_comparable(list(summaries), "pool_over_seeds")
    first = summaries[0]
    for s in summaries[1:]:
        if (s["task"], s["planner"], s["mpc"], s["episodes"], s["seed"]) != (
            first["task"],
            first["planner"],
            first["mpc"],
            first["episodes"],
            first["seed"],
        ):
            raise ValueError("pool_over_seeds: the summaries are not the same cell on the same pairs")
    success = np.concatenate([np.asarray(s["episode_success"], bool) for s in summaries])
    distance = np.concatenate([np.asarray(s["episode_final_distance"], float) for s in summaries])
    # The seeds replan the same pairs: resample seeds, then pairs, so the interval holds both spreads.
    pairs, seed_of = pair_clusters(first["episodes"], len(seeds)), np.repeat(np.arange(len(seeds)), first["episodes"])
    return {
        **first,
        "run": ", ".join(s["run"] for s in summaries),
        **_pooled_run_record(summaries),  # type: ignore[typeddict-item]
        "episodes": len(success),
        "success_rate": float(success.mean()),
        "ci95": list(two_level_bootstrap(success.astype(float), pairs, seed_of)),
        "reached_rate": float(np.mean([s["reached_rate"] for s in summaries])),
        "mean_final_distance": float(distance.mean()),
        "final_distance_ci95": list(two_level_bootstrap(distance, pairs, seed_of)),
        "seconds_per_plan": float(np.mean([s["seconds_per_plan"] for s in summaries])),
        "planning_calls": sum(s["planning_calls"] for s in summaries),
        "planning_seconds_total": float(sum(s["planning_seconds_total"] for s in summaries)),
        "episode_success": success.tolist(),
        "episode_final_distance": distance.tolist(),
        **_pooled_lists(summaries, ("episode_reached", "episode_replans")),  # type: ignore[typeddict-item]
        "mean_replans": float(np.mean([s.get("mean_replans", np.nan) for s in summaries])),
        "train_seeds": list(seeds),
        "seed_success_rates": [s["success_rate"] for s in summaries],
        "seed_final_distances": [s["mean_final_distance"] for s in summaries],
    }
