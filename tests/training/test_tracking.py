"""--log: TensorBoard event files hold what metrics.csv holds; wandb gets the same numbers; csv adds nothing."""

import csv
import json
import sys
import types

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wmplan.config import apply_overrides, preset
from wmplan.tracking import open_tracker
from wmplan.training.finetune import finetune
from wmplan.training.trainer import train


def _tiny(wall_store, epochs=2):
    overrides = {"data.path": str(wall_store.path), "model.encoder.name": "state", "train.epochs": epochs}
    return apply_overrides(preset("tiny", "wall"), {**overrides, "train.steps_per_epoch": 5})


def test_tensorboard_events_equal_the_metrics_csv(wall_store, tmp_path):
    train(_tiny(wall_store), tmp_path / "run", progress=False, log="tensorboard")
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    for tag, column in (("train/loss", "train_loss"), ("val/loss", "val_loss")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [int(r["step"]) for r in rows]
        np.testing.assert_allclose([e.value for e in logged], [float(r[column]) for r in rows], rtol=1e-6)
    assert "config" in str(events.Tags()["tensors"])  # the run's config, as text


def test_wandb_receives_each_epoch_and_finishes(wall_store, tiny_run, tmp_path, monkeypatch):
    calls = []

    class FakeRun:
        def log(self, values, step):
            calls.append(("log", step, sorted(values)))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw["project"], kw["name"])) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_PROJECT", "wm-test")
    finetune(
        tiny_run,
        tmp_path / "adv",
        "adversarial",
        {"train.steps_per_epoch": 3},
        preset="tiny",
        progress=False,
        log="wandb",
    )
    epochs = len(list(csv.DictReader((tmp_path / "adv" / "metrics.csv").open())))
    assert calls[0] == ("init", "wm-test", "adv") and calls[-1] == ("finish",)
    logged = [c for c in calls if c[0] == "log"]
    assert len(logged) == epochs and logged[0][2] == ["train/loss", "val/copy_last_frame_loss", "val/loss"]


def test_csv_writes_nothing_more_and_a_missing_package_is_named_before_any_work(tmp_path, monkeypatch):
    with open_tracker("csv", tmp_path / "out") as tracker:
        tracker.scalars(0, {"x": 1.0})
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "wandb", None)  # an import of it now fails
    with pytest.raises(ImportError, match="pip install wandb"):
        open_tracker("wandb", tmp_path / "out")
    with pytest.raises(ValueError, match="unknown --log 'mlflow'"):
        open_tracker("mlflow", tmp_path / "out")


def test_eval_logs_its_summary_to_tensorboard(tiny_run, tmp_path):
    from wmplan.cli import main

    out = tmp_path / "eval"
    argv = ["eval", "--run", str(tiny_run), "--planner", "adam", "--episodes", "2", "--out", str(out)]
    assert main([*argv, "--set", "planner.steps=3", "--log", "tensorboard"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    for key in ("success_rate", "mean_final_distance"):
        (logged,) = events.Scalars(f"eval/{key}")
        assert logged.step == 0 and logged.value == pytest.approx(summary[key], rel=1e-6)


def test_figures_and_rollouts_reach_tensorboard_as_images(tiny_run, tmp_path):
    from wmplan.cli import main

    gap_out, eval_out = tmp_path / "gap", tmp_path / "eval"
    assert main(["gap", "--run", str(tiny_run), "--episodes", "3", "--out", str(gap_out), "--log", "tensorboard"]) == 0
    argv = [
        "eval",
        "--run",
        str(tiny_run),
        "--planner",
        "cem",
        "--episodes",
        "2",
        "--video",
        "1",
        "--out",
        str(eval_out),
    ]
    assert (
        main(
            [
                *argv,
                "--set",
                "planner.iterations=1",
                "--set",
                "planner.samples=10",
                "--set",
                "planner.topk=2",
                "--log",
                "tensorboard",
            ]
        )
        == 0
    )
    for folder, tag in ((gap_out, "gap"), (eval_out, "eval/episode_00")):
        events = EventAccumulator(str(folder / "tensorboard"))
        events.Reload()
        assert tag in events.Tags()["images"], events.Tags()["images"]
