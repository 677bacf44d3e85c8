"""The one way every grid plans its eval cells (demo and study through runner.run_grid; the sweep's local
launcher, torchrun ranks and submitit jobs): each by the rule of every grid (experiments.cell_folder), in this
process or in a pool of one-thread workers (experiments.workers). A cell's outcome is "ran" (planned now),
"finished" (finished before: its summary read back) or "busy" (another process holds its folder's lock).

    >>> job = CellJob(run, "base/adam", cfg, Path("eval/base/adam"), cell_record(cfg), None)  # doctest: +SKIP
    >>> [(name, outcome) for name, outcome, _ in do_cells([job], 1, "cpu", progress=False)]  # doctest: +SKIP
    [('base/adam', 'ran')]
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.cell_folder import finished_cell, plan_cell
from wmplan.experiments.workers import cell_failure, init_worker, pool_results
from wmplan.writing import OutputError, claim_folder


class CellJob(NamedTuple):
    """One cell to plan; a tuple, so it pickles into a worker or a submitit job."""

    run: str | Path
    name: str
    """The cell in results and messages (the sweep's: its folder under OUT)."""
    cfg: EvalConfig
    folder: Path
    record: dict[str, Any]
    """Its cell.json (cell_folder.cell_record)."""
    fingerprint: str | None
    """The run's fingerprint the caller checked the cell against up front (saying then, on stderr, that a
    retrained run's cell is planned again); None: the run's fingerprint now, read and said here."""


def do_cell(job: CellJob, device: str, claim: bool, progress: bool) -> tuple[str, EvalSummary | None]:
    """("ran", summary) having planned `job` on this rank's `device`, ("finished", summary), or with `claim`
    ("busy", None) when another process holds its folder (the lock is held while the cell is planned)."""
    try:
        lock = claim_folder(job.folder, "the eval cell") if claim else None
    except OutputError:
        return "busy", None
    try:
        fingerprint = job.fingerprint
        if fingerprint is None:
            from wmplan.models.run_folder import RunFolder

            fingerprint = RunFolder(job.run).state().fingerprint
        done = finished_cell(job.folder, job.record, fingerprint, say=job.fingerprint is None)
        if done is not None:  # finished before, or by another process since the caller looked
            return "finished", done
        return "ran", plan_cell(job.run, job.cfg, job.folder, job.record, _rank_device(device), progress)
    finally:
        if lock is not None:
            lock.release()


def _rank_device(device: str) -> str:
    """`device` resolved; under torchrun, a CUDA device is the rank's own (cuda:LOCAL_RANK)."""
    from wmplan.models.world_model import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return str(resolved)


def pooled(workers: int, jobs: int) -> bool:
    """Whether do_cells plans `jobs` cells in a pool of `workers` processes (else in this process)."""
    return workers > 1 and jobs > 1


def do_cells(
    jobs: Sequence[CellJob],
    workers: int,
    device: str,
    progress: bool,
    *,
    claim: bool = False,
    one_thread: bool = False,
    what: str | None = None,
) -> Iterator[tuple[str, str, EvalSummary | None]]:
    """(name, outcome, summary) of each job as it ends (do_cell): in this process (`progress`: each cell's
    bar), or in a pool of `workers` one-thread processes, each on its own GPU where there are several.
    `claim`: take each folder's lock. `one_thread`: in this process too, one thread and denormals flushed as in
    a worker (files equal to `OMP_NUM_THREADS=1 wmplan eval`'s), the thread count restored after. A failing
    cell stops the cells, named "<what> <name> failed" (`what` None: in this process, its own error)."""
    if pooled(workers, len(jobs)):
        named = {job.name: (job, device, claim, False) for job in jobs}
        for name, (outcome, summary) in pool_results(do_cell, named, workers, what or "cell", device):
            yield name, outcome, summary
        return
    import torch

    threads = torch.get_num_threads()
    if one_thread:
        init_worker()
    try:
        for job in jobs:
            try:
                outcome, summary = do_cell(job, device, claim, progress)
            except Exception as exc:
                if what is None:
                    raise
                raise cell_failure(what, job.name, exc) from exc
            yield job.name, outcome, summary
    finally:
        torch.set_num_threads(threads)
