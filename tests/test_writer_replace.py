"""Writer rules 4 and 5: a finished result in --out needs --overwrite (replace) or --resume (keep); with
--overwrite the new output is built beside the old one and swapped in only when whole, so a failure leaves
the old one as it was and no stale file of the old one survives a success."""

import json
from pathlib import Path

import pytest

from wmplan.cli import main
from wmplan.data.collect import collect
from wmplan.data.interchange import export_dataset
from wmplan.data.store import TrajectoryStore
from wmplan.envs import make_task

# A finished result of each command, as its files; stale.gif is what a replaced result must not keep.
FINISHED = {
    "eval": {"summary.json": '{"old": true}', "episodes.jsonl": "{}\n", "episode_03.gif": "x", "stale.gif": "x"},
    "gap": {"gap.json": '{"old": true}', "gap.png": "x", "stale.gif": "x"},
    "landscape": {"landscape.json": '{"old": true}', "landscape.png": "x", "stale.gif": "x"},
    "reference": {"summary.json": '{"old": true}', "stale.gif": "x"},
}
# The cheapest run of each; the last file named is the one a finished result ends with.
RUNS = {
    "eval": ("eval --run RUN --planner adam --episodes 2 --set planner.steps=2", "summary.json"),
    "gap": ("gap --run RUN --episodes 3", "gap.json"),
    "landscape": ("landscape --run RUN --grid 5", "landscape.json"),
    "reference": ("reference --env wall --episodes 2", "summary.json"),
}
NAMES = {"eval": "an eval result", "gap": "a gap result", "landscape": "a landscape result"}


def finished(root, command, fingerprint=None):
    """A finished result of `command` in root/command; eval, gap and landscape record `fingerprint` as their
    run's (a result of the run as it is now, or of another version of it)."""
    out = root / command
    out.mkdir()
    for name, text in FINISHED[command].items():
        (out / name).write_text(text)
    if fingerprint is not None and command != "reference":
        record = {"old": True, "run_fingerprint": fingerprint}
        result = record if command == "eval" else {"tiny": record, "settings": {}}
        (out / RUNS[command][1]).write_text(json.dumps(result))
    return out


def fingerprint(run):
    from wmplan.models.run_folder import RunFolder

    return RunFolder(run).state().fingerprint


def argv(command, out, tiny_run, *flags):
    return [*RUNS[command][0].replace("RUN", str(tiny_run)).split(), "--out", str(out), *flags]


@pytest.mark.parametrize("command", list(RUNS))
def test_a_finished_result_is_refused_without_a_flag_and_kept_with_resume(tmp_path, tiny_run, tree, capsys, command):
    out = finished(tmp_path, command, fingerprint(tiny_run))
    before = tree(tmp_path)
    assert main(argv(command, out, tiny_run)) == 2
    err = capsys.readouterr().err
    name = NAMES.get(command, "a reference result")
    assert f"{out} already holds {name} ({RUNS[command][1]}); pass --overwrite to replace it or --resume" in err, err
    assert main(argv(command, out, tiny_run, "--resume")) == 0
    assert f"{out} already holds {name}" in capsys.readouterr().out
    assert tree(tmp_path) == before  # not even a lock file


@pytest.mark.parametrize("command", ["eval", "gap", "landscape"])
def test_resume_does_not_keep_a_result_of_a_run_that_changed_since(tmp_path, tiny_run, tree, capsys, command):
    out = finished(tmp_path, command, "0" * 64)  # made from another version of the run
    before = tree(tmp_path)
    assert main(argv(command, out, tiny_run, "--resume")) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a result of {tiny_run}, which has changed since" in err and "--overwrite" in err, err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", list(RUNS))
def test_overwrite_replaces_a_finished_result_and_leaves_no_stale_file(tmp_path, tiny_run, capsys, command):
    out = finished(tmp_path, command)
    assert main(argv(command, out, tiny_run, "--overwrite")) == 0
    assert "old" not in json.loads((out / RUNS[command][1]).read_text())
    assert not (out / "stale.gif").exists() and not (out / "episode_03.gif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [command]  # no staging folder left beside it


def dataset(path, episodes):
    collect("wall", path, episodes=episodes, seed=0, progress=False).lock.release()
    return path


def test_collect_overwrite_interrupted_keeps_the_old_dataset_and_a_finished_one_replaces_it(
    tmp_path, tree, monkeypatch
):
    out = dataset(tmp_path / "data", 2)
    (out / "stale.txt").write_text("from the old dataset")
    before = tree(tmp_path)
    calls = []

    def interrupted(self, episodes):
        calls.append(len(episodes))
        raise KeyboardInterrupt  # Ctrl-C while the new dataset is half written

    with monkeypatch.context() as patch:
        patch.setattr(TrajectoryStore, "append_episodes", interrupted)
        with pytest.raises(KeyboardInterrupt):
            main(["collect", "--env", "wall", "--episodes", "3", "--overwrite", "--out", str(out)])
    assert calls and tree(tmp_path) == before
    assert main(["collect", "--env", "wall", "--episodes", "3", "--overwrite", "--out", str(out)]) == 0
    assert TrajectoryStore.open(out).n_episodes == 3 and not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_import_overwrite_from_a_damaged_source_keeps_the_dataset_it_was_to_replace(tmp_path, tree, capsys):
    export_dataset(dataset(tmp_path / "source", 2), tmp_path / "hf", "hf")
    shard = next((tmp_path / "hf" / "data").glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # a damaged download
    out = dataset(tmp_path / "data", 3)
    before = tree(tmp_path)
    assert main(["import", str(tmp_path / "hf"), "--from", "hf", "--overwrite", "--out", str(out)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert tree(tmp_path) == before and TrajectoryStore.open(out).n_episodes == 3


def test_export_overwrite_that_fails_keeps_the_old_export(tmp_path, tree, capsys):
    export_dataset(dataset(tmp_path / "data", 2), tmp_path / "lr", "lerobot")
    TrajectoryStore.create(tmp_path / "empty", make_task("wall"), frames_per_episode=51).lock.release()
    before = tree(tmp_path)
    argv = ["export", str(tmp_path / "empty"), "--to", "lerobot", "--overwrite", "--out", str(tmp_path / "lr")]
    assert main(argv) == 2
    assert "no finished episodes" in capsys.readouterr().err
    assert tree(tmp_path) == before


def old_demo(root):
    out = root / "demo"
    for name, text in {"demo.json": "{}", "report.md": "old", "stale.md": "old", "data/.zattrs": "{}"}.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return out


def fake_run_demo(fails):
    """The demo's stages stood in by a few files: what the writer rule sees of a demo is its folder."""

    def run_demo(out, scale, **kwargs):
        out = Path(out)
        (out / "demo.json").write_text(json.dumps({"new": True}))
        (out / "report.md").write_text("new")
        if fails:
            raise RuntimeError("a stage failed")
        return "new report"

    return run_demo


def test_demo_overwrite_builds_at_its_own_path_and_puts_the_old_one_back_if_it_fails(
    tmp_path, tree, capsys, monkeypatch
):
    import wmplan.experiments.demo as demo

    out = old_demo(tmp_path)
    before = tree(tmp_path)
    assert main(["demo", "--out", str(out)]) == 2
    assert "pass --overwrite to replace it or --resume to continue it" in capsys.readouterr().err
    monkeypatch.setattr(demo, "run_demo", fake_run_demo(fails=True))
    assert main(["demo", "--overwrite", "--out", str(out)]) == 2
    assert "a stage failed" in capsys.readouterr().err
    assert tree(tmp_path) == before
    monkeypatch.setattr(demo, "run_demo", fake_run_demo(fails=False))
    assert main(["demo", "--overwrite", "--out", str(out)]) == 0
    assert (out / "report.md").read_text() == "new" and not (out / "stale.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_demo_overwrite_killed_midway_is_named_and_its_old_demo_comes_back(tmp_path, tree, capsys, monkeypatch):
    import wmplan.experiments.demo as demo

    out = old_demo(tmp_path)
    aside = tmp_path / ".demo.replaced"  # as a kill -9 inside `demo --overwrite` leaves them
    out.rename(aside)
    (out / "data").mkdir(parents=True)
    (out / "demo.json").write_text("{}")
    before = tree(tmp_path)
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and str(aside) in err and "interrupted --overwrite" in err
    assert tree(tmp_path) == before
    monkeypatch.setattr(demo, "run_demo", fake_run_demo(fails=True))
    assert main(["demo", "--overwrite", "--out", str(out)]) == 2
    assert (out / "stale.md").read_text() == "old" and not aside.exists()  # the old demo is back in place
