"""grid.json, the one result format of the demo, the study and the sweep: each kind written and read back,
the committed study grids of the old format converted (their reports unchanged), older demo grids read."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wmplan.evaluation.protocols import MPC, OPEN
from wmplan.experiments import results
from wmplan.experiments.cells import Cell
from wmplan.experiments.legacy_results import convert_study_folder, convert_study_grid
from wmplan.experiments.results import GridResults, read_results
from wmplan.experiments.study import StudySpec, study_cell, study_document
from wmplan.experiments.study_report import write_study_report

ROOT = Path(__file__).parents[2]
STUDIES = ("wall", "wall_state", "pointmaze")
REPORTS = Path(__file__).parent / "study_reports"
"""Each committed study's report as rendered from its study_grid.json before grid.json existed."""


def _summary(success: list[bool], protocol: str = "fixed", seed: int = 99) -> dict:
    """The part of an eval summary a grid cell reads."""
    return {
        "protocol": protocol,
        "mpc_config": {"execute": 5, "replans": 2},
        "objective": {"mode": "last"},
        "success_rate": float(np.mean(success)),
        "ci95": [0.0, 1.0],
        "mean_final_distance": 0.5,
        "seconds_per_plan": 0.1,
        "seed": seed,
        "episode_success": success,
        "episode_final_distance": [0.1 * i for i in range(len(success))],
    }


def _round_trip(tmp_path: Path, doc: dict) -> GridResults:
    results.write_document(tmp_path, doc)
    return read_results(tmp_path)


def test_a_demo_grid_round_trips(tmp_path):
    found = results.cell("state", "online", "adam", True, False, _summary([True, False, True]))
    doc = results.document("demo", "wall", [{**found, "folder": "eval/state/online/adam_mpc"}], tuning_seed=0)
    read = _round_trip(tmp_path, doc)
    assert (read.kind, read.task, read.document["format"], read.document["tuning_seed"]) == ("demo", "wall", 3, 0)
    [cell] = read.cells
    assert (cell.model, cell.name, cell.protocol, cell.train_seed) == ("online", "adam_mpc", "fixed", None)
    assert read.success("online", "adam_mpc").tolist() == [True, False, True]
    assert read.seed_rates("online", "adam_mpc") == [pytest.approx(2 / 3)]
    with pytest.raises(KeyError, match="no cell 'adam_mpc' of model 'online' under paper"):
        read.success("online", "adam_mpc", "paper")
    with pytest.raises(ValueError, match="unknown grid kind 'table'"):
        results.document("table", "wall", [])


def test_a_study_grid_round_trips_and_pools_its_seeds_in_seed_order(tmp_path):
    spec = StudySpec(seeds=[3, 1], adversarial_epochs=[1], online_steps=[2], strengths=[1.0], protocols=["fixed"])
    outcomes = {3: [True, True], 1: [False, True]}
    cells = [  # written seed 1 first: the reader orders them by the study's seeds, not by the file
        study_cell(
            spec, "base", seed, Cell("adam", MPC), Path(f"eval/seed{seed}/base/adam_mpc"), _summary(outcomes[seed])
        )
        for seed in (1, 3)
    ]
    models = {"base": {"3": {"training": {"train_loss": 1.0, "val_loss": 2.0}, "diagnostics": None}}}
    models["base"]["1"] = {"training": {"train_loss": 3.0, "val_loss": 4.0}, "diagnostics": {"roughness": 0.5}}
    read = _round_trip(tmp_path, study_document(spec, 99, ["fixed"], cells, models))
    assert read.kind == "study" and read.train_seeds == [3, 1] and read.episodes == spec.episodes
    assert read.success("base", "adam_mpc").tolist() == [True, True, False, True]
    assert read.seed_rates("base", "adam_mpc") == [1.0, 0.5]
    assert [c.record["folder"] for c in read.cells_of("base", "adam_mpc")] == [
        "eval/seed3/base/adam_mpc",
        "eval/seed1/base/adam_mpc",
    ]
    assert [side["train_loss"] for side in read.training("base")] == [1.0, 3.0]
    assert read.diagnostics("base") == [None, {"roughness": 0.5}]
    assert read.document["spec"] == dataclasses.asdict(spec)


def test_a_sweep_grid_round_trips(tmp_path):
    found = results.cell("state", "base", "adam", False, False, _summary([False, True], seed=7))
    cell = {**found, "seed": 7, "folder": "base/adam_open_seed7"}
    read = _round_trip(tmp_path, results.document("sweep", "wall", [cell], spec={"episodes": 2}))
    assert read.kind == "sweep" and read.document["spec"] == {"episodes": 2}
    assert read.success("base", "adam_open_seed7").tolist() == [False, True]


@pytest.mark.parametrize("study", STUDIES)
def test_a_committed_study_grid_converts_and_renders_the_same_report(tmp_path, study):
    folder = ROOT / "docs" / "results" / "study" / study
    old = json.loads((folder / "study_grid.json").read_text())
    spec = StudySpec(**json.loads((folder / "study.json").read_text()))
    read = read_results(folder)  # no grid.json there: converted on reading
    assert read.kind == "study" and read.train_seeds == [int(s) for s in old["seeds"]]
    for seed, by_model in old["seeds"].items():
        for model, found in by_model.items():
            assert read.models[model][int(seed)].training == found["training"]
            for name in ("adam_mpc", "adam", "cem_mpc"):
                [cell] = [c for c in read.cells_of(model, name) if c.train_seed == int(seed)]
                assert list(cell.success) == found[name]["success"]
                assert list(cell.final_distance) == found[name]["final_distance"]
    assert write_study_report(tmp_path, spec, read) == (REPORTS / f"{study}.md").read_text()
    # written beside the old file, which is kept; read back the same; never converted twice
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert convert_study_folder(copy) == copy / "grid.json" and (copy / "study_grid.json").exists()
    assert read_results(copy) == GridResults.from_document(convert_study_grid(old, spec))
    with pytest.raises(ValueError, match="already holds grid.json"):
        convert_study_folder(copy)


def test_a_study_grid_with_a_cell_the_study_does_not_plan_is_refused():
    spec = StudySpec(seeds=[0], adversarial_epochs=[1], online_steps=[2], strengths=[1.0])
    old = {"seeds": {"0": {"base": {"training": {}, "gd_mpc": {"success": [True], "final_distance": [0.0]}}}}}
    with pytest.raises(ValueError, match="cell 'gd_mpc' is none of the study's"):
        convert_study_grid(old, spec)


def test_older_demo_grids_still_read():
    two = read_results(ROOT / "docs" / "results" / "wall")  # format 2: per-episode outcomes, no folders
    document = json.loads((ROOT / "docs" / "results" / "wall" / "grid.json").read_text())
    assert two.kind == "demo" and document["format"] == 2 and len(two.cells) == len(document["cells"])
    for cell, record in zip(two.cells, document["cells"], strict=True):
        assert list(cell.success) == [e["success"] for e in record["episodes"]]
        planned = Cell(record["planner"], MPC if record["mpc"] else OPEN, record["protocol"])
        if not record["bounded"]:
            assert cell.name == planned.name
    one = read_results(ROOT / "docs" / "results" / "granular")  # format 1: rates only
    assert one.kind == "demo" and one.cells and all(c.success == () and c.protocol == "fixed" for c in one.cells)


def test_a_grid_of_a_newer_format_or_no_grid_is_refused_naming_it(tmp_path):
    (tmp_path / "grid.json").write_text(json.dumps({"format": 4, "kind": "demo", "task": "wall", "cells": []}))
    with pytest.raises(ValueError, match="format 4: this wmplan reads formats 1 to 3"):
        read_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no grid.json"):
        read_results(tmp_path / "empty")
