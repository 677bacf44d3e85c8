"""`wmplan sweep`: one task's Table 1 grid (models x planners x modes x seeds), each cell an ordinary
eval in its own folder, run by a pool of worker processes, by torchrun ranks or as SLURM jobs (--launcher
submitit: wmplan.experiments.submitit_launcher), and resumable.

    OUT/sweep.json                            the spec of the last invocation
    OUT/<model>/<planner>_<mode>_seed<k>/     one cell: an eval folder (cell.json first: the cell's
                                              settings; episodes.jsonl; summary.json last, atomically)
    OUT/grid.json                             every cell's numbers (wmplan.experiments.results, kind sweep:
                                              results.cell plus "seed" and "folder"), once all cells are finished
    OUT/report.md                             the success and reached tables, one block per seed

A cell is finished by the rule of every grid (wmplan.experiments.cell_folder): its cell.json says what is
asked, its summary.json (written last, by a rename) reads, and records the fingerprint its model's run has
now (a run retrained since makes its cells unfinished, and a line on stderr says each is planned again); a
rerun skips finished cells and redoes the others, so a sweep killed at any point (kill -9 included) loses
only the cells it was planning. A cell folder written with other settings (cell.json differs) is refused, never
overwritten. Each cell runs alone in its process with one CPU thread and denormals flushed, so its files
equal `OMP_NUM_THREADS=1 wmplan eval` with the same flags, whatever --workers is. Cells are claimed with
the cell folder's writer lock (wmplan.writing): workers, torchrun ranks and even two sweeps on the same
OUT never plan the same cell twice; under torchrun the last rank to finish writes grid.json. With several
GPUs, each worker plans on its own (wmplan.experiments.workers). Under --launcher submitit the submitting
process claims the cells: it hands each to one job before submitting, and the jobs take no lock.

Spec: a YAML or JSON file, then `--set key=value` on top, paths relative to the working folder
(wmplan.experiments.sweep_spec).

Example:
    >>> result = run_sweep(sweep_spec.load_spec("sweep.yaml", ["seeds=99,100"]), "results/sweep", workers=4)  # doctest: +SKIP
    >>> result = run_sweep(spec, "results/sweep", launcher="submitit", cells_per_job=4)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wmplan.evaluation.protocols import MODES, PROTOCOL_NOTES
from wmplan.evaluation.report import (
    MODEL_NAMES,
    PAPER_PLANNERS,
    Grid,
    cell,
    reached_table,
    success_grid_table,
)
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.cell_folder import SUMMARY_FILE, finished_cell
from wmplan.experiments.cell_jobs import CellJob, do_cells
from wmplan.experiments.results import GRID_FILE as GRID_FILE  # where tests and callers look for it
from wmplan.experiments.results import cell as grid_cell
from wmplan.experiments.results import document, write_document
from wmplan.experiments.submitit_launcher import check_launcher, require_submitit, run_jobs, slurm_settings
from wmplan.experiments.sweep_spec import SweepCell, SweepSpec, cells_of, eval_config, sweep_cell_record
from wmplan.planning.registry import planner_title
from wmplan.writing import atomic_write

SPEC_FILE, REPORT_FILE = "sweep.json", "report.md"


@dataclass
class SweepResult:
    ran: list[str]
    """Cell folders planned by this invocation (in this process or its workers)."""
    finished_before: list[str]
    """Cell folders skipped: finished by an earlier invocation."""
    busy: list[str]
    """Cell folders another process was writing (another rank or sweep); they are not finished yet."""
    grid: dict[str, Any] | None
    """grid.json's document once every cell is finished, else None."""
    report: str | None


def plan_job(jobs: list[CellJob], workers: int, device: str) -> dict[str, str]:
    """A submitit job: its cells (claimed by the submitting process, so no lock is taken), in `workers`
    one-thread processes; each cell's outcome by its name. A failing cell fails the job with the cell's own
    error (the submitting process names the cell and says to rerun)."""
    try:
        return {name: outcome for name, outcome, _ in do_cells(jobs, workers, device, False, one_thread=True)}
    except RuntimeError as exc:
        raise (exc.__cause__ or exc) from None


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int = 1,
    device: str = "auto",
    progress: bool = True,
    launcher: str = "local",
    cells_per_job: int | None = None,
    cluster: str | None = None,
) -> SweepResult:
    """Plan every unfinished cell of `spec` into `out`, then, once every cell is finished, write grid.json and
    report.md. `launcher` local: with `workers` processes (1: in this process), or as one torchrun rank of
    several (WORLD_SIZE > 1: the ranks share the cells); submitit: as jobs of `cells_per_job` cells (default 1)
    with the spec's slurm.* resources, submitted to SLURM (`cluster` None) or run as processes here
    (`cluster="local"`, submitit's LocalExecutor), and waited for. Every setting and folder is checked before
    any planning."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder; choose another --out")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if workers < 1 or (world > 1 and workers > 1):
        raise ValueError(
            f"--workers {workers}: give at least 1; under torchrun ({world} ranks) each rank is one worker: leave it 1"
        )
    check_launcher(launcher, spec.slurm, workers, cells_per_job, device)
    if launcher == "submitit":
        if world > 1:
            raise ValueError("--launcher submitit submits from one process; run it without torchrun")
        require_submitit(cluster)  # before anything is written
    spec, cells, records, fingerprints, task = _checked_cells(spec)
    status = {
        c.folder: "todo"
        if finished_cell(out / c.folder, records[c.folder], fingerprints[c.run]) is None
        else "finished"
        for c in cells
    }
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        atomic_write(out / SPEC_FILE, lambda tmp: tmp.write_text(json.dumps(dataclasses.asdict(spec), indent=2)))
    todo = [c for c in cells if status[c.folder] == "todo"]
    if world > 1:  # each rank starts at its own offset, so the ranks begin on different cells
        todo = todo[rank:] + todo[:rank]
    jobs = [
        CellJob(c.run, c.folder, eval_config(spec, c), out / c.folder, records[c.folder], fingerprints[c.run])
        for c in todo
    ]
    if launcher == "submitit":
        _submit(jobs, out, spec, cells_per_job or 1, cluster, device, progress)
        status |= {job.name: "ran" for job in jobs}  # every one: a cell left unfinished raised above
    else:
        cells_run = do_cells(jobs, workers, device, False, claim=True, one_thread=True, what="sweep cell")
        with tqdm(total=len(todo), desc="sweep", unit="cell", disable=not (progress and rank == 0 and todo)) as bar:
            for folder, outcome, _ in cells_run:
                status[folder] = outcome
                bar.update(1)
    ran = [c.folder for c in todo if status[c.folder] == "ran"]
    busy = [c.folder for c in todo if status[c.folder] == "busy"]
    finished_before = [f for f in records if f not in ran and f not in busy]
    if not all((out / c.folder / SUMMARY_FILE).exists() for c in cells):
        return SweepResult(ran, finished_before, busy, None, None)
    summaries = {c: json.loads((out / c.folder / SUMMARY_FILE).read_text()) for c in cells}
    grid, report = write_grid_and_report(out, spec, task, summaries)
    return SweepResult(ran, finished_before, busy, grid, report)


def _checked_cells(
    spec: SweepSpec,
) -> tuple[SweepSpec, list[SweepCell], dict[str, dict[str, Any]], dict[str, str], str]:
    """The spec with its models as local run folders, its cells, each cell's record (its settings checked),
    each run's fingerprint (an unfinished run refused) and the models' one task."""
    from wmplan.hub import local_run
    from wmplan.models.run_folder import RunFolder

    runs = {name: str(local_run(run)) for name, run in spec.models.items()}
    folders = {run: RunFolder(run) for run in runs.values()}
    fingerprints = {run: folder.require_finished(flag=None).fingerprint for run, folder in folders.items()}
    tasks = {name: folders[run].meta()["dims"]["task"] for name, run in runs.items()}
    if len(set(tasks.values())) > 1:
        raise ValueError(f"the models are of different tasks ({tasks}); sweep one task at a time")
    spec = dataclasses.replace(spec, models=runs)
    cells = cells_of(spec)
    records = {c.folder: sweep_cell_record(spec, c) for c in cells}  # every cell's settings checked here
    return spec, cells, records, fingerprints, next(iter(tasks.values()))


def _submit(
    jobs: list[CellJob],
    out: Path,
    spec: SweepSpec,
    cells_per_job: int,
    cluster: str | None,
    device: str,
    progress: bool,
) -> None:
    """The cells of `jobs` as submitit jobs of `cells_per_job` cells each, waited for (submitit_launcher)."""
    if not jobs:
        return
    settings = slurm_settings(spec.slurm)
    folder = Path(settings.folder) if settings.folder else out / ".submitit"
    by_name = {job.name: job for job in jobs}

    def finished(cell: str) -> bool:
        job = by_name[cell]
        return finished_cell(job.folder, job.record, job.fingerprint, say=False) is not None

    groups = [jobs[i : i + cells_per_job] for i in range(0, len(jobs), cells_per_job)]
    run_jobs(partial(plan_job, device=device), groups, settings, folder.absolute(), cluster, finished, progress)


def write_grid_and_report(
    out: Path, spec: SweepSpec, task: str, summaries: dict[SweepCell, EvalSummary]
) -> tuple[dict[str, Any], str]:
    """grid.json (results.cell of each cell, with its seed and folder) and report.md (per seed: the
    success table beside the paper's, the planners beyond the paper's, the reached table)."""
    cells = [
        {
            **grid_cell(s["encoder"], c.model, c.cell.planner, c.cell.mode.mpc, c.cell.mode.bounded, s),
            "seed": c.cell.pair_seed,
            "folder": c.folder,
        }
        for c, s in summaries.items()
    ]
    spec_fields = {k: v for k, v in dataclasses.asdict(spec).items() if k != "slurm"}  # how the cells ran: sweep.json
    grid_document = document("sweep", task, cells, spec=spec_fields)
    write_document(out, grid_document)
    parts = [
        f"# wmplan sweep: {task}\n",
        f"MPC cells under the {spec.protocol} protocol ({PROTOCOL_NOTES[spec.protocol]}). "
        f"{spec.episodes} start/goal pairs per cell; a cell reads `success % (95% Wilson CI) · seconds per planning "
        "call` (one batched call plans all episodes; simulator excluded). Every cell is an eval folder under "
        f"{out}; grid.json holds the numbers.\n",
    ]
    for seed in spec.seeds:
        grid: Grid = {
            (c.model, c.cell.planner, c.cell.mode.mpc, c.cell.mode.bounded): s
            for c, s in summaries.items()
            if c.cell.pair_seed == seed
        }
        parts += [f"## Pairs seed {seed}\n", success_grid_table(grid, task), "", _other_planners(grid)]
        parts += ["Reached at any step, %:\n", reached_table(grid), ""]
    report = "\n".join(parts)
    atomic_write(out / REPORT_FILE, lambda tmp: tmp.write_text(report))
    return grid_document, report


def _other_planners(grid: Grid) -> str:
    """The planners beyond the paper's (success_grid_table shows GD, Adam and CEM), one column each."""
    planners = [p for p in dict.fromkeys(key[1] for key in grid) if p not in PAPER_PLANNERS]
    if not planners:
        return ""
    lines = [
        "| model | mode | " + " | ".join(planner_title(p) for p in planners) + " |",
        "|---|---|" + "---|" * len(planners),
    ]
    for model in dict.fromkeys(key[0] for key in grid):
        for mode in MODES:
            row = [grid.get((model, p, mode.mpc, mode.bounded)) for p in planners]
            if any(r is not None for r in row):
                name = MODEL_NAMES.get(model, model)
                lines.append(f"| {name} | {mode.label} | " + " | ".join(cell(r) for r in row) + " |")
    return "\n".join(lines) + "\n"
