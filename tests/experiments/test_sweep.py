"""`wmplan sweep`: every cell an ordinary eval, planned by worker processes, never planned twice, and
resumed cell by cell."""

import json
import os
import subprocess
import sys

import pytest
import torch

from wmplan.cli import main
from wmplan.evaluation.episodes import evaluate
from wmplan.evaluation.protocols import MPC
from wmplan.experiments.cell_folder import CELL_FILE, SUMMARY_FILE
from wmplan.experiments.sweep import GRID_FILE, REPORT_FILE, run_sweep
from wmplan.experiments.sweep_spec import cells_of, eval_config, load_spec

TIMING = {"seconds_per_plan", "planning_seconds_total", "seconds_per_plan_note", "planning_seconds"}
TINY = [
    "episodes=3",
    "planner.steps=3",
    "planner.samples=12",
    "planner.topk=3",
    "planner.iterations=1",
    "mpc.replans=1",
]


def _spec(run, models="base:{run}", planners="adam,cem", modes="open,mpc", seeds="0"):
    """A tiny grid, with the settings of TINY that its planners and modes read (a sweep refuses the others)."""
    cem_only = ("planner.samples", "planner.topk", "planner.iterations")
    reads = lambda s: ("cem" in planners or s.split("=")[0] not in cem_only) and ("mpc" in modes or "mpc." not in s)  # noqa: E731
    tiny = [s for s in TINY if reads(s)]
    return load_spec(
        None, [f"models={models.format(run=run)}", f"planners={planners}", f"modes={modes}", f"seeds={seeds}", *tiny]
    )


def _summaries(out, spec):
    return {c.folder: out / c.folder / SUMMARY_FILE for c in cells_of(spec)}


def _stamps(paths):
    return {folder: (p.stat().st_mtime_ns, p.read_text()) for folder, p in paths.items()}


def _rows(path):
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING}  # noqa: E731
    return [drop(json.loads(line)) for line in path.read_text().splitlines()]


def test_two_workers_plan_every_cell_once_and_a_rerun_plans_none(tiny_run, tmp_path):
    spec = _spec(tiny_run, models="base:{run},online:{run}")
    out = tmp_path / "sweep"
    first = run_sweep(spec, out, workers=2, device="cpu", progress=False)
    assert sorted(first.ran) == sorted(c.folder for c in cells_of(spec)) and len(first.ran) == 8
    assert first.finished_before == [] and first.busy == []
    grid = json.loads((out / GRID_FILE).read_text())
    assert grid["task"] == "wall" and len(grid["cells"]) == 8
    assert {(c["model"], c["planner"], c["mpc"], c["seed"]) for c in grid["cells"]} == {
        (m, p, mpc, 0) for m in ("base", "online") for p in ("adam", "cem") for mpc in (False, True)
    }
    report = (out / REPORT_FILE).read_text()
    assert first.report == report and "| base | open loop |" in report and "| Online WM | MPC |" in report

    # A cell is an ordinary eval: the same files as planning it alone with one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as `wmplan eval` and every sweep worker (the conftest fixture resets it)
    try:
        cell = next(c for c in cells_of(spec) if c.cell.planner == "adam" and c.cell.mode == MPC)
        evaluate(tiny_run, eval_config(spec, cell), tmp_path / "alone", progress=False, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert _rows(tmp_path / "alone" / "episodes.jsonl") == _rows(out / cell.folder / "episodes.jsonl")

    stamps = _stamps(_summaries(out, spec))
    again = run_sweep(spec, out, workers=2, device="cpu", progress=False)
    assert again.ran == [] and sorted(again.finished_before) == sorted(first.ran)
    assert _stamps(_summaries(out, spec)) == stamps  # nothing rewritten
    assert again.grid == grid


def test_a_rerun_completes_only_the_unfinished_cell(tiny_run, tmp_path):
    spec = _spec(tiny_run)
    out = tmp_path / "sweep"
    run_sweep(spec, out, workers=1, device="cpu", progress=False)
    summaries = _summaries(out, spec)
    killed = next(f for f in summaries if "cem_mpc" in f)  # as if killed before its summary was renamed in
    before = json.loads(summaries[killed].read_text())
    summaries[killed].unlink()
    (out / killed / f".{SUMMARY_FILE}.tmp-999999").write_text("{")  # a killed writer's temp file
    (out / GRID_FILE).unlink()
    others = _stamps({f: p for f, p in summaries.items() if f != killed})

    result = run_sweep(spec, out, workers=1, device="cpu", progress=False)
    assert result.ran == [killed] and len(result.finished_before) == 3
    assert _stamps({f: p for f, p in summaries.items() if f != killed}) == others
    after = json.loads(summaries[killed].read_text())
    assert {k: v for k, v in after.items() if k not in TIMING} == {k: v for k, v in before.items() if k not in TIMING}
    assert not list((out / killed).glob(".*.tmp-*")) and (out / GRID_FILE).exists()


def test_torchrun_ranks_share_the_cells(tiny_run, tmp_path):
    out = tmp_path / "sweep"
    args = [f"models=base:{tiny_run}", "planners=adam,cem", "modes=open,mpc", *TINY]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "wmplan.cli"]
    cmd += ["sweep", "--out", str(out), "--device", "cpu", *(a for s in args for a in ("--set", s))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    spec = load_spec(None, args)
    assert all(p.exists() for p in _summaries(out, spec).values())
    assert (out / GRID_FILE).exists() and len(json.loads((out / GRID_FILE).read_text())["cells"]) == 4
    assert proc.stdout.count("ran ") == 1  # rank 0 alone reports


def test_specs_from_files_and_bad_specs_get_clear_errors(tiny_run, tmp_path, capsys):
    (tmp_path / "sweep.yaml").write_text(
        f"models:\n  base: {tiny_run}\nplanners: [gd, cem]\nmodes: [mpc_bounded]\nseeds: [1, 2]\nplanner:\n  steps: 7\n"
    )
    spec = load_spec(tmp_path / "sweep.yaml", ["seeds=5", "mpc.replans=2"])
    assert spec.models == {"base": str(tiny_run)} and spec.seeds == [5] and spec.planners == ["gd", "cem"]
    cfg = eval_config(spec, cells_of(spec)[0])
    assert cfg.mpc and cfg.settings.bounded and cfg.settings.steps == 7 and cfg.mpc_settings.replans == 2
    assert cfg.protocol == "fixed"
    paper = load_spec(tmp_path / "sweep.yaml", ["protocol=paper", "modes=open,mpc"])
    assert [eval_config(paper, c).protocol for c in cells_of(paper)[:2]] == ["fixed", "paper"]  # open loop: one plan
    (tmp_path / "sweep.json").write_text(json.dumps({"models": [str(tiny_run)], "planners": ["adam"]}))
    assert load_spec(tmp_path / "sweep.json").models == {tiny_run.name: str(tiny_run)}

    for sets, words in (
        (["models=base:x", "planner=adam"], "--set planner.steps=100"),
        (["models=base:x", "method=cem"], "unknown sweep settings ['method']"),
        (["models=base:x", "protocol=dino"], "unknown protocol 'dino'; choose one of fixed, paper"),
        (["models=base:x", "planners=adam,newton"], "newton"),
        (["models=base:x", "modes=closed"], "choose from open, mpc, mpc_bounded"),
        (["models=base:x", "seeds=1,1"], "repeat"),
        (["models=a b:x"], "cannot name a folder"),
        (["planners=adam"], "a sweep needs models"),
        (["models=base:x", "planner.stepz=3"], "planner.steps"),
    ):
        with pytest.raises(ValueError) as err:
            eval_config(spec := load_spec(None, sets), cells_of(spec)[0])
        assert words in str(err.value), str(err.value)

    out = tmp_path / "sweep"
    assert main(["sweep", "--out", str(out), "--set", f"models=base:{tmp_path / 'nothing'}"]) == 2
    assert "holds no run" in capsys.readouterr().err and not out.exists()
    spec = _spec(tiny_run, planners="adam", modes="open")
    run_sweep(spec, out, device="cpu", progress=False)
    stamp = _stamps(_summaries(out, spec))
    changed = _spec(tiny_run, planners="adam", modes="open", seeds="0")
    changed.episodes = 4
    with pytest.raises(ValueError, match="episodes was 3, now 4"):
        run_sweep(changed, out, device="cpu", progress=False)
    assert _stamps(_summaries(out, spec)) == stamp  # nothing already written is lost
    assert json.loads((out / cells_of(spec)[0].folder / CELL_FILE).read_text())["eval"]["episodes"] == 3


def test_an_unfinished_run_is_refused_and_a_retrained_one_makes_its_cells_unfinished(
    wall_store, tmp_path, capsys, kill_at_epoch
):
    from wmplan.config import apply_overrides, preset
    from wmplan.models.run_folder import RunFolder
    from wmplan.training.trainer import train

    run, out = tmp_path / "run", tmp_path / "sweep"
    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "model.encoder.name": "state",
            "train.epochs": 2,
            "train.steps_per_epoch": 5,
        },
    )
    with kill_at_epoch(1):
        train(cfg, run, progress=False)
    spec = load_spec(None, [f"models=base:{run}", "planners=adam", "modes=open", "episodes=2", "planner.steps=3"])
    with pytest.raises(ValueError, match=f"{run} is unfinished \\(1 of 2 epochs trained"):
        run_sweep(spec, out, device="cpu", progress=False)
    assert not out.exists()

    train(cfg, run, resume=True, progress=False)
    first = run_sweep(spec, out, device="cpu", progress=False)
    (cell,) = first.ran
    fingerprint = RunFolder(run).state().fingerprint
    assert [(c["run_fingerprint"], c["run_epoch"], c["run_finished"]) for c in first.grid["cells"]] == [
        (fingerprint, 2, True)
    ]
    capsys.readouterr()

    train(apply_overrides(cfg, {"train.epochs": 3}), run, resume=True, progress=False)  # the same path, retrained
    again = run_sweep(spec, out, device="cpu", progress=False)
    assert again.ran == [cell] and again.finished_before == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out / cell}: the run {run} has changed since this cell was planned" in err
    summary = json.loads((out / cell / SUMMARY_FILE).read_text())
    assert (summary["run_fingerprint"], summary["run_epoch"]) == (RunFolder(run).state().fingerprint, 3)
    assert summary["run_fingerprint"] != fingerprint and again.grid["cells"][0]["run_epoch"] == 3
    assert run_sweep(spec, out, device="cpu", progress=False).ran == []  # and planned once only


def test_a_cell_folder_planned_with_other_settings_is_refused_naming_the_first_one(tmp_path):
    import json

    from wmplan.experiments.cell_folder import finished_cell

    record = {"run": "r", "planner": {"name": "cem", "samples": 300, "topk": 30}, "mpc": True}
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / CELL_FILE).write_text(json.dumps({**record, "planner": {**record["planner"], "samples": 100}}))
    with pytest.raises(ValueError, match=r"planned with other settings \(planner.samples was 100, now 300\)"):
        finished_cell(folder, record, None, say=False)
    (folder / CELL_FILE).write_text(json.dumps(record))
    assert finished_cell(folder, record, None, say=False) is None  # the same settings, no summary yet: not finished
