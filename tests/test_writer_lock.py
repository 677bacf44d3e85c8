"""Writer rule 1: every command that writes takes its --out's writer lock before any work, so a second
writer (a second demo into a running demo's folder included) is refused with the holder's pid and
changes nothing on disk."""

import json
import subprocess
import sys

import pytest

from wmplan.cli import main

HOLD = """
import sys
from wmplan.writing import claim_folder
lock = claim_folder(sys.argv[1], "x")
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    """Two folders whose writer lock another process holds: an empty one, and a running demo's."""
    root = tmp_path_factory.mktemp("held")
    (root / "demo" / "data").mkdir(parents=True)
    (root / "demo" / "demo.json").write_text(json.dumps({"env": "wall"}))
    (root / "demo" / "data" / ".zattrs").write_text(json.dumps({"format": "wmplan.trajectories/2"}))
    holders = {}
    for name in ("empty", "demo"):
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(root / name)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "held"
        holders[name] = proc
    yield {name: (root / name, proc.pid) for name, proc in holders.items()}
    for proc in holders.values():
        proc.stdin.close()
        assert proc.wait() == 0


# Every command that writes, its --out held by another process (OUT); DATA and RUN are a tiny dataset and run.
LINES = [
    ("empty", "collect --env wall --episodes 2 --out OUT"),
    ("empty", "collect --env wall --episodes 2 --append --out OUT"),
    ("empty", "import DATA --from diffusion-policy --env wall --out OUT"),
    ("empty", "export DATA --to hf --out OUT"),
    ("empty", "train --data DATA --preset tiny --out OUT"),
    ("empty", "finetune --method adversarial --run RUN --preset tiny --out OUT"),
    ("empty", "eval --run RUN --planner adam --episodes 2 --out OUT"),
    ("empty", "gap --run RUN --episodes 3 --out OUT"),
    ("empty", "landscape --run RUN --grid 5 --out OUT"),
    ("empty", "reference --env wall --episodes 2 --out OUT"),
    ("empty", "demo --episodes 2 --out OUT"),
    ("empty", "study --episodes 2 --out OUT"),
    ("empty", "sweep --set models=base:RUN --set planners=adam --set modes=open --out OUT"),
    ("demo", "demo --episodes 2 --resume --out OUT"),
    ("demo", "demo --episodes 2 --overwrite --out OUT"),
]


@pytest.mark.parametrize("folder, line", LINES, ids=[f"{f}: {line}" for f, line in LINES])
def test_a_second_writer_is_refused_with_the_holders_pid_and_changes_nothing(
    held, wall_store, tiny_run, tree, capsys, folder, line
):
    out, pid = held[folder]
    paths = {"OUT": str(out), "DATA": str(wall_store.path), "RUN": str(tiny_run)}
    before = {root: tree(root) for root in (out.parent, wall_store.path, tiny_run)}
    assert main([paths.get(token, token) for token in line.split()]) == 2
    err = capsys.readouterr().err
    assert f"{out} is being written by another process (pid {pid})" in err, err
    assert before == {root: tree(root) for root in before}
