import json
import subprocess
import sys

from wmplan.cli import main


def test_collect_then_info(tmp_path, capsys):
    out = tmp_path / "wall"
    assert main(["collect", "--env", "wall", "--episodes", "3", "--out", str(out), "--seed", "2"]) == 0
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert summary["episodes"] == 3 and summary["frames"] == 153 and summary["task"] == "wall"
    assert summary["arrays"]["obs"]["dtype"] == "uint8"


def test_collect_into_a_non_empty_path_fails_clearly(tmp_path, capsys):
    out = tmp_path / "wall"
    main(["collect", "--episodes", "1", "--out", str(out)])
    assert main(["collect", "--episodes", "1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_info_on_a_missing_dataset_names_the_fix(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wmplan.cli", "info", str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "wmplan collect" in proc.stderr


def test_unknown_task_setting_is_rejected(tmp_path, capsys):
    assert main(["collect", "--episodes", "1", "--out", str(tmp_path / "x"), "--task-set", "wal_x=3"]) == 2
    assert "wal_x" in capsys.readouterr().err


def test_version_and_a_reader_that_leaves_early(wall_store):
    import os

    version = subprocess.run([sys.executable, "-m", "wmplan.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip().startswith("wmplan ")
    # `wmplan info DATA | head -1`: the reader is gone before anything is written (its end is closed
    # before the process starts), so every write meets a broken pipe: no traceback, exit 0
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "wmplan.cli", "info", str(wall_store.path)], stdout=write, stderr=subprocess.PIPE
        )
    finally:
        os.close(write)
    assert out.returncode == 0 and out.stderr.decode() == ""
