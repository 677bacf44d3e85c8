"""Bad input through the command line: each gets a one-line error (exit 2) that names the problem, and
nothing already written is lost."""

import json
import os
import shutil

import numpy as np
import pytest

from wmplan.cli import main
from wmplan.data.collect import collect
from wmplan.data.store import DatasetError, TrajectoryStore


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


def test_overwrite_never_deletes_the_current_folder_a_file_or_a_foreign_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    (tmp_path / "plain").write_text("mine")
    monkeypatch.chdir(tmp_path / "notes")
    for out, why in ((".", "holds the current folder"), ("..", "holds the current folder"),
                     (str(tmp_path / "plain"), "is a file"), (str(tmp_path / "other"), "not a wmplan dataset")):
        assert main(["collect", "--env", "wall", "--episodes", "2", "--overwrite", "--out", out]) == 2
        assert why in _error(capsys)
    assert all((tmp_path / p).read_text() == "mine" for p in ("notes/keep.txt", "other/keep.txt", "plain"))
    assert main(["collect", "--env", "wall", "--episodes", "2", "--out", str(tmp_path / "d")]) == 0
    assert main(["collect", "--env", "wall", "--episodes", "3", "--overwrite", "--out", str(tmp_path / "d")]) == 0
    assert TrajectoryStore.open(tmp_path / "d").n_episodes == 3  # a wmplan dataset may be replaced


def test_task_and_collector_settings_are_typed_and_range_checked(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["collect", "--env", "wall", "--episodes", "2", "--out", out, "--task-set", "random_layout=False"]) == 0
    store = TrajectoryStore.open(out)
    assert store.task_settings["random_layout"] is False and "layout" not in store.keys  # fixed layouts
    for setting, message in (("--task-set", "random_layout=maybe"), ("--task-set", "door_height=abc"),
                             ("--task-set", "door_height=1000"), ("--task-set", "colour=red"),
                             ("--collector-set", "steps=0"), ("--collector-set", "steps=abc"), ("--collector-set", "speed=3")):
        assert main(["collect", "--env", "wall", "--episodes", "2", "--out", str(tmp_path / "x"), setting, message]) == 2, message
        err = _error(capsys)
        key = message.split("=")[0]
        assert key in err, (message, err)
    assert not (tmp_path / "x").exists()  # refused before anything was created
    capsys.readouterr()
    main(["collect", "--env", "wall", "--episodes", "2", "--out", str(tmp_path / "x"), "--collector-set", "speed=3"])
    assert "turn_kappa" in _error(capsys)  # an unknown key lists the valid ones


@pytest.mark.parametrize("setting, key", [("train.lr_predictor=-1", "train.lr_predictor"), ("data.frameskip=0", "data.frameskip"),
                                          ("model.predictor.heads=0", "model.predictor.heads"), ("train.epochs=1.5", "train.epochs"),
                                          ("train.bf16=maybe", "train.bf16")])
def test_run_settings_out_of_range_are_refused_before_training(wall_store, tmp_path, capsys, setting, key):
    assert main(["train", "--data", str(wall_store.path), "--out", str(tmp_path / "r"), "--preset", "tiny", "--set", setting]) == 2
    assert key in _error(capsys)
    assert not (tmp_path / "r").exists()


def test_eval_settings_and_a_file_out_are_refused_before_planning(tiny_run, tmp_path, capsys, monkeypatch):
    from wmplan.planning.mpc import MPC

    monkeypatch.setattr(MPC, "run", lambda *a, **k: pytest.fail("planned before refusing"))
    (tmp_path / "file").write_text("x")
    for extra, key in ((["--set", "mpc.replans=0"], "mpc.replans"), (["--episodes", "0"], "episodes"),
                       (["--set", "planner.topk=500"], "planner.topk")):
        assert main(["eval", "--run", str(tiny_run), "--planner", "cem", "--mpc", "--out", str(tmp_path / "e"), *extra]) == 2
        assert key in _error(capsys)
    assert main(["eval", "--run", str(tiny_run), "--planner", "adam", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in _error(capsys)
    assert not (tmp_path / "e").exists()


def test_info_verify_names_a_deleted_and_a_garbled_chunk_and_training_refuses_a_deleted_one(tmp_path, capsys):
    collect("wall", tmp_path / "d", episodes=4, seed=0, progress=False)
    assert main(["info", "--verify", str(tmp_path / "d")]) == 0
    os.remove(tmp_path / "d" / "data" / "obs" / "c" / "2" / "0" / "0" / "0")
    (tmp_path / "d" / "data" / "state" / "c" / "0" / "0").write_bytes(b"garbage")
    assert main(["info", "--verify", str(tmp_path / "d")]) == 1
    out = capsys.readouterr().out
    assert "data/obs chunk c/2/0/0/0 (frames 102-152, episodes 2-2): missing" in out
    assert "data/state chunk c/0/0" in out and "cannot be decoded" in out
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    assert "chunk file(s) missing" in _error(capsys)


def test_non_finite_or_absurd_values_are_refused_with_the_episode(tmp_path, rng):
    from wmplan.envs import make_task

    store = TrajectoryStore.create(tmp_path / "d", make_task("wall"), frames_per_episode=3)
    episode = {"obs": np.zeros((3, 64, 64, 3), np.uint8), "state": np.ones((3, 2), np.float32),
               "proprio": np.ones((3, 2), np.float32), "action": np.array([[0, 0], [0, 0], [np.nan, np.nan]], np.float32)}
    store.append_episode(episode)  # the trailing NaN action is the format's own
    with pytest.raises(DatasetError, match="episode 1: data/action"):
        store.append_episode({**episode, "action": np.array([[1e30, 0], [0, 0], [np.nan, np.nan]], np.float32)})
    assert TrajectoryStore.open(tmp_path / "d").n_episodes == 1


def test_a_moved_dataset_is_found_with_data_and_checked_by_fingerprint(wall_store, tiny_run, tmp_path, capsys):
    moved_run = tmp_path / "run"
    shutil.copytree(tiny_run, moved_run)
    meta = json.loads((moved_run / "config.json").read_text())
    meta["dataset"]["path"] = meta["config"]["data"]["path"] = str(tmp_path / "gone")  # as if the dataset had moved
    (moved_run / "config.json").write_text(json.dumps(meta))
    (moved_run / "checkpoint.json").unlink()  # edited by hand: no longer the set its manifest names
    for name in [p for p in moved_run.iterdir() if p.name.startswith(".checkpoint-")]:
        shutil.rmtree(name)
    assert main(["gap", "--run", str(moved_run), "--out", str(tmp_path / "g"), "--episodes", "4"]) == 2
    assert "--data" in _error(capsys)
    other = collect("wall", tmp_path / "other", episodes=8, seed=9, progress=False)
    assert main(["gap", "--run", str(moved_run), "--out", str(tmp_path / "g2"), "--episodes", "4", "--data", str(other.path)]) == 2
    assert "not the dataset" in _error(capsys)
    assert main(["gap", "--run", str(moved_run), "--out", str(tmp_path / "g3"), "--episodes", "4", "--data", str(wall_store.path)]) == 0
    assert main(["finetune", "--method", "adversarial", "--run", str(moved_run), "--out", str(tmp_path / "f"), "--preset", "tiny",
                 "--set", "train.steps_per_epoch=2"]) == 2
    assert "--data" in _error(capsys)
