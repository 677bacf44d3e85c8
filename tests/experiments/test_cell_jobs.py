"""The one per-cell path of every grid: a cell another process holds is "busy" and left alone, a finished cell
is read back and never planned again, a new cell is planned once, and a failing cell is named as its caller
asks."""

import json
import subprocess
import sys

import pytest
import torch

from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
from wmplan.experiments import cell_jobs
from wmplan.experiments.cell_folder import CELL_FILE, SUMMARY_FILE, cell_record
from wmplan.experiments.cell_jobs import CellJob, do_cell, do_cells
from wmplan.models.run_folder import RunFolder

HOLD = """
import sys
from wmplan.writing import claim_folder
lock = claim_folder(sys.argv[1], "x")
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def job(tiny_run, tmp_path):
    cfg = EvalConfig(planner="adam", episodes=2, settings=PlannerSettings(steps=2))
    return CellJob(tiny_run, "base/adam", cfg, tmp_path / "base" / "adam", cell_record(cfg, model="base"), None)


@pytest.fixture
def plans(monkeypatch):
    """Each plan_cell call's folder, the cell planned for real."""
    calls = []
    real = cell_jobs.plan_cell

    def counted(run, cfg, folder, *rest):
        calls.append(folder)
        return real(run, cfg, folder, *rest)

    monkeypatch.setattr(cell_jobs, "plan_cell", counted)
    return calls


def test_a_cell_whose_folder_another_process_holds_is_busy_and_left_alone(job, plans):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(job.folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        assert do_cell(job, "cpu", claim=True, progress=False) == ("busy", None)
        assert list(do_cells([job], 1, "cpu", False, claim=True)) == [("base/adam", "busy", None)]
    finally:
        proc.stdin.close()
        assert proc.wait() == 0
    assert plans == [] and not (job.folder / CELL_FILE).exists()


def test_a_new_cell_is_planned_once_and_a_finished_one_is_read_back_without_planning(job, plans):
    [(name, outcome, summary)] = do_cells([job], 1, "cpu", False, claim=True)
    assert (name, outcome, plans) == ("base/adam", "ran", [job.folder])
    assert json.loads((job.folder / SUMMARY_FILE).read_text()) == summary
    assert json.loads((job.folder / CELL_FILE).read_text()) == job.record
    assert summary["run_fingerprint"] == RunFolder(job.run).state().fingerprint

    assert do_cell(job, "cpu", claim=True, progress=False) == ("finished", summary)
    checked = job._replace(fingerprint=summary["run_fingerprint"])  # as the sweep passes it, checked up front
    assert list(do_cells([checked], 1, "cpu", False)) == [("base/adam", "finished", summary)]
    assert plans == [job.folder]  # planned the first time only


def test_a_cell_planned_by_a_run_since_retrained_is_planned_again(job, plans):
    list(do_cells([job], 1, "cpu", False))
    stale = job._replace(fingerprint="a fingerprint the run no longer has")
    [(_, outcome, _)] = do_cells([stale], 1, "cpu", False)
    assert outcome == "ran" and plans == [job.folder, job.folder]


def test_a_failing_cell_is_named_as_the_caller_asks_and_one_thread_is_restored(job, monkeypatch):
    def fails(*args):
        raise ValueError("no such planner setting")

    monkeypatch.setattr(cell_jobs, "plan_cell", fails)
    with pytest.raises(ValueError, match="no such planner setting"):  # the demo: the cell's own error
        list(do_cells([job], 1, "cpu", False))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # one_thread plans on one, then gives these back
    wording = r"sweep cell base/adam failed: no such planner setting; fix it and rerun: finished cells are kept"
    try:
        with pytest.raises(RuntimeError, match=wording):
            list(do_cells([job], 1, "cpu", False, claim=True, one_thread=True, what="sweep cell"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
