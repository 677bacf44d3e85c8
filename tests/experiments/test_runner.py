"""The grid engine: a GridSpec refuses what it cannot make, run_grid resumes without redoing, adoption copies
only what matches."""

import json

import pytest

from wmplan.evaluation.protocols import MPC, OPEN
from wmplan.experiments import cell_folder, cell_jobs, resumable
from wmplan.experiments.adoption import adopt_grid
from wmplan.experiments.cells import Cell
from wmplan.experiments.runner import BaseRun, FinetunedRun, GridSpec, run_grid

TINY = {"model.predictor.width": 32, "train.epochs": 1, "train.steps_per_epoch": 5, "model.encoder.pretrain_steps": 10}
CELLS = (Cell("adam", OPEN), Cell("cem", MPC))


def tiny_spec(**changes) -> GridSpec:
    """A base state model and its adversarial finetuning, each planned open loop and with MPC on 2 pairs."""
    runs = (
        BaseRun("seed0/base", "state", 0, "tiny", TINY),
        FinetunedRun("seed0/adversarial", "seed0/base", "adversarial", {"train.epochs": 1, "train.steps_per_epoch": 2}),
    )
    values = dict(
        env="wall",
        collect_episodes=12,
        data_seed=0,
        runs=runs,
        cells={run.name: CELLS for run in runs},
        episodes=2,
        planner={"steps": 3, "samples": 8, "topk": 2, "iterations": 1},
        mpc={"replans": 2},
    )
    return GridSpec(**{**values, **changes})


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    return out, run_grid(tiny_spec(), out, progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"env": "walls"}, "GridSpec env: unknown task 'walls'"),
        ({"collect_episodes": 0}, "GridSpec collect_episodes: give at least 1"),
        ({"episodes": 0}, "GridSpec episodes: give at least 1"),
        ({"runs": ()}, "GridSpec runs: give at least one run"),
        ({"runs": (BaseRun("a", "state", 0, "tiny"), BaseRun("a", "state", 1, "tiny"))}, "GridSpec runs: run name 'a'"),
        ({"runs": (BaseRun("../a", "state", 0, "tiny"),)}, "GridSpec runs: run name '../a'"),
        ({"runs": (FinetunedRun("b", "a", "online"),)}, "GridSpec runs: b finetunes 'a', which is no earlier run"),
        (
            {"runs": (BaseRun("a", "state", 0, "tiny"), FinetunedRun("b", "a", "offline"))},
            "GridSpec runs: b's method 'offline'",
        ),
        (
            {"runs": (BaseRun("a", "state", 0, "tiny", {"train.epoch": 1}),)},
            "GridSpec runs: base run a: unknown config",
        ),
        ({"cells": {"seed0/other": CELLS}}, r"GridSpec cells: \['seed0/other'\] name no run"),
        ({"cells": {"seed0/base": (Cell("adam", OPEN), Cell("adam", OPEN))}}, "lists the cells \\['adam'\\] twice"),
        ({"cells": {"seed0/base": (Cell("adam", OPEN, pair_seed=7),)}}, "GridSpec cells: seed0/base's cell adam plans"),
        ({"planner": {"stepz": 3}}, "GridSpec planner: .*stepz"),
        ({"mpc": {"replans": "many"}}, "GridSpec mpc: .*replans"),
    ],
)
def test_a_bad_grid_spec_is_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_spec(**changes)


def test_run_grid_makes_every_cell_and_a_second_call_redoes_nothing(grid, monkeypatch):
    out, summaries = grid
    assert set(summaries) == {(run, cell.name) for run in ("seed0/base", "seed0/adversarial") for cell in CELLS}
    for (run, name), summary in summaries.items():
        planned = json.loads((out / "eval" / run / name / "summary.json").read_text())
        assert planned["episode_success"] == summary["episode_success"] and len(planned["episode_success"]) == 2
    finetuned = json.loads((out / "runs" / "seed0" / "adversarial" / "config.json").read_text())
    assert finetuned["parent_run"] == str((out / "runs" / "seed0" / "base").resolve())
    written = {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")}
    calls = []

    def counted(name, original):
        return lambda *args, **kwargs: calls.append(name) or original(*args, **kwargs)

    monkeypatch.setattr(cell_jobs, "plan_cell", counted("plan", cell_folder.plan_cell))
    monkeypatch.setattr(resumable, "train", counted("train", resumable.train))
    monkeypatch.setattr(resumable, "finetune", counted("finetune", resumable.finetune))
    again = run_grid(tiny_spec(), out, progress=False)
    assert calls == [] and {p: p.stat().st_mtime_ns for p in out.rglob("summary.json")} == written
    assert {k: s["episode_success"] for k, s in again.items()} == {
        k: s["episode_success"] for k, s in summaries.items()
    }


def test_run_grid_refuses_a_finished_run_asked_with_another_config(grid):
    out, _ = grid
    base = BaseRun("seed0/base", "state", 0, "tiny", {**TINY, "model.predictor.width": 48})
    spec = tiny_spec(runs=(base,), cells={})
    kept = (out / "runs" / "seed0" / "base" / "model.safetensors").read_bytes()
    with pytest.raises(Exception, match="model.predictor.width"):
        run_grid(spec, out, progress=False)
    assert (out / "runs" / "seed0" / "base" / "model.safetensors").read_bytes() == kept


def test_adoption_copies_the_runs_and_cells_whose_records_match(grid, tmp_path):
    source, _ = grid
    longer = FinetunedRun("seed0/adversarial", "seed0/base", "adversarial", {"train.epochs": 2})
    spec = tiny_spec(runs=(tiny_spec().runs[0], longer), episodes=2)
    adopted = adopt_grid(source, spec, tmp_path / "a", "cpu")
    # the finetuning asked for is longer than the source's: trained anew, its cells planned anew
    assert adopted == ["data", "runs/seed0/base", "eval/seed0/base/adam", "eval/seed0/base/cem_mpc"]
    listing = json.loads((tmp_path / "a" / "adopted.json").read_text())
    assert listing == {"demo": str(source.resolve()), "adopted": sorted(adopted)}
    other_pairs = adopt_grid(source, tiny_spec(episodes=3), tmp_path / "b", "cpu")
    assert other_pairs == ["data", "runs/seed0/base", "runs/seed0/adversarial"]
    with pytest.raises(ValueError, match="other data"):
        adopt_grid(source, tiny_spec(collect_episodes=13), tmp_path / "c", "cpu")
