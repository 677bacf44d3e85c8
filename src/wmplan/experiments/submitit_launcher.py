"""`wmplan sweep --launcher submitit`: a sweep's unfinished cells as SLURM jobs, submitted through submitit
(`pip install "wmplan[cluster]"`), one job per `--cells-per-job` cells.

The submitting process claims the cells: it splits them into jobs before submitting, so each cell is in one
job and no job takes a lock (file locks across nodes are not to be trusted on shared file systems). A job
plans its cells by the rule of every grid (wmplan.experiments.cell_folder), so a rerun sees which finished.
The submitting process waits for its jobs (a bar counts the finished cells); a job that fails is named with
the cells it left unfinished and its log, and a rerun submits only the unfinished cells. Interrupting the
submitting process (Ctrl-C, SIGTERM) cancels its jobs; one killed with -9 leaves them running.

The resources of every job are the sweep's `slurm.<field>` settings (SlurmSettings), e.g.

    wmplan sweep --config sweep.yaml --launcher submitit --set slurm.partition=gpu --set slurm.gpus_per_job=1
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wmplan.experiments.cell_jobs import CellJob
from wmplan.overrides import apply_dataclass_overrides
from wmplan.range_checks import check_finite, check_ranges

LAUNCHERS = ("local", "submitit")
"""local: a pool of processes on this machine (--workers) or torchrun ranks; submitit: SLURM jobs."""
INSTALL = 'pip install "wmplan[cluster]"'
POLL_SECONDS = 2.0
"""How often the submitting process looks at its jobs and cells (submitit asks SLURM at most once a minute)."""


@dataclass
class SlurmSettings:
    """The resources of each job: `--set slurm.<field>=value`, or a `slurm:` table in the sweep's file."""

    partition: str | None = None
    """The SLURM partition (default: the cluster's)."""
    time_min: int = 60
    """Minutes a job may run before SLURM ends it: enough for its --cells-per-job cells."""
    gpus_per_job: int = 0
    """GPUs of each job, on one node; with several, its cells spread over them (--device auto or cuda)."""
    cpus_per_task: int = 1
    """CPU cores of each job: it plans its cells in this many one-thread processes at once."""
    mem_gb: float | None = None
    """Memory of each job in GB (default: the partition's)."""
    folder: str | None = None
    """submitit's folder, where each job's pickles and logs go (default OUT/.submitit)."""

    def check(self) -> SlurmSettings:
        check_finite(self, prefix="slurm.")
        check_ranges(self, {"time_min": 1, "gpus_per_job": 0, "cpus_per_task": 1}, ("mem_gb",), prefix="slurm.")
        for key in ("partition", "folder"):
            if getattr(self, key) is not None and not getattr(self, key).strip():
                raise ValueError(f"slurm.{key} is empty; name one, or leave it out for the default")
        return self


def slurm_settings(values: dict[str, Any]) -> SlurmSettings:
    """The checked SlurmSettings of a sweep's `slurm.<field>` values (strings from --set, or a file's)."""
    settings = SlurmSettings()
    apply_dataclass_overrides(settings, values, "slurm")
    return settings.check()


def check_launcher(launcher: str, slurm: dict[str, Any], workers: int, cells_per_job: int | None, device: str) -> None:
    """Refuse settings that do not apply to the launcher, naming both (before anything is written)."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if launcher == "local":
        if slurm:
            raise ValueError(
                f"slurm.{next(iter(slurm))} applies to --launcher submitit, and this sweep runs with --launcher "
                "local; pass --launcher submitit, or drop the slurm.* settings"
            )
        if cells_per_job is not None:
            raise ValueError("--cells-per-job applies to --launcher submitit, not --launcher local; drop one of them")
        return
    if workers != 1:
        raise ValueError(
            f"--workers {workers} applies to --launcher local; with --launcher submitit each job plans its cells in "
            "slurm.cpus_per_task processes: set that instead"
        )
    if device == "cpu" and slurm_settings(slurm).gpus_per_job > 0:
        raise ValueError("slurm.gpus_per_job reserves GPUs that --device cpu leaves idle; drop one of them")


def require_submitit(cluster: str | None) -> Any:
    """The submitit module, where jobs can be submitted to `cluster` (None: SLURM; "local": processes on this
    machine, submitit's LocalExecutor); else an ImportError naming the extra, or a RuntimeError."""
    try:
        import submitit
    except ImportError:
        raise ImportError(
            f"--launcher submitit needs the submitit package, which is not installed: {INSTALL}"
        ) from None
    if cluster is None and submitit.SlurmExecutor.affinity() < 0:
        raise RuntimeError(
            "--launcher submitit found no SLURM here (srun is not on the PATH); run the sweep on the cluster's "
            "login node, or use --launcher local"
        )
    return submitit


def make_executor(settings: SlurmSettings, folder: Path, cluster: str | None) -> Any:
    """submitit's AutoExecutor for `cluster` (None: SLURM) with the jobs' resources. No GPU is asked for when
    gpus_per_job is 0 (some clusters refuse --gpus-per-node=0)."""
    submitit = require_submitit(cluster)
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster or "slurm")
    resources = {
        "name": "wmplan-sweep",
        "timeout_min": settings.time_min,
        "gpus_per_node": settings.gpus_per_job or None,
        "cpus_per_task": settings.cpus_per_task,
        "mem_gb": settings.mem_gb,
        "slurm_partition": settings.partition,
    }
    executor.update_parameters(**{k: v for k, v in resources.items() if v is not None})
    return executor


def run_jobs(
    fn: Callable[[list[CellJob], int], Any],
    groups: list[list[CellJob]],
    settings: SlurmSettings,
    folder: Path,
    cluster: str | None,
    finished: Callable[[str], bool],
    progress: bool,
) -> None:
    """Submit one job fn(group, workers) per group of cells and wait for them all; `finished(name)` tells a
    finished cell (by its CellJob name). A RuntimeError then names each failed job's unfinished cells, the
    cause and the job's log."""
    from tqdm.auto import tqdm

    executor = make_executor(settings, folder, cluster)
    workers = [min(settings.cpus_per_task, len(group)) for group in groups]
    jobs = executor.map_array(fn, groups, workers)
    cells = [cell.name for group in groups for cell in group]
    try:
        with tqdm(total=len(cells), desc="sweep jobs", unit="cell", disable=not progress) as bar:
            while True:
                all_done = all(job.done() for job in jobs)  # before the cells: a job's cells are on disk when done
                if progress:
                    bar.update(sum(map(finished, cells)) - bar.n)
                if all_done:
                    break
                time.sleep(POLL_SECONDS)
    except BaseException:  # interrupted: the jobs would go on planning cells no one waits for
        for job in jobs:
            job.cancel(check=False)
        raise
    described = (_failure(job, group, finished) for job, group in zip(jobs, groups) if job.exception() is not None)
    failures = [failure for failure in described if failure is not None]
    if failures:
        raise RuntimeError(
            f"{len(failures)} of {len(jobs)} jobs failed: " + "; ".join(failures) + ". Fix the cause and rerun: "
            "finished cells are kept, and only the unfinished ones are submitted again"
        )


def _failure(job: Any, group: list[CellJob], finished: Callable[[str], bool]) -> str | None:
    """A failed job in words: the cells it left unfinished, its last error line and its log (None when it
    failed after finishing every cell: nothing is missing)."""
    unfinished = [cell.name for cell in group if not finished(cell.name)]
    if not unfinished:
        return None
    return f"cells {', '.join(unfinished)} (job {job.job_id}: {_cause(job)}; log {job.paths.stderr})"


def _cause(job: Any) -> str:
    """The last line of a failed job's traceback (submitit sets it between two rules of dashes), or, for a job
    that left no result (killed, out of time or memory), its state."""
    from submitit.core.utils import FailedJobError

    error = job.exception()
    parts = str(error).split("-" * 22) if isinstance(error, FailedJobError) else []
    lines = [line.strip() for line in parts[1].splitlines() if line.strip()] if len(parts) >= 3 else []
    return lines[-1] if lines else f"no result, state {job.state}"
