"""The worker pool hands out each job's result as that job ends, not when the last one does, and gives each
worker its own GPU where there are several."""

import subprocess

import pytest

from wmplan.experiments.workers import check_workers, pool_gpus, pool_results


def test_a_finished_job_comes_out_while_another_still_runs(tmp_path):
    # The slow job runs until the test, having received the quick job's result, creates the flag file. A pool
    # that held results back until every job ended would let it give up first (after two minutes) instead.
    flag = tmp_path / "quick job received"
    slow = [
        "sh",
        "-c",
        f"i=0; while [ ! -e '{flag}' ]; do i=$((i+1)); "
        "if [ $i -gt 1200 ]; then echo gave-up; exit 0; fi; sleep 0.1; done; echo saw-flag",
    ]
    jobs = {"slow": (slow,), "quick": (["echo", "quick"],)}
    order = []
    for name, output in pool_results(subprocess.check_output, jobs, 2, "job"):
        order.append((name, output.decode().strip()))
        if name == "quick":
            flag.touch()
    assert order == [("quick", "quick"), ("slow", "saw-flag")]


def test_a_failing_job_is_named():
    jobs = {"fails": (["sh", "-c", "exit 3"],)}
    with pytest.raises(RuntimeError, match="job fails failed"):
        list(pool_results(subprocess.check_output, jobs, 2, "job"))


def test_workers_below_one_refused():
    with pytest.raises(ValueError, match="at least 1"):
        check_workers(0)


def test_on_several_gpus_each_worker_sees_its_own(tmp_path, monkeypatch):
    # Each job waits until both have started, so they run in two workers at once; each prints the GPUs its
    # worker sees. A pool that left every worker on all GPUs (or on one) would print the same twice.
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    started = tmp_path / "started"
    started.mkdir()
    job = [
        "sh",
        "-c",
        f"touch '{started}'/$$; i=0; while [ $(ls '{started}' | wc -l) -lt 2 ]; do i=$((i+1)); "
        "if [ $i -gt 1200 ]; then echo gave-up; exit 0; fi; sleep 0.1; done; echo $CUDA_VISIBLE_DEVICES",
    ]
    results = pool_results(subprocess.check_output, {"a": (job,), "b": (job,)}, 2, "job", device="cuda")
    assert sorted(output.decode().strip() for _, output in results) == ["0", "1"]


def test_the_gpus_a_pool_spreads_over(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the GPUs a SLURM job was given, say
    assert pool_gpus("auto") == pool_gpus("cuda") == ["3", "5"]
    assert pool_gpus("cpu") is None and pool_gpus("cuda:1") is None  # the CPU, or the one GPU asked for
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pool_gpus("cuda") is None
