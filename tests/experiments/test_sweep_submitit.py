"""`wmplan sweep --launcher submitit`: the cells as submitit jobs, here run by submitit's LocalExecutor (processes
on this machine, as SLURM runs them on its nodes): the same grid.json as the local launcher, a rerun that submits
only the unfinished cells, a failed job named with its cells and log, and launcher settings that do not apply
refused."""

import json
import re
import sys
from pathlib import Path

import pytest
import submitit

from wmplan.cli import main
from wmplan.experiments.cell_folder import SUMMARY_FILE
from wmplan.experiments.sweep import GRID_FILE, run_sweep
from wmplan.experiments.sweep_spec import cells_of, load_spec

SETTINGS = ["planners=adam", "modes=open,mpc", "seeds=0", "episodes=2", "planner.steps=3", "mpc.replans=1"]
ON_THIS_MACHINE = {"device": "cpu", "progress": False, "launcher": "submitit", "cluster": "local"}


def _spec(run, *sets):
    return load_spec(None, [f"models=base:{run}", *SETTINGS, *sets])


def _outcomes(grid):
    """grid.json less each cell's seconds per plan (timing differs from run to run; the outcomes may not)."""
    return {**grid, "cells": [{k: v for k, v in c.items() if k != "seconds_per_plan"} for c in grid["cells"]]}


@pytest.fixture
def submitted(monkeypatch):
    """The cells of each job submitted, one list of jobs per submission (spied on where they reach submitit)."""
    calls = []
    real = submitit.AutoExecutor.map_array

    def spy(self, fn, groups, *rest):
        calls.append([[job[1] for job in group] for group in groups])
        return real(self, fn, groups, *rest)

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", spy)
    return calls


def test_jobs_write_the_local_launchers_grid_and_a_rerun_submits_nothing(tiny_run, tmp_path, submitted):
    spec = _spec(tiny_run)
    cells = [c.folder for c in cells_of(spec)]
    local = run_sweep(spec, tmp_path / "local", device="cpu", progress=False)
    two_cores = _spec(tiny_run, "slurm.cpus_per_task=2")  # the job plans its cells in two one-thread processes
    jobs = run_sweep(two_cores, tmp_path / "jobs", cells_per_job=2, **ON_THIS_MACHINE)
    assert submitted == [[cells]]  # both cells in one job
    assert sorted(jobs.ran) == sorted(cells) and jobs.finished_before == [] and jobs.busy == []
    assert jobs.grid is not None and _outcomes(jobs.grid) == _outcomes(local.grid)
    assert json.loads((tmp_path / "jobs" / GRID_FILE).read_text()) == jobs.grid
    assert list((tmp_path / "jobs" / ".submitit").glob("*_log.err"))  # submitit's logs, under OUT by default

    again = run_sweep(spec, tmp_path / "jobs", **ON_THIS_MACHINE)
    assert len(submitted) == 1 and again.ran == [] and sorted(again.finished_before) == sorted(cells)
    assert again.grid == jobs.grid


def test_a_failed_job_is_named_with_its_log_and_a_rerun_submits_only_its_cell(tiny_run, tmp_path, submitted):
    out, logs = tmp_path / "sweep", tmp_path / "logs"
    spec = _spec(tiny_run, f"slurm.folder={logs}")  # submitit's folder elsewhere than OUT/.submitit
    broken, other = (c.folder for c in cells_of(spec))
    (out / broken / "episodes.jsonl").mkdir(parents=True)  # where the cell's episodes go: its job fails at the end
    with pytest.raises(RuntimeError) as err:
        run_sweep(spec, out, **ON_THIS_MACHINE)
    message = str(err.value)
    assert message.startswith("1 of 2 jobs failed: ") and "\n" not in message
    assert f"cells {broken} (job " in message and "Is a directory" in message and other not in message
    (log,) = re.findall(r"log (\S+_log\.err)\)", message)
    assert Path(log).parent == logs and "Is a directory" in Path(log).read_text()
    assert (out / other / SUMMARY_FILE).exists() and not (out / broken / SUMMARY_FILE).exists()
    assert not (out / GRID_FILE).exists()  # written once every cell is finished, not before

    (out / broken / "episodes.jsonl").rmdir()
    result = run_sweep(spec, out, **ON_THIS_MACHINE)
    assert submitted == [[[broken], [other]], [[broken]]]  # one job per cell, then the unfinished one alone
    assert result.ran == [broken] and result.finished_before == [other]
    assert result.grid is not None and len(result.grid["cells"]) == 2 and (out / GRID_FILE).exists()


def test_settings_that_do_not_apply_to_the_launcher_are_refused_naming_both(tiny_run, tmp_path, capsys):
    out = tmp_path / "sweep"
    line = ["sweep", "--out", str(out), "--set", f"models=base:{tiny_run}", "--set", "planners=adam"]
    submit = ["--launcher", "submitit"]
    for extra, words in (
        (["--set", "slurm.partition=gpu"], ("slurm.partition", "--launcher submitit", "--launcher local")),
        (["--cells-per-job", "2"], ("--cells-per-job", "--launcher submitit", "--launcher local")),
        ([*submit, "--workers", "2"], ("--workers 2", "--launcher local", "slurm.cpus_per_task")),
        ([*submit, "--device", "cpu", "--set", "slurm.gpus_per_job=1"], ("slurm.gpus_per_job", "--device cpu")),
        ([*submit, "--set", "slurm.time_min=0"], ("slurm.time_min must be at least 1",)),
        ([*submit, "--set", "slurm.cpus_per_task=1.5"], ("slurm.cpus_per_task expects a whole number",)),
        ([*submit, "--set", "slurm.gpus_per_job=-1"], ("slurm.gpus_per_job must be at least 0",)),
        ([*submit, "--set", "slurm.mem_gb=0"], ("slurm.mem_gb must be above 0",)),
        ([*submit, "--set", "slurm.mem_gb=nan"], ("slurm.mem_gb must be a finite number",)),
        ([*submit, "--set", "slurm.partition="], ("slurm.partition is empty",)),
        ([*submit, "--set", "slurm.gpus=1"], ("unknown config key slurm.'gpus'", "slurm.gpus_per_job")),
    ):
        assert main([*line, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and all(word in err for word in words), (extra, err)
    assert not out.exists()


def test_without_submitit_or_slurm_the_error_says_what_to_install_or_where_to_run(
    tiny_run, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "sweep"
    line = ["sweep", "--out", str(out), "--set", f"models=base:{tiny_run}", "--set", "planners=adam"]
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "submitit", None)  # as if not installed: importing it fails
        assert main([*line, "--launcher", "submitit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'submitit package, which is not installed: pip install "wmplan[cluster]"' in err
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))
    assert main([*line, "--launcher", "submitit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "found no SLURM here (srun is not on the PATH)" in err
    assert not out.exists()


def test_interrupting_the_submitting_process_cancels_its_jobs(tiny_run, tmp_path, monkeypatch):
    stopped = []
    cancel = submitit.LocalJob.cancel

    def cancel_and_note(self, check=True):
        cancel(self, check=check)
        stopped.append(self._process)

    def interrupted(self, force_check=False):
        raise KeyboardInterrupt  # Ctrl-C while the submitting process waits

    monkeypatch.setattr(submitit.LocalJob, "cancel", cancel_and_note)
    monkeypatch.setattr(submitit.LocalJob, "done", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(_spec(tiny_run), tmp_path / "sweep", **ON_THIS_MACHINE)
    # Each job was cancelled and its process ended. Its exit status is not asserted: it depends on whether the
    # job had installed submitit's signal handlers (then it exits 0) when the cancel reached it.
    assert len(stopped) == 2 and all(process.wait(timeout=120) is not None for process in stopped)


def test_the_slurm_settings_reach_each_jobs_sbatch_script(tmp_path, monkeypatch):
    from wmplan.experiments.submitit_launcher import make_executor, slurm_settings

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")  # submitit looks for srun to know it is on SLURM
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    settings = {"partition": "gpu", "time_min": "120", "gpus_per_job": "2", "cpus_per_task": "4", "mem_gb": "16"}
    script = make_executor(slurm_settings(settings), tmp_path / "logs", None)._executor._make_submission_file_text(
        "python -m job", "uid"
    )
    for line in ("partition=gpu", "time=120", "gpus-per-node=2", "cpus-per-task=4", "mem=16GB", "nodes=1"):
        assert f"#SBATCH --{line}\n" in script, line
    assert f"#SBATCH --error={tmp_path / 'logs'}/%j_0_log.err\n" in script
    default = make_executor(slurm_settings({}), tmp_path / "logs", None)._executor._make_submission_file_text("x", "u")
    assert "--time=60\n" in default and "--gpus-per-node" not in default and "--partition" not in default
