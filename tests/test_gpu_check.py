"""The device check a GPU machine runs (scripts/gpu_check.sh over scripts/device_check.py, and the throughput
of scripts/gpu_check.py) works end to end: here on the CPU, tiny, with 2 gloo ranks where torchrun is used."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wmplan.precision import cpu_bf16_flags

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
CHECKS = ["ddp training", "sharded eval", "bf16 planning", "throughput"]


def _device_check():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPTS / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while they are made
    spec.loader.exec_module(module)
    return module


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    """The printed table's rows: check -> (result, figures)."""
    cells = [[c.strip() for c in line.split(" | ", 2)] for line in stdout.splitlines() if " | " in line]
    assert cells[0] == ["check", "result", "figures"]
    return {check: (result, figures) for check, result, figures in cells[1:]}


def test_the_device_check_runs_every_check_tiny_on_the_cpu(tmp_path):
    out = tmp_path / "check"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    cmd = ["bash", str(SCRIPTS / "gpu_check.sh"), "--device", "cpu", "--tiny", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = _table(proc.stdout)
    assert list(rows) == CHECKS
    bf16 = "ok" if cpu_bf16_flags() else "skipped"
    assert [result for result, _ in rows.values()] == ["ok", "ok", bf16, "ok"]
    assert rows["ddp training"][1].startswith("2 ranks (gloo process group), 1 epoch in")
    assert "per-episode outcomes equal, final distances identical" in rows["sharded eval"][1]
    if bf16 == "skipped":
        assert rows["bf16 planning"][1].startswith("precision bf16 asked for, but this CPU lacks")
    else:  # planned in bf16 indeed, on the pairs the fp32 eval planned
        planned = json.loads((out / "eval" / "bf16" / "summary.json").read_text())
        assert (
            planned["precision"] == "bf16"
            and planned["episodes"] == 5
            and "s/plan bf16 / fp32" in rows["bf16 planning"][1]
        )
    assert proc.stdout.splitlines()[-1].startswith(f"wrote {out}")

    # The sharded result equals the one-process result with the same --batch, episode for episode.
    one, two = (json.loads((out / "eval" / name / "summary.json").read_text()) for name in ("single", "sharded"))
    assert one["batch"] == two["batch"] == 3 and one["episodes"] == two["episodes"] == 5
    assert "2 processes" in two["seconds_per_plan_note"]  # planned by two ranks indeed
    for key in ("success_rate", "episode_success", "episode_reached", "episode_final_distance"):
        assert one[key] == two[key], key
    # The throughput of scripts/gpu_check.py (tiny, fp32 on the CPU), as it wrote it.
    speed = json.loads((out / "throughput.json").read_text())
    assert speed["device"] == "cpu" and speed["bf16"] is False and speed["batch_size"] == 32
    assert speed["train_flops_per_step"] > 0 and speed["train_samples_per_second"] > 0
    assert speed["adam100_plan_seconds"] > 0 and speed["cem300x30_plan_seconds"] > 0
    recorded = json.loads((out / "device_check.json").read_text())
    assert [r["check"] for r in recorded["checks"]] == CHECKS and recorded["checks"][1]["data"]["same_success"]


def test_a_failed_command_fails_its_check_and_the_exit_status_after_the_table(tmp_path, monkeypatch, capsys):
    dc = _device_check()
    machine = dc.Machine(torch.device("cpu"), 2, dc.TINY, tmp_path, timeout=0)

    def training(m):
        m.run("train", ["-c", "import sys; print('the loss became nan'); sys.exit(3)"])

    monkeypatch.setattr(
        dc, "CHECKS", [("ddp training", training), *dc.CHECKS[1:3], ("throughput", lambda m: ("fast", {}))]
    )
    rows = dc.run_checks(machine)
    assert [(r.check, r.result) for r in rows] == [
        ("ddp training", "FAILED"),
        ("sharded eval", "skipped"),  # no run to plan with
        ("bf16 planning", "skipped"),
        ("throughput", "ok"),
    ]
    assert rows[0].figures == f"train exited with status 3: the loss became nan (see {tmp_path / 'logs' / 'train.log'})"
    assert dc.finish(rows, tmp_path, "CPU") == 1
    assert list(_table(capsys.readouterr().out)) == CHECKS
    assert dc.finish(rows[1:], tmp_path, "CPU") == 0  # skipped is no failure


def test_bad_flags_are_refused_before_any_work_naming_the_flag(tmp_path, capsys):
    dc = _device_check()
    (tmp_path / "kept.txt").write_text("a result")
    for flags, named in [
        (["--out", str(tmp_path)], f"--out {tmp_path} is not an empty folder"),
        (["--nproc", "-1", "--out", str(tmp_path / "new")], "--nproc must be at least 1, got -1"),
    ]:
        with pytest.raises(SystemExit) as exit:
            dc.main(["--device", "cpu", *flags])
        assert exit.value.code == 2
        assert named in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]  # nothing written, nothing lost
