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
    for out, why in (
        (".", "holds the current folder"),
        ("..", "holds the current folder"),
        (str(tmp_path / "plain"), "is a file"),
        (str(tmp_path / "other"), "not a wmplan dataset"),
    ):
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
    for setting, message in (
        ("--task-set", "random_layout=maybe"),
        ("--task-set", "door_half_height=abc"),
        ("--task-set", "door_half_height=1000"),
        ("--task-set", "colour=red"),
        ("--collector-set", "steps=0"),
        ("--collector-set", "steps=abc"),
        ("--collector-set", "speed=3"),
    ):
        assert (
            main(["collect", "--env", "wall", "--episodes", "2", "--out", str(tmp_path / "x"), setting, message]) == 2
        ), message
        err = _error(capsys)
        key = message.split("=")[0]
        assert key in err, (message, err)
    assert not (tmp_path / "x").exists()  # refused before anything was created
    capsys.readouterr()
    main(["collect", "--env", "wall", "--episodes", "2", "--out", str(tmp_path / "x"), "--collector-set", "speed=3"])
    assert "turn_kappa" in _error(capsys)  # an unknown key lists the valid ones


@pytest.mark.parametrize(
    "setting, key",
    [
        ("train.lr_predictor=-1", "train.lr_predictor"),
        ("data.frameskip=0", "data.frameskip"),
        ("model.predictor.heads=0", "model.predictor.heads"),
        ("train.epochs=1.5", "train.epochs"),
        ("train.precision=half", "train.precision"),
    ],
)
def test_run_settings_out_of_range_are_refused_before_training(wall_store, tmp_path, capsys, setting, key):
    assert (
        main(
            [
                "train",
                "--data",
                str(wall_store.path),
                "--out",
                str(tmp_path / "r"),
                "--preset",
                "tiny",
                "--set",
                setting,
            ]
        )
        == 2
    )
    assert key in _error(capsys)
    assert not (tmp_path / "r").exists()


def test_eval_settings_and_a_file_out_are_refused_before_planning(tiny_run, tmp_path, capsys, monkeypatch):
    from wmplan.planning.mpc import MPC

    monkeypatch.setattr(MPC, "run", lambda *a, **k: pytest.fail("planned before refusing"))
    (tmp_path / "file").write_text("x")
    for extra, key in (
        (["--set", "mpc.replans=0"], "mpc.replans"),
        (["--episodes", "0"], "episodes"),
        (["--set", "planner.topk=500"], "planner.topk"),
        (["--protocol", "papr"], "choose one of fixed, paper"),
        (["--protocol", "paper", "--set", "mpc.max_replans=0"], "mpc.max_replans"),
    ):
        assert (
            main(["eval", "--run", str(tiny_run), "--planner", "cem", "--mpc", "--out", str(tmp_path / "e"), *extra])
            == 2
        )
        assert key in _error(capsys)
    assert main(["eval", "--run", str(tiny_run), "--planner", "adam", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in _error(capsys)
    assert (
        main(["eval", "--run", str(tiny_run), "--planner", "adam", "--protocol", "paper", "--out", str(tmp_path / "e")])
        == 2
    )
    assert "add --mpc" in _error(capsys)
    assert not (tmp_path / "e").exists()


def test_info_verify_names_a_deleted_and_a_garbled_chunk_and_training_refuses_a_deleted_one(tmp_path, capsys):
    collect("wall", tmp_path / "d", episodes=4, seed=0, progress=False)
    assert main(["info", "--verify", str(tmp_path / "d")]) == 0
    os.remove(tmp_path / "d" / "data" / "obs" / "2.0.0.0")  # zarr format 2 chunk names
    (tmp_path / "d" / "data" / "state" / "0.0").write_bytes(b"garbage")
    assert main(["info", "--verify", str(tmp_path / "d")]) == 1
    out = capsys.readouterr().out
    assert "data/obs chunk 2.0.0.0 (frames 102-152, episodes 2-2): missing" in out
    assert "data/state chunk 0.0" in out and "cannot be decoded" in out
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    assert "chunk file(s) missing" in _error(capsys)


def test_non_finite_or_absurd_values_are_refused_with_the_episode(tmp_path, rng):
    from wmplan.envs import make_task

    store = TrajectoryStore.create(tmp_path / "d", make_task("wall"), frames_per_episode=3)
    episode = {
        "obs": np.zeros((3, 65, 65, 3), np.uint8),
        "state": np.ones((3, 2), np.float32),
        "proprio": np.ones((3, 2), np.float32),
        "action": np.array([[0, 0], [0, 0], [np.nan, np.nan]], np.float32),
    }
    store.append_episode(episode)  # the trailing NaN action is the format's own
    assert (
        TrajectoryStore.open(tmp_path / "d").chunk_problems() == []
    )  # an all-black image chunk is written, not skipped
    with pytest.raises(DatasetError, match="episode 1: data/action"):
        store.append_episode({**episode, "action": np.array([[1e30, 0], [0, 0], [np.nan, np.nan]], np.float32)})
    with pytest.raises(
        DatasetError, match=r"data/obs frames have shape \(64, 64, 3\), but this dataset stores \(65, 65, 3\)"
    ):
        store.append_episode({**episode, "obs": np.zeros((3, 64, 64, 3), np.uint8)})
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
    assert (
        main(
            [
                "gap",
                "--run",
                str(moved_run),
                "--out",
                str(tmp_path / "g2"),
                "--episodes",
                "4",
                "--data",
                str(other.path),
            ]
        )
        == 2
    )
    assert "not the dataset" in _error(capsys)
    assert (
        main(
            [
                "gap",
                "--run",
                str(moved_run),
                "--out",
                str(tmp_path / "g3"),
                "--episodes",
                "4",
                "--data",
                str(wall_store.path),
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
                str(moved_run),
                "--out",
                str(tmp_path / "f"),
                "--preset",
                "tiny",
                "--set",
                "train.steps_per_epoch=2",
            ]
        )
        == 2
    )
    assert "--data" in _error(capsys)


@pytest.fixture(scope="module")
def battery_files(wall_store, tiny_run, tmp_path_factory):
    """A plain file, a foreign folder and a finished run, for the battery below."""
    root = tmp_path_factory.mktemp("battery")
    (root / "file").write_text("x")
    (root / "foreign").mkdir()
    (root / "foreign" / "a.txt").write_text("x")
    return {
        "DATA": str(wall_store.path),
        "RUN": str(tiny_run),
        "FILE": str(root / "file"),
        "FOREIGN": str(root / "foreign"),
        "NEW": str(root / "new"),
        "ROOT": str(root),
    }


# (command line, a word the error must contain); NEW and MISSING are fresh paths per case, the others exist.
BATTERY = [
    ("collect --env wall --episodes 0 --out NEW", "--episodes"),
    ("collect --env nope --episodes 2 --out NEW", "nope"),
    ("collect --env wall --episodes 2 --out NEW --seed -1", "--seed"),
    ("collect --env wall --episodes 2 --out NEW --task-set random_layout=maybe", "random_layout"),
    ("collect --env wall --episodes 2 --out NEW --task-set door_half_height=abc", "door_half_height"),
    ("collect --env wall --episodes 2 --out NEW --task-set door_half_height=1000", "door_half_height"),
    ("collect --env wall --episodes 2 --out NEW --task-set wall_x=2", "wall"),
    ("collect --env wall --episodes 2 --out NEW --task-set nokey=1", "nokey"),
    ("collect --env wall --episodes 2 --out NEW --task-set random_layout", "key=value"),
    ("collect --env wall --episodes 2 --out NEW --collector-set steps=0", "steps"),
    ("collect --env wall --episodes 2 --out NEW --collector-set steps=1.5", "steps"),
    ("collect --env wall --episodes 2 --out NEW --collector-set nokey=1", "nokey"),
    ("collect --env pointmaze --episodes 2 --out NEW --collector-set steps=abc", "steps"),
    ("collect --env wall --episodes 2 --out FILE --overwrite", "is a file"),
    ("collect --env wall --episodes 2 --out FOREIGN --overwrite", "not a wmplan dataset"),
    ("collect --env wall --episodes 2 --out FOREIGN", "not empty"),
    ("collect --env wall --episodes 2 --out ROOT --overwrite", "not a wmplan dataset"),
    ("collect --env pointmaze --episodes 2 --out DATA --append", "task"),
    ("collect --env wall --episodes 2 --out DATA --append --collector-set steps=10", "collector settings"),
    ("info NEW", "no dataset"),
    ("info FILE", "not a zarr dataset"),
    ("info FOREIGN", "not a"),
    ("train --data MISSING --out NEW", "no dataset"),
    ("train --data FOREIGN --out NEW", "not a"),
    ("train --data DATA --out NEW --set train.lr_predictor=-1", "train.lr_predictor"),
    ("train --data DATA --out NEW --set train.lr_predictor=nan", "train.lr_predictor"),
    ("train --data DATA --out NEW --set data.frameskip=0", "data.frameskip"),
    ("train --data DATA --out NEW --set model.predictor.heads=0", "model.predictor.heads"),
    ("train --data DATA --out NEW --set train.epochs=0", "train.epochs"),
    ("train --data DATA --out NEW --set train.batch_size=0", "train.batch_size"),
    ("train --data DATA --out NEW --set data.num_hist=0", "data.num_hist"),
    ("train --data DATA --out NEW --set data.val_fraction=1.5", "data.val_fraction"),
    ("train --data DATA --out NEW --set nokey=1", "nokey"),
    ("train --data DATA --out NEW --set train.epochs=abc", "train.epochs"),
    ("train --data DATA --out NEW --set train.lr_schedule=linear", "lr_schedule"),
    ("train --data DATA --out NEW --set train.device=cuda", "cuda"),
    ("train --data DATA --out NEW --set model.encoder.name=nope", "nope"),
    ("train --data DATA --out RUN", "already holds a run"),
    ("train --data DATA --out NEW --resume", "no run"),
    ("train --data DATA --out RUN --resume --set model.predictor.depth=9", "model.predictor.depth"),
    ("train --data DATA --out FILE", "is a file"),
    ("finetune --method adversarial --run NEW --out NEW", "must differ"),
    ("finetune --method adversarial --run FOREIGN --out NEW", "not a complete run"),
    ("finetune --method adversarial --run RUN --out RUN", "must differ"),
    ("finetune --method adversarial --run RUN --out NEW --set model.predictor.depth=2", "cannot set"),
    ("finetune --method adversarial --run RUN --out NEW --set train.lr_predictor=0", "train.lr_predictor"),
    ("finetune --method online --run RUN --out RUN", "must differ"),
    ("finetune --method adversarial --run RUN --out FILE", "is a file"),
    ("eval --run MISSING --planner cem --out NEW", "no run"),
    ("eval --run RUN --planner cem --episodes 0 --out NEW", "--episodes"),
    ("eval --run RUN --planner cem --seed -1 --out NEW", "--seed"),
    ("eval --run RUN --planner cem --mpc --set mpc.replans=0 --out NEW", "mpc.replans"),
    ("eval --run RUN --planner cem --mpc --set mpc.execute=0 --out NEW", "mpc.execute"),
    ("eval --run RUN --planner cem --mpc --set mpc.execute=9 --out NEW", "mpc.execute"),
    ("eval --run RUN --planner adam --set planner.lr=-1 --out NEW", "planner.lr"),
    ("eval --run RUN --planner adam --set planner.steps=0 --out NEW", "planner.steps"),
    ("eval --run RUN --planner adam --set planner.horizon=0 --out NEW", "planner.horizon"),
    ("eval --run RUN --planner cem --set planner.topk=500 --out NEW", "planner.topk"),
    ("eval --run RUN --planner cem --set planner.samples=0 --out NEW", "planner.samples"),
    ("eval --run RUN --planner adam --set planner.objective=first --out NEW", "first"),
    ("eval --run RUN --planner adam --set planner.optimizer=rmsprop --out NEW", "rmsprop"),
    ("eval --run RUN --planner adam --set planner.init=ones --out NEW", "ones"),
    ("eval --run RUN --planner adam --set planner.nokey=1 --out NEW", "nokey"),
    ("eval --run RUN --planner adam --set foo.bar=1 --out NEW", "foo.bar"),
    ("eval --run RUN --planner adam --out FILE", "is a file"),
    ("eval --run DATA --planner adam --out NEW", "not a complete run"),
    ("gap --run MISSING --out NEW", "no run"),
    ("gap --run RUN --out NEW --episodes 0", "--episodes"),
    ("gap --run RUN --out FILE", "is a file"),
    ("landscape --run MISSING --out NEW", "no run"),
    ("landscape --run RUN --out NEW --grid 4", "grid"),
    ("landscape --run RUN --out FILE", "is a file"),
    ("reference --env nope --out NEW", "nope"),
    ("reference --env wall --out NEW --episodes 0", "--episodes"),
    ("reference --env wall --out FILE", "is a file"),
    ("demo --env nope --out NEW", "nope"),
    ("demo --workers 0 --out NEW", "--workers"),
    ("study --workers 0 --out NEW", "--workers"),
    ("study --online-steps 1000,200 --out NEW", "increasing order"),
    ("eval --run RUN --planner adam --device nope --out NEW", "unknown device"),
    ("gap --run RUN --out NEW --device nope", "unknown device"),
    ("landscape --run RUN --out NEW --device nope", "unknown device"),
    ("finetune --method adversarial --run RUN --out NEW --device nope", "unknown device"),
]


@pytest.mark.parametrize("line, word", BATTERY, ids=[line for line, _ in BATTERY])
def test_battery_of_bad_inputs_gets_clear_errors_and_writes_nothing(battery_files, line, word, tmp_path, capsys):
    files = {**battery_files, "NEW": str(tmp_path / "new"), "MISSING": str(tmp_path / "missing")}
    before = {p: os.path.getmtime(p) for p in (files["RUN"] + "/model.safetensors", files["DATA"] + "/.zattrs")}
    assert main([files.get(token, token) for token in line.split()]) == 2
    err = _error(capsys)
    assert word in err and err.count("\n") == 0, err
    assert not (tmp_path / "new").exists() or line.startswith(("train --data DATA --out NEW --resume",))
    assert before == {p: os.path.getmtime(p) for p in before}  # the dataset and the run are untouched


def test_a_looping_symlink_out_and_a_missing_data_for_finetune_name_what_is_wrong(tiny_run, tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["collect", "--env", "wall", "--episodes", "2", "--out", str(loop)]) == 2
    assert f"{loop} is a symbolic link that leads nowhere" in _error(capsys)
    missing = tmp_path / "no-data"
    out = tmp_path / "ft"
    argv = ["finetune", "--method", "online", "--run", str(tiny_run), "--out", str(out), "--data", str(missing)]
    assert main(argv) == 2
    message = _error(capsys)
    assert f"no dataset at {missing} (--data or data.path)" in message and "was trained on" in message
    assert not out.exists()


def test_finetuning_on_a_dataset_appended_to_since_its_parent_trained_says_so(tmp_path, capsys):
    data, run = str(tmp_path / "d"), str(tmp_path / "run")
    assert main(["collect", "--env", "wall", "--episodes", "40", "--out", data]) == 0
    settings = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=3"]
    assert main(["train", "--data", data, "--out", run, "--preset", "tiny", "--encoder", "state", *settings]) == 0
    assert main(["collect", "--env", "wall", "--episodes", "2", "--out", data, "--append"]) == 0
    capsys.readouterr()
    assert main(["finetune", "--method", "adversarial", "--run", run, "--out", str(tmp_path / "ft")]) == 2
    assert f"{data} has changed since {run} was trained on it" in _error(capsys)
