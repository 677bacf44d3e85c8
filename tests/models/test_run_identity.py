"""A run is known by its identity (the fingerprint of its checkpoint) and how far it trained: an unfinished
run is refused where a finished one is needed, a damaged one is named, and results record which run made
them."""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load

from wmplan import writing
from wmplan.cli import main
from wmplan.config import apply_overrides, preset
from wmplan.models.run_folder import RUN_FILES, RunFolder, UnfinishedRunError
from wmplan.models.world_model import WorldModel
from wmplan.training.trainer import train
from wmplan.writing import MANIFEST

HOLD = """
import sys
from wmplan.writing import claim_folder
lock = claim_folder(sys.argv[1], "the run")
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture(scope="module")
def unfinished(wall_store, tmp_path_factory, kill_at_epoch):
    """A run asked for 3 epochs, killed after its first."""
    out = tmp_path_factory.mktemp("runs") / "killed"
    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "model.encoder.name": "state",
            "train.epochs": 3,
            "train.steps_per_epoch": 5,
        },
    )
    with kill_at_epoch(1):
        train(cfg, out, progress=False)
    return out


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy(run, to):
    shutil.copytree(run, to)  # the copies of the committed set are files of their own, not hard links
    return to


def test_the_fingerprint_is_the_manifests_hash_and_the_state_says_how_far_it_trained(tiny_run, unfinished):
    state = RunFolder(tiny_run).state()
    assert state.fingerprint == hashlib.sha256((tiny_run / MANIFEST).read_bytes()).hexdigest() and state.verified
    assert (state.epoch, state.epochs, state.finished) == (4, 4, True)
    killed = RunFolder(unfinished).state()
    assert (killed.epoch, killed.epochs, killed.finished, killed.writer) == (1, 3, False, None)
    assert killed.record() == {
        "run_fingerprint": killed.fingerprint,
        "run_epoch": 1,
        "run_epochs": 3,
        "run_finished": False,
    }


@pytest.mark.parametrize("command", ["eval", "gap", "landscape", "finetune"])
def test_an_unfinished_run_is_refused_naming_it_its_epoch_and_the_way_out(unfinished, tmp_path, capsys, command):
    before = _files(unfinished)
    out = tmp_path / "out"
    args = {
        "eval": ["eval", "--run", str(unfinished), "--planner", "gd", "--episodes", "2"],
        "gap": ["gap", "--run", str(unfinished), "--episodes", "2"],
        "landscape": ["landscape", "--run", str(unfinished), "--grid", "3"],
        "finetune": ["finetune", "--method", "adversarial", "--run", str(unfinished), "--preset", "tiny"],
    }[command]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(unfinished) in err and "1 of 3 epochs trained" in err and "wmplan train" in err and "--resume" in err
    assert ("--allow-unfinished" in err) == (command != "finetune")  # a finetuning needs a finished parent
    assert _files(unfinished) == before
    assert not any(p.suffix == ".json" or p.name == "model.safetensors" for p in out.rglob("*"))


def test_allow_unfinished_plans_with_it_and_every_result_records_it(unfinished, tmp_path):
    state = RunFolder(unfinished).state()
    record = {"run_fingerprint": state.fingerprint, "run_epoch": 1, "run_epochs": 3, "run_finished": False}
    steps = ["--set", "planner.steps=2"]
    assert (
        main(
            ["eval", "--run", str(unfinished), "--planner", "gd", "--episodes", "2", *steps, "--allow-unfinished"]
            + ["--out", str(tmp_path / "eval")]
        )
        == 0
    )
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert {k: summary[k] for k in record} == record
    assert (
        main(["landscape", "--run", str(unfinished), "--grid", "3", "--allow-unfinished", "--out", str(tmp_path / "l")])
        == 0
    )
    assert {k: json.loads((tmp_path / "l" / "landscape.json").read_text())["killed"][k] for k in record} == record
    assert (
        main(["gap", "--run", str(unfinished), "--episodes", "2", "--allow-unfinished", "--out", str(tmp_path / "g")])
        == 0
    )
    assert {k: json.loads((tmp_path / "g" / "gap.json").read_text())["killed"][k] for k in record} == record


def test_a_run_being_written_by_a_live_process_is_refused_until_it_ends(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert RunFolder(run).state().writer == holder.pid
        assert writing._probe_writer(run / writing.LOCK_NAME) == holder.pid  # where there is no /proc/locks
        with pytest.raises(
            UnfinishedRunError, match=f"{run} is being written by process {holder.pid} \\(4 of 4 epochs"
        ):
            RunFolder(run).require_finished()
        assert (
            main(["eval", "--run", str(run), "--planner", "gd", "--episodes", "2", "--out", str(tmp_path / "e")]) == 2
        )
        assert f"process {holder.pid}" in capsys.readouterr().err
    finally:
        holder.stdin.close()
        assert holder.wait() == 0
    assert RunFolder(run).state().finished  # the lock died with its writer
    assert writing._probe_writer(run / writing.LOCK_NAME) is None


def test_a_truncated_model_beside_its_manifest_falls_back_to_the_committed_set_and_says_so(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    whole = load((run / "model.safetensors").read_bytes())  # not load_file: it maps the file we truncate
    with (run / "model.safetensors").open("r+b") as f:
        f.truncate(1000)
    model = WorldModel.load(run)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run}/model.safetensors does not match its hash" in err
    assert ".checkpoint-3" in err
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, whole[key], rtol=0, atol=0)
    assert (run / "model.safetensors").stat().st_size == 1000  # a reader repairs nothing


def test_a_truncated_model_with_no_set_to_fall_back_to_is_an_error_naming_the_file(tiny_run, tmp_path, capsys):
    run = _copy(tiny_run, tmp_path / "run")
    for folder in run.glob(".checkpoint-*"):  # as a run folder whose files are hard links of its set: both torn
        shutil.rmtree(folder)
    with (run / "model.safetensors").open("r+b") as f:
        f.truncate(1000)
    before = _files(run)
    assert main(["eval", "--run", str(run), "--planner", "gd", "--episodes", "2", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run}/model.safetensors does not match its hash in checkpoint.json" in err
    assert _files(run) == before and not (tmp_path / "e" / "summary.json").exists()


def test_a_run_without_a_manifest_loads_with_one_line_saying_it_was_not_verified(tiny_run, tmp_path, capsys):
    run = tmp_path / "old"
    run.mkdir()
    for name in RUN_FILES:
        shutil.copyfile(tiny_run / name, run / name)
    WorldModel.load(run)
    WorldModel.load(run)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(run) in err and "could not be verified" in err
    state = RunFolder(run).state()
    assert not state.verified and state.finished and state.fingerprint == RunFolder(run).state().fingerprint
    (run / "normalization.json").write_text((run / "normalization.json").read_text() + "\n")
    assert RunFolder(run).state().fingerprint != state.fingerprint  # any file changed: another run


def _damage(path, change):
    path.write_text(json.dumps(change(json.loads(path.read_text()))) if callable(change) else change)


@pytest.mark.parametrize(
    "name, change, words",
    [
        ("config.json", "{}", "config.json: key 'config' is missing"),
        ("config.json", "not json", "config.json is not valid JSON"),
        ("config.json", lambda m: {**m, "format": "2x"}, "config.json: key 'format' is '2x'"),
        ("config.json", lambda m: {**m, "dims": {**m["dims"], "state_dim": "two"}}, "key 'dims.state_dim'"),
        ("config.json", lambda m: {**m, "config": {**m["config"], "train": 3}}, "config key train must be a table"),
        (
            "config.json",
            lambda m: {**m, "config": {**m["config"], "train": {"epochs": "x"}}},
            "config key train.epochs",
        ),
        ("normalization.json", "{}", "normalization.json: key 'action_mean' is missing"),
        ("normalization.json", '{"action_mean": [1, "a"]}', "normalization.json: key 'action_mean'"),
    ],
)
def test_damaged_run_files_without_a_manifest_get_one_line_naming_file_and_key(
    tiny_run, tmp_path, capsys, name, change, words
):
    run = tmp_path / "run"
    run.mkdir()
    for f in RUN_FILES:
        shutil.copyfile(tiny_run / f, run / f)
    _damage(run / name, change)
    before = _files(run)
    assert main(["eval", "--run", str(run), "--planner", "gd", "--episodes", "2", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "could not be verified" in err[0]  # the notice, then the error
    assert err[1].startswith("wmplan eval: error: ") and str(run / name) in err[1] and words in err[1]
    assert _files(run) == before


def test_garbage_trainer_state_is_named_when_resuming(wall_store, tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for f in (*RUN_FILES, "metrics.csv"):
        shutil.copyfile(tiny_run / f, run / f)
    (run / "trainer_state.pt").write_bytes(b"garbage")
    args = ["train", "--data", str(wall_store.path), "--out", str(run), "--resume", "--epochs", "5"]
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("wmplan train: error: ") and f"{run}/trainer_state.pt cannot be read" in err[-1]
    assert (run / "trainer_state.pt").read_bytes() == b"garbage"
