"""scripts/gpu_check.py, the device check a GPU machine runs, works end to end (here on the CPU, tiny)."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def test_gpu_check_runs_on_the_cpu_and_reports_its_figures(tmp_path):
    out = tmp_path / "check.json"
    flags = ["--device", "cpu", "--preset", "tiny", "--tokens", "8", "--token-dim", "2", "--num-hist", "1"]
    flags += ["--steps", "1", "--episodes", "2", "--json", str(out)]
    subprocess.run([sys.executable, str(SCRIPT), *flags], check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["bf16"] is False and result["batch_size"] == 32
    assert result["train_flops_per_step"] > 0 and result["train_samples_per_second"] > 0
    assert result["adam100_plan_seconds"] > 0 and result["cem300x30_plan_seconds"] > 0
