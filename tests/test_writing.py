"""One writer per folder, checkpoints that switch as a set, and a kill anywhere inside a checkpoint."""

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from wmplan import writing
from wmplan.config import apply_overrides, preset
from wmplan.models.world_model import WorldModel
from wmplan.training.trainer import TrainingError, train
from wmplan.writing import MANIFEST, OutputError, checkpoint_source, claim_folder, commit_checkpoint

HOLD = """
import sys
from wmplan.data.store import TrajectoryStore
from wmplan.writing import claim_folder
lock = TrajectoryStore.open(sys.argv[1], mode="r+").lock if sys.argv[2] == "store" else claim_folder(sys.argv[1], "x")
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


class Holder:
    """A second process that holds a folder's writer lock until closed: waits on its "held" line."""

    def __init__(self, folder, kind="folder"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder), kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "held"

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait() == 0


def test_a_second_writer_is_refused_with_the_holders_pid_and_readers_never_wait(tmp_path):
    holder = Holder(tmp_path / "out")
    try:
        with pytest.raises(OutputError, match=f"another process \\(pid {holder.proc.pid}\\)"):
            claim_folder(tmp_path / "out", "the run")
    finally:
        holder.close()
    lock = claim_folder(tmp_path / "out", "the run")  # free again once the holder has gone
    assert claim_folder(tmp_path / "out", "the run") is lock  # this process may claim it again
    lock.release()


def test_concurrent_collect_append_is_refused_and_reading_goes_on(wall_store, tmp_path, capsys):
    from wmplan.cli import main
    from wmplan.data.collect import collect
    from wmplan.data.store import TrajectoryStore

    collect("wall", tmp_path / "data", episodes=4, seed=0, progress=False)
    holder = Holder(tmp_path / "data", "store")
    try:
        assert main(["collect", "--env", "wall", "--episodes", "4", "--append", "--out", str(tmp_path / "data")]) == 2
        assert f"pid {holder.proc.pid}" in capsys.readouterr().err
        assert TrajectoryStore.open(tmp_path / "data").n_episodes == 4  # a reader is not blocked
    finally:
        holder.close()
    assert main(["collect", "--env", "wall", "--episodes", "4", "--append", "--out", str(tmp_path / "data")]) == 0
    assert TrajectoryStore.open(tmp_path / "data").n_episodes == 8


def test_a_file_valued_out_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        claim_folder(tmp_path / "file", "the run")


def test_checkpoint_source_falls_back_to_the_last_committed_set(tmp_path):
    def files(text):
        return lambda folder: [(folder / n).write_text(f"{n} {text}") for n in ("a.txt", "b.txt")]

    commit_checkpoint(tmp_path, 0, files("epoch 0"))
    assert checkpoint_source(tmp_path) == tmp_path and (tmp_path / MANIFEST).exists()
    commit_checkpoint(tmp_path, 1, files("epoch 1"))
    assert sorted(p.name for p in tmp_path.glob(".checkpoint-*")) == [".checkpoint-1"]  # older sets are dropped
    (tmp_path / "new").write_text("torn")  # as if a kill fell between two files of a switch: one replaced, not the next
    os.replace(tmp_path / "new", tmp_path / "b.txt")
    assert checkpoint_source(tmp_path) == tmp_path / ".checkpoint-1"
    writing.restore_checkpoint(tmp_path)
    assert checkpoint_source(tmp_path) == tmp_path and (tmp_path / "b.txt").read_text() == "b.txt epoch 1"


class Killed(BaseException):
    """Stands for kill -9: nothing below it runs (BaseException, so no `except Exception` catches it)."""


def _cfg(store, **overrides):
    return apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(store.path),
            "model.encoder.name": "state",
            "train.steps_per_epoch": 10,
            "train.epochs": 2,
            **overrides,
        },
    )


def _train_killed_in_checkpoint(store, run, monkeypatch, kill_at: int | None) -> int:
    """Train 2 epochs into `run`, the renames and links of epoch 1's checkpoint counted; with `kill_at`,
    a kill falls just before the kill_at-th of them. Returns the count (without a kill: all of them)."""
    count = {"n": 0, "armed": False}
    for name in ("replace", "link"):  # os itself: every rename and link of the process, counted while armed
        real = getattr(os, name)

        def operation(*args, _real=real):
            if count["armed"]:
                if count["n"] == kill_at:
                    raise Killed()
                count["n"] += 1
            return _real(*args)

        monkeypatch.setattr(os, name, operation)
    real_checkpoint = writing.commit_checkpoint

    def checkpoint(run_dir, epoch, write_files):
        count["armed"] = epoch == 1
        real_checkpoint(run_dir, epoch, write_files)
        count["armed"] = False

    monkeypatch.setattr("wmplan.training.trainer.commit_checkpoint", checkpoint)
    try:
        train(_cfg(store), run, progress=False)
    finally:
        monkeypatch.undo()
    return count["n"]


def test_a_kill_anywhere_inside_a_checkpoint_then_resume_ends_where_an_uninterrupted_run_ends(
    wall_store, tmp_path, monkeypatch
):
    per_checkpoint = _train_killed_in_checkpoint(wall_store, tmp_path / "full", monkeypatch, None)
    expected = load_file(str(tmp_path / "full" / "model.safetensors"))
    assert per_checkpoint >= 7  # 3 model files staged, the commit, 5 links and the manifest: several kill points
    for kill_at in range(per_checkpoint):
        run = tmp_path / f"killed_{kill_at}"
        with pytest.raises(Killed):
            _train_killed_in_checkpoint(wall_store, run, monkeypatch, kill_at)
        WorldModel.load(run)  # readable at any kill point: the last complete set
        train(_cfg(wall_store), run, resume=True, progress=False)
        resumed = load_file(str(run / "model.safetensors"))
        for key in expected:
            torch.testing.assert_close(resumed[key], expected[key], rtol=0, atol=0, msg=f"kill point {kill_at}: {key}")
        leftovers = [
            p.name for p in run.iterdir() if writing.TEMP_MARK in p.name or p.name.startswith(writing.STAGING_PREFIX)
        ]
        assert leftovers == [], f"kill point {kill_at}: stray files {leftovers}"


def test_resume_refuses_another_config_and_the_cli_resumes_with_the_stored_one(wall_store, tmp_path, capsys):
    from wmplan.cli import main

    train(_cfg(wall_store, **{"train.epochs": 1}), tmp_path / "run", progress=False)
    with pytest.raises(TrainingError, match="model.predictor.depth"):
        train(
            _cfg(wall_store, **{"train.epochs": 2, "model.predictor.depth": 3}),
            tmp_path / "run",
            resume=True,
            progress=False,
        )
    WorldModel.load(tmp_path / "run")  # the run is untouched
    assert (
        main(["train", "--data", str(wall_store.path), "--out", str(tmp_path / "run"), "--resume", "--epochs", "2"])
        == 0
    )
    assert [line.split(",")[0] for line in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]] == [
        "0",
        "1",
    ]


def test_every_run_file_gets_the_same_permissions(wall_store, tmp_path):
    train(_cfg(wall_store, **{"train.epochs": 1}), tmp_path / "run", progress=False)
    modes = {
        p.name: p.stat().st_mode & 0o777
        for p in (tmp_path / "run").iterdir()
        if p.is_file() and p.name != writing.LOCK_NAME
    }
    assert len(set(modes.values())) == 1, modes
