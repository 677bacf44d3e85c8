"""Faults of the system rather than of the input: a full disk, a closed or full stdout. Each ends in a
one-line error with exit status 2 and no traceback, and what was finished stays readable."""

import errno
import os
import subprocess
import sys
import uuid

import pytest

from wmplan.data.store import TrajectoryStore

WMPLAN = [sys.executable, "-m", "wmplan.cli"]


def _run(args, **kwargs):
    return subprocess.run([*WMPLAN, *args], capture_output="stdout" not in kwargs, text=True, **kwargs)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, where this test may mount one (root on Linux); skipped with the reason elsewhere."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip() or 'mount refused'})")
    yield where
    subprocess.run(["umount", str(where)], check=True)


def test_a_full_disk_during_collect_is_one_line_and_keeps_the_finished_episodes(small_disk):
    out = small_disk / "data"
    result = _run(["collect", "--env", "wall", "--episodes", "5000", "--out", str(out)])
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert "Traceback" not in result.stderr and len(errors) == 1
    assert "the disk is full" in errors[0] and str(small_disk) in errors[0]
    store = TrajectoryStore.open(out, task="wall")  # every episode committed before the disk filled reads back
    assert 0 < store.n_episodes < 5000
    assert len(store.read("action")) == int(store.episode_ends[-1])


ABANDONED_WRITES = """
import asyncio, errno
import wmplan.data.store
from zarr.core.common import concurrent_map
from zarr.core.sync import sync

async def piece(i):  # the first piece meets a full disk; its siblings are still writing when the process exits
    if i == 0:
        raise OSError(errno.ENOSPC, "No space left on device")
    await asyncio.sleep(3600)

async def chunk(i):
    await concurrent_map([(i,), (i + 10,)], piece)

try:
    sync(concurrent_map([(0,), (1,), (2,)], chunk, limit=2))
except OSError as exc:
    print("caught", exc.errno)
"""


def test_the_writes_zarr_abandons_after_a_failed_one_print_nothing_at_exit():
    """The flake this guards against: a full disk mid-chunk left zarr tasks pending, and asyncio printed
    them with tracebacks after collect's one-line error. The script makes the same state every time."""
    result = subprocess.run([sys.executable, "-c", ABANDONED_WRITES], capture_output=True, text=True)
    assert result.stdout.strip() == f"caught {errno.ENOSPC}"
    assert result.stderr == ""


def test_stdout_on_a_full_device_or_closed_is_one_line_on_stderr(wall_store):
    full = _run(["info", str(wall_store.path)], stdout=open("/dev/full", "w"), stderr=subprocess.PIPE)
    assert full.returncode == 2 and "Traceback" not in full.stderr
    assert full.stderr.strip().splitlines() == [
        "wmplan info: error: cannot use the output (No space left on device); the disk is full: free space or "
        "write elsewhere (--out); finished files are kept"
    ]
    closed = subprocess.run(
        [*WMPLAN, "info", str(wall_store.path)], stderr=subprocess.PIPE, text=True, preexec_fn=lambda: os.close(1)
    )
    assert closed.returncode == 2
    assert (
        closed.stderr.strip() == "wmplan info: error: stdout is closed; give the command an output (e.g. > wmplan.log)"
    )


def test_a_rendering_backend_that_is_not_installed_is_one_line_naming_it(tmp_path):
    # mujoco's import (in this test process) set PYOPENGL_PLATFORM for its own backend: not the child's
    env = {**{k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}, "MUJOCO_GL": "osmesa"}
    result = subprocess.run(
        [*WMPLAN, "collect", "--env", "pointmaze", "--episodes", "2", "--out", str(tmp_path / "pm")],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode == 0:
        pytest.skip("the osmesa backend is installed here")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(
        "wmplan collect: error: mujoco cannot start with the rendering backend MUJOCO_GL=osmesa"
    )
    assert not (tmp_path / "pm").exists()
