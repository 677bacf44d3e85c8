"""Sharded evaluation: torchrun ranks plan the batches of episodes side by side and rank 0 writes the
same files as one process planning the same batches (timing fields aside)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from wmplan.cli import main
from wmplan.evaluation.episodes import batches_of, evaluate
from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
from wmplan.evaluation.summary import EpisodeOutcomes

TIMING = {"seconds_per_plan", "planning_seconds_total", "seconds_per_plan_note", "planning_seconds"}


def _eval_args(run, *extra):
    return [
        "eval",
        "--model",  # torchrun takes --run for its own --run-path
        str(run),
        "--planner",
        "hybrid",  # CEM, then Adam from its mean: both planners' random draws and gradients
        "--mpc",
        "--episodes",
        "5",
        "--seed",
        "3",
        "--set",
        "planner.samples=12",
        "--set",
        "planner.topk=3",
        "--set",
        "planner.steps=4",
        "--set",
        "mpc.replans=2",
        "--device",
        "cpu",
        "--video",
        "4",
        *extra,
    ]


def _files(folder):
    summary = json.loads((folder / "summary.json").read_text())
    rows = [json.loads(line) for line in (folder / "episodes.jsonl").read_text().splitlines()]
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    return drop(summary), [drop(r) for r in rows], summary


def test_two_gloo_processes_write_the_single_process_files(tiny_run, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun gives each rank
    single = [sys.executable, "-m", "wmplan.cli", *_eval_args(tiny_run, "--batch", "3", "--out", str(tmp_path / "one"))]
    proc = subprocess.run(single, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sharded = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    sharded += ["wmplan.cli", *_eval_args(tiny_run, "--out", str(tmp_path / "two"))]  # batch: ceil(5 / 2) = 3
    proc = subprocess.run(sharded, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("success") == 1  # rank 0 alone reports

    one, one_rows, one_full = _files(tmp_path / "one")
    two, two_rows, two_full = _files(tmp_path / "two")
    assert one == two and one_rows == two_rows
    assert two["batch"] == 3 and two["episodes"] == 5 and len(two_rows) == 5
    assert "2 processes" in two_full["seconds_per_plan_note"] and "2 processes" not in one_full["seconds_per_plan_note"]
    assert two_full["planning_calls"] == 2 and two_full["planning_seconds_total"] > 0
    for i in range(4):  # episodes 0-2 were planned by rank 0, episode 3 by rank 1
        gif = f"episode_{i:02d}.gif"
        assert (tmp_path / "one" / gif).read_bytes() == (tmp_path / "two" / gif).read_bytes()
    assert not (tmp_path / "two" / "episode_04.gif").exists()


def test_one_batch_of_all_episodes_is_the_default_and_batches_are_recorded(tiny_run):
    settings = PlannerSettings(steps=3)
    default = evaluate(tiny_run, EvalConfig(planner="adam", episodes=5, seed=2, settings=settings), progress=False)
    whole = evaluate(
        tiny_run, EvalConfig(planner="adam", episodes=5, seed=2, batch=9, settings=settings), progress=False
    )
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    assert drop(default) == drop(whole) and default["batch"] == 5
    pieces = evaluate(
        tiny_run, EvalConfig(planner="adam", episodes=5, seed=2, batch=2, settings=settings), progress=False
    )
    assert pieces["batch"] == 2 and pieces["planning_calls"] == 1  # one call for all episodes: 3 batches summed
    assert "2 episodes at a time" in pieces["seconds_per_plan_note"]
    # Other batch shapes may round differently, but every batch plans the same pairs with the same streams.
    np.testing.assert_allclose(pieces["episode_final_distance"], default["episode_final_distance"], atol=1e-3)


def test_batches_and_the_merge_of_shares():
    assert [b.tolist() for b in batches_of(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in batches_of(2, 5)] == [[0, 1]]

    def outcome(indices, seconds):
        n = len(indices)
        return EpisodeOutcomes(
            np.array(indices),
            np.zeros((n, 2)),
            np.ones(n, bool),
            np.zeros(n, bool),
            np.arange(n) + indices[0],
            seconds,
            [],
            np.full(n, len(seconds)),
            np.zeros(n, int),
        )

    rank0 = [outcome([0, 1], [1.0, 2.0]), outcome([4], [3.0, 4.0])]  # batches 0 and 2, one after the other
    rank1 = [outcome([2, 3], [5.0, 1.0])]
    merged = EpisodeOutcomes.merge([rank1, rank0, []])  # a rank with no batch sends an empty list
    assert merged.indices.tolist() == [0, 1, 2, 3, 4]
    assert merged.distance.tolist() == [0, 1, 2, 3, 4]
    assert merged.plan_seconds == [5.0, 6.0]  # per call: the slowest rank's sum over its batches
    # the paper protocol: a batch whose episodes all succeeded early made fewer calls (0 s for the missing ones)
    merged = EpisodeOutcomes.merge([[outcome([0], [1.0, 2.0, 3.0]), outcome([1], [4.0])]])
    assert merged.plan_seconds == [5.0, 2.0, 3.0] and merged.replans.tolist() == [3, 1]


def test_sharded_needs_a_process_group_and_batch_a_positive_size(tiny_run, tmp_path, capsys):
    with pytest.raises(RuntimeError, match="torchrun"):
        evaluate(tiny_run, EvalConfig(episodes=2), sharded=True, progress=False)
    assert (
        main(["eval", "--run", str(tiny_run), "--planner", "adam", "--batch", "0", "--out", str(tmp_path / "e")]) == 2
    )
    assert "--batch: must be at least 1" in capsys.readouterr().err and not (tmp_path / "e").exists()
