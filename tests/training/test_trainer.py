import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wmplan.cli import main
from wmplan.config import apply_overrides, preset
from wmplan.models.world_model import WorldModel
from wmplan.training import trainer as trainer_module
from wmplan.training.trainer import TrainingError, train


def _cfg(store, **overrides):
    base = {"data.path": str(store.path), "model.encoder.name": "state", "train.steps_per_epoch": 25}
    return apply_overrides(preset("tiny", "wall"), {**base, **overrides})


def _metrics(run):
    return list(csv.DictReader((run / "metrics.csv").open()))


def test_a_tiny_model_beats_the_copy_last_frame_baseline(wall_store, tmp_path):
    train(_cfg(wall_store, **{"train.epochs": 4, "train.steps_per_epoch": 150}), tmp_path / "run", progress=False)
    rows = _metrics(tmp_path / "run")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    last = rows[-1]
    assert float(last["val_loss"]) < 0.5 * float(last["val_baseline_loss"])
    assert float(rows[-1]["val_loss"]) < float(rows[0]["val_loss"])
    meta = json.loads((tmp_path / "run" / "config.json").read_text())
    assert meta["dims"]["task"] == "wall" and len(meta["dataset"]["fingerprint"]) == 16
    assert meta["dataset"]["path"] == str(wall_store.path)
    assert json.loads((tmp_path / "run" / "encoder.json").read_text())["latent_distance_spearman"] > 0.99
    WorldModel.load(tmp_path / "run", task="wall")


def test_resume_ends_where_an_uninterrupted_run_ends(wall_store, tmp_path):
    cfg = _cfg(wall_store, **{"train.epochs": 3, "data.num_hist": 2})
    train(cfg, tmp_path / "full", progress=False)
    train(apply_overrides(cfg, {"train.epochs": 1}), tmp_path / "cut", progress=False)
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    full, cut = (
        load_file(str(tmp_path / "full" / "model.safetensors")),
        load_file(str(tmp_path / "cut" / "model.safetensors")),
    )
    for key in full:
        torch.testing.assert_close(full[key], cut[key], rtol=0, atol=0)
    assert _metrics(tmp_path / "full") == [
        dict(r, seconds=f["seconds"]) for r, f in zip(_metrics(tmp_path / "cut"), _metrics(tmp_path / "full"))
    ]


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(wall_store, tmp_path, monkeypatch):
    cfg = _cfg(wall_store, **{"train.epochs": 3})
    calls = {"n": 0}
    real_loss = WorldModel.loss

    def loss_that_breaks(self, batch):
        out = real_loss(self, batch)
        calls["n"] += 1
        if self.training and calls["n"] > 30:  # inside the second epoch
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(WorldModel, "loss", loss_that_breaks)
    with pytest.raises(TrainingError, match="nan at epoch 1.*last good checkpoint"):
        train(cfg, tmp_path / "run", progress=False)
    assert [r["epoch"] for r in _metrics(tmp_path / "run")] == ["0"]
    WorldModel.load(tmp_path / "run")  # the epoch-0 checkpoint is intact


def test_resume_with_another_dataset_and_overwriting_a_run_are_refused(wall_store, tmp_path):
    cfg = _cfg(wall_store, **{"train.epochs": 1})
    train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)
    from wmplan.data.collect import collect

    other = collect("wall", tmp_path / "other", episodes=4, seed=99, progress=False)
    with pytest.raises(TrainingError, match="not the dataset"):
        train(apply_overrides(cfg, {"data.path": str(other.path)}), tmp_path / "run", resume=True, progress=False)


def test_cli_train_with_the_conv_encoder_and_an_unknown_set_key(wall_store, tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--data",
                str(wall_store.path),
                "--out",
                str(tmp_path / "bad"),
                "--preset",
                "tiny",
                "--set",
                "train.epoch=1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "train.epoch" in err and "train.epochs" in err
    code = main(
        [
            "train",
            "--data",
            str(wall_store.path),
            "--out",
            str(tmp_path / "run"),
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--set",
            "train.steps_per_epoch=5",
            "--set",
            "model.encoder.pretrain_steps=20",
        ]
    )
    assert code == 0
    assert {"config.json", "model.safetensors", "normalization.json", "metrics.csv", "encoder.json"} <= {
        p.name for p in (tmp_path / "run").iterdir()
    }
    assert "latent_distance_spearman" in json.loads((tmp_path / "run" / "encoder.json").read_text())


def test_ddp_with_two_gloo_processes_runs(wall_store, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "wmplan.cli",
        "train",
        "--data",
        str(wall_store.path),
        "--out",
        str(tmp_path / "ddp"),
        "--preset",
        "tiny",
        "--encoder",
        "state",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--set",
        "train.steps_per_epoch=4",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["epoch"] for r in _metrics(tmp_path / "ddp")] == ["0", "1"]


def test_cosine_schedule_decays_to_zero_and_a_typo_fails_before_anything_is_written(wall_store, tmp_path):
    assert trainer_module.lr_factor("constant", 7, 10) == 1.0
    factors = [trainer_module.lr_factor("cosine", s, 10) for s in range(11)]
    assert factors[0] == 1.0 and factors[5] == pytest.approx(0.5) and factors[10] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(factors, factors[1:]))
    seen = []
    original = torch.optim.AdamW.step

    def record(self, *args, **kwargs):  # the learning rate each optimizer step uses
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.AdamW, "step", record)
        train(_cfg(wall_store, **{"train.epochs": 2, "train.lr_schedule": "cosine"}), tmp_path / "run", progress=False)
    base = preset("tiny", "wall").train.lr_predictor
    assert len(seen) == 50 and seen[0] == pytest.approx(base) and seen[-1] < 0.01 * base
    with pytest.raises(ValueError, match="constant or cosine"):
        train(_cfg(wall_store, **{"train.lr_schedule": "cosin"}), tmp_path / "typo", progress=False)
    assert not (tmp_path / "typo").exists()


def test_bf16_training_autocasts_the_predictor_and_says_so(wall_store, tmp_path, monkeypatch):
    from wmplan import precision

    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))  # autocast runs on any CPU
    from wmplan.models.predictor import FrameCausalPredictor

    seen = []  # the predictor's output dtype in the training steps (validation stays fp32)
    forward = FrameCausalPredictor.forward

    def recorded(self, tokens):
        out = forward(self, tokens)
        if self.training:
            seen.append(out.dtype)
        return out

    monkeypatch.setattr(FrameCausalPredictor, "forward", recorded)
    train(_cfg(wall_store, **{"train.epochs": 1, "train.precision": "auto"}), tmp_path / "run", progress=False)
    assert set(seen) == {torch.bfloat16}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "bf16"
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert {w.dtype for w in weights.values()} == {torch.float32}  # parameters and optimizer stay fp32
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    with pytest.raises(ValueError, match="lacks the amx_bf16 or avx512_bf16 instructions"):
        train(_cfg(wall_store, **{"train.epochs": 1, "train.precision": "bf16"}), tmp_path / "forced", progress=False)
    assert not (tmp_path / "forced" / "model.safetensors").exists()


def test_a_config_stored_before_precision_existed_reads_as_the_precision_it_trained_in():
    from wmplan.config import RunConfig

    stored = preset("tiny", "wall").to_dict()
    del stored["train"]["precision"]
    assert RunConfig.from_dict({**stored, "train": {**stored["train"], "bf16": False}}).train.precision == "fp32"
    assert RunConfig.from_dict({**stored, "train": {**stored["train"], "bf16": True}}).train.precision == "bf16"


def test_a_run_stored_before_online_share_existed_resumes_as_the_fixed_share(wall_store):
    from wmplan.training.trainer import resume_conflicts

    cfg = _cfg(wall_store, **{"train.epochs": 2})
    stored = cfg.to_dict()
    del stored["online"]["share"]  # how such a run was written: online_fraction in every batch
    assert resume_conflicts(stored, cfg) == []
    assert resume_conflicts(stored, apply_overrides(cfg, {"online.share": "growing"})) == ["online.share"]


def test_a_run_stored_with_train_bf16_resumes_as_the_same_config(wall_store, tmp_path):
    from wmplan.training.trainer import resume_conflicts

    cfg = _cfg(wall_store, **{"train.epochs": 2})
    stored = cfg.to_dict()
    del stored["train"]["precision"]
    stored["train"]["bf16"] = False  # how such a run was written
    assert resume_conflicts(stored, cfg) == []
    stored["train"]["bf16"] = True  # trained under CUDA autocast: not the fp32 asked for
    assert resume_conflicts(stored, cfg) == ["train.precision"]
