"""Resuming a long job: a finished run is recognised without loading its dataset; anything else trains."""

import json
import shutil

import pytest

from wmplan.config import apply_overrides, preset
from wmplan.experiments import cell_jobs, resumable
from wmplan.training.trainer import train


@pytest.fixture
def finished(wall_store, tmp_path):
    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "model.encoder.name": "state",
            "train.epochs": 2,
            "train.steps_per_epoch": 5,
        },
    )
    out = tmp_path / "base"
    train(cfg, out, progress=False)
    return cfg, out


def test_a_finished_run_is_left_alone_without_training(finished, monkeypatch):
    cfg, out = finished
    model_bytes = (out / "model.safetensors").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("train was called on a finished run")

    monkeypatch.setattr(resumable, "train", no_training)
    assert resumable.finished_run(cfg, out)
    resumable.train_once(cfg, out, progress=False)
    assert (out / "model.safetensors").read_bytes() == model_bytes


def test_more_epochs_another_setting_or_a_torn_checkpoint_is_not_finished(finished, tmp_path):
    cfg, out = finished
    assert not resumable.finished_run(apply_overrides(cfg, {"train.epochs": 3}), out)
    assert not resumable.finished_run(apply_overrides(cfg, {"train.lr_predictor": 0.0123}), out)
    torn = tmp_path / "torn"
    shutil.copytree(out, torn)
    (torn / "model.safetensors").write_bytes(b"half a file")
    assert not resumable.finished_run(cfg, torn)
    assert not resumable.finished_run(cfg, tmp_path / "nothing here")


def test_more_epochs_resume_the_run(finished):
    cfg, out = finished
    longer = apply_overrides(cfg, {"train.epochs": 3})
    resumable.train_once(longer, out, progress=False)
    assert resumable.finished_run(longer, out)


def test_an_eval_cell_is_kept_while_its_run_is_unchanged_and_planned_again_once_it_is_retrained(
    finished, tmp_path, capsys, monkeypatch
):
    from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
    from wmplan.models.run_folder import RunFolder

    cfg, out = finished
    cell = EvalConfig(planner="adam", episodes=2, settings=PlannerSettings(steps=2))

    def evaluate():
        return resumable.evaluate_cells({"cell": (out, cell, tmp_path / "cell")}, 1, False, "cpu")["cell"]

    first = evaluate()
    assert (first["run_fingerprint"], first["run_epoch"]) == (RunFolder(out).state().fingerprint, 2)
    with monkeypatch.context() as patch:
        patch.setattr(cell_jobs, "plan_cell", lambda *a, **k: pytest.fail("a finished cell was planned again"))
        assert evaluate() == first
    capsys.readouterr()

    resumable.train_once(apply_overrides(cfg, {"train.epochs": 3}), out, progress=False)  # a demo --resume retrains
    again = evaluate()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has changed since this cell was planned" in err and str(tmp_path / "cell") in err
    assert again["run_epoch"] == 3 and again["run_fingerprint"] == RunFolder(out).state().fingerprint
    assert json.loads((tmp_path / "cell" / "summary.json").read_text())["run_epoch"] == 3


def test_a_killed_finetuning_is_resumed_from_its_last_checkpoint(finished, kill_at_epoch):
    from wmplan.training.finetune import finetune

    _, base = finished
    target = base.with_name("adversarial")
    length = {"train.epochs": 2, "train.steps_per_epoch": 3}
    with kill_at_epoch(1):
        finetune(base, target.with_name("adversarial.partial"), "adversarial", length, preset=None, progress=False)
    epoch_0 = (target.with_name("adversarial.partial") / "metrics.csv").read_text().splitlines()[1]
    resumable.finetune_once(base, target, "adversarial", length, progress=False)
    rows = (target / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1] == epoch_0  # epoch 0 kept as it was (its seconds too), epoch 1 trained
    assert not target.with_name("adversarial.partial").exists()
