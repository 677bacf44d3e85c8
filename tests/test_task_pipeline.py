"""Every registered task goes through the pipeline at toy scale: collect, info, train, finetune, eval
(with its distance and CI) and landscape (gap needs longer held-out episodes than a toy dataset has)."""

import json

import numpy as np
import pytest

from wmplan.cli import main
from wmplan.envs import make_task, task_names

TASKS = ["pointmaze", "pusht", "rope", "granular"]


def test_every_task_is_registered_with_gymnasium():
    import gymnasium

    assert set(TASKS) <= set(task_names())
    for name in ("PointMaze", "PushT", "Rope", "Granular"):
        env = gymnasium.make(f"wmplan/{name}-v0")
        obs, _ = env.reset(seed=0)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        obs, *_ = env.step(env.action_space.sample())
        assert obs.shape == (64, 64, 3)
        env.close()


@pytest.mark.parametrize("task", TASKS)
def test_task_runs_through_collect_train_finetune_eval(task, tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    steps = 25 if task in ("pointmaze", "pusht") else 6  # frameskip 5 x (3 + 1) frames, or 1 x (1 + 1)
    assert (
        main(["collect", "--env", task, "--episodes", "6", "--out", str(data), "--collector-set", f"steps={steps}"])
        == 0
    )
    assert main(["info", str(data), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["task"] == task and info["episodes"] == 6
    encoder = (
        "particles" if task in ("rope", "granular") else "state"
    )  # the particle tasks' control: a token per particle
    assert (
        main(
            [
                "train",
                "--data",
                str(data),
                "--out",
                str(run),
                "--preset",
                "tiny",
                "--encoder",
                encoder,
                "--set",
                "train.epochs=1",
                "--set",
                "train.steps_per_epoch=3",
                "--set",
                "train.batch_size=8",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "finetune",
                "--method",
                "adversarial",
                "--run",
                str(run),
                "--out",
                str(tmp_path / "adv"),
                "--preset",
                "tiny",
                "--set",
                "train.steps_per_epoch=2",
                "--set",
                "train.batch_size=8",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                "--run",
                str(tmp_path / "adv"),
                "--planner",
                "cem",
                "--mpc",
                "--episodes",
                "2",
                "--out",
                str(tmp_path / "eval"),
                "--set",
                "planner.samples=16",
                "--set",
                "planner.topk=4",
                "--set",
                "planner.iterations=2",
                "--set",
                "mpc.replans=2",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    low, high = summary["final_distance_ci95"]
    assert low <= summary["mean_final_distance"] <= high
    assert summary["distance"] == make_task(task).distance_name
    final = np.array(
        [json.loads(line)["final"] for line in (tmp_path / "eval" / "episodes.jsonl").read_text().splitlines()]
    )
    assert final.shape == (2, make_task(task).state_dim)
    assert (
        main(
            [
                "landscape",
                "--run",
                str(run),
                "--run",
                str(tmp_path / "adv"),
                "--grid",
                "5",
                "--out",
                str(tmp_path / "land"),
            ]
        )
        == 0
    )
    assert (tmp_path / "land" / "landscape.png").exists()
