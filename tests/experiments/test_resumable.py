"""Resuming a long job: a finished run is recognised without loading its dataset; anything else trains."""

import shutil

import pytest

from wmplan.config import apply_overrides, preset
from wmplan.experiments import resumable
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
