"""A pool of worker processes for independent eval cells (`wmplan sweep --workers`, `wmplan demo
--workers`): each worker plans on one thread, so N workers use N cores the way N single-thread `wmplan
eval` runs would, and give the same files. Small planning matmuls gain little from a second thread
(1.5x from 2 threads on the Wall demo's CEM rollouts), two one-thread workers nearly 2x.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any


def check_workers(workers: int) -> None:
    """Refuse a worker count below 1 (callers check it before any work, not when the cells come)."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")


def init_worker(parent: int | None = None) -> None:
    """A pool worker: one thread (the workers share the cores) and denormals flushed, as `wmplan eval`.
    With `parent` (the pool owner's pid), on Linux: killed with it (kill -9 included), rather than left
    to plan the jobs already queued to it."""
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    if parent is not None and sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the owner died before the line above
            os._exit(1)


def pool_results(fn: Callable[..., Any], jobs: dict[str, tuple], workers: int, what: str) -> Iterable[tuple[str, Any]]:
    """(name, fn(*args)) of each job as it ends, planned by `workers` spawned processes. `fn` must be a
    module-level function (it is pickled). A failing job stops the pool, naming the job (`what` says what
    a job is: "sweep cell", "demo cell"); jobs already finished keep their files."""
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(os.getpid(),)) as pool:
        pending = {pool.submit(fn, *args): name for name, args in jobs.items()}
        while pending:
            # FIRST_COMPLETED, not FIRST_EXCEPTION: the latter waits for every job unless one fails, so no result
            # (and no progress) would come out before the last job ends.
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                name = pending.pop(future)
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise RuntimeError(
                        f"{what} {name} failed: {future.exception()}; fix it and rerun: finished cells are kept"
                    ) from future.exception()
                yield name, future.result()
