"""A pool of worker processes for independent eval cells (`wmplan sweep --workers`, `wmplan demo
--workers`): each worker plans on one thread, so N workers use N cores the way N single-thread `wmplan
eval` runs would, and give the same files. Small planning matmuls gain little from a second thread
(1.5x from 2 threads on the Wall demo's CEM rollouts), two one-thread workers nearly 2x.

On a machine with several GPUs, a pool planning on `cuda` (or `auto`) gives each worker its own GPU, round-robin
over the GPUs this process sees: the worker sees that GPU alone (CUDA_VISIBLE_DEVICES), so its `cuda` is that GPU.
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


def pool_gpus(device: str) -> list[str] | None:
    """The GPUs a pool planning on `device` spreads its workers over, as CUDA_VISIBLE_DEVICES names them: each
    GPU this process sees, when `device` is auto or cuda (no index) and it sees several; else None (every
    worker plans on `device`: the CPU, one GPU, or the GPU a cuda:N names)."""
    if device not in ("auto", "cuda"):
        return None
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    names = [name.strip() for name in visible.split(",")] if visible else [str(i) for i in range(count)]
    return names[:count]


def init_worker(parent: int | None = None, gpus: Any = None) -> None:
    """A pool worker: one thread (the workers share the cores) and denormals flushed, as `wmplan eval`.
    With `parent` (the pool owner's pid), on Linux: killed with it (kill -9 included), rather than left
    to plan the jobs already queued to it. With `gpus` (a queue holding one GPU name per worker): the worker
    takes one and sees that GPU alone, set before torch first touches CUDA."""
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    if parent is not None and sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the owner died before the line above
            os._exit(1)


def pool_results(
    fn: Callable[..., Any], jobs: dict[str, tuple], workers: int, what: str, device: str = "cpu"
) -> Iterable[tuple[str, Any]]:
    """(name, fn(*args)) of each job as it ends, planned by `workers` spawned processes. `fn` must be a
    module-level function (it is pickled). A failing job stops the pool, naming the job (`what` says what
    a job is: "sweep cell", "demo cell"); jobs already finished keep their files. `device` is the jobs'
    device: on several GPUs each worker gets its own (pool_gpus)."""
    context = get_context("spawn")
    gpus, queue = pool_gpus(device), None
    if gpus is not None:
        queue = context.Queue()
        for i in range(workers):
            queue.put(gpus[i % len(gpus)])
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(os.getpid(), queue)
    ) as pool:
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
                    raise cell_failure(what, name, future.exception()) from future.exception()
                yield name, future.result()


def cell_failure(what: str, name: str, error: BaseException | None) -> RuntimeError:
    """The error that stops a grid's cells when one fails: it names the cell and says that a rerun keeps the
    finished ones."""
    return RuntimeError(f"{what} {name} failed: {error}; fix it and rerun: finished cells are kept")
