"""The worker pool hands out each job's result as that job ends, not when the last one does."""

import subprocess

import pytest

from wmplan.experiments.workers import check_workers, pool_results


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
