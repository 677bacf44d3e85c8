import json
import math

import pytest
import torch

from wmplan.cli import main
from wmplan.evaluation.gap import gap
from wmplan.evaluation.landscape import landscape
from wmplan.models.world_model import WorldModel


@pytest.fixture(scope="module")
def untrained_run(tiny_run, tmp_path_factory):
    """The same architecture, encoder and normaliser as tiny_run, freshly initialised predictor."""
    trained = WorldModel.load(tiny_run)
    torch.manual_seed(123)
    fresh = WorldModel(trained.cfg, trained.dims, trained.normalizer)
    fresh.encoder.load_state_dict(trained.encoder.state_dict())
    fresh.task_settings = trained.task_settings
    out = tmp_path_factory.mktemp("runs") / "untrained"
    meta = json.loads((tiny_run / "config.json").read_text())
    fresh.save(out, {"dataset": meta["dataset"]})
    return out


def test_gap_on_two_identical_runs(tiny_run, tmp_path):
    result = gap([tiny_run, tiny_run], tmp_path, episodes=6, progress=False)
    assert (tmp_path / "gap.png").stat().st_size > 0
    saved = json.loads((tmp_path / "gap.json").read_text())
    a, b = (saved[k] for k in saved if k != "settings")
    for key in ("expert_error", "planner_error", "ratio"):
        assert a[key] == b[key]
    assert 0 < a["expert_error"] < math.inf and 0 < a["planner_error"] < math.inf
    assert a["ratio"] == pytest.approx(a["planner_error"] / a["expert_error"])
    assert saved["settings"]["windows"] == 6 and saved["settings"]["horizon"] == 5
    assert result["settings"]["window_start_frames"] == saved["settings"]["window_start_frames"]


def test_expert_error_measures_model_quality(tiny_run, untrained_run, tmp_path):
    result = gap([tiny_run, untrained_run], tmp_path, episodes=6, progress=False)
    assert result["tiny"]["expert_error"] < result["untrained"]["expert_error"]


def test_gap_refuses_runs_of_different_tasks(tiny_run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name in ("model.safetensors", "normalization.json"):
        (other / name).write_bytes((tiny_run / name).read_bytes())
    meta = json.loads((tiny_run / "config.json").read_text())
    meta["dims"]["task"] = "pusht"
    (other / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="different tasks"):
        gap([tiny_run, other], tmp_path / "out", episodes=2, progress=False)


def test_landscape_centre_is_the_planner_optimum(tiny_run, tmp_path):
    result = landscape([tiny_run, tiny_run], tmp_path, grid=9, progress=False)
    assert (tmp_path / "landscape.png").stat().st_size > 0
    saved = json.loads((tmp_path / "landscape.json").read_text())
    a, b = (saved[k] for k in saved if k != "settings")
    assert a["cost"] == b["cost"] and len(a["cost"]) == 9 and len(a["cost"][0]) == 9
    assert a["centre_cost"] == pytest.approx(saved["settings"]["planner_cost"], abs=1e-5)
    assert a["centre_cost"] <= a["max_cost"] and a["min_cost"] <= a["centre_cost"]
    assert 0 < a["basin_width"] <= 1 and a["roughness"] >= 0
    assert result["settings"]["grid"] == 9


def test_landscape_rejects_an_even_grid(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="odd"):
        landscape([tiny_run], tmp_path, grid=8, progress=False)


def test_cli_gap_and_landscape(tiny_run, tmp_path, capsys):
    assert main(["gap", "--run", str(tiny_run), "--out", str(tmp_path / "g"), "--episodes", "3"]) == 0
    assert main(["landscape", "--run", str(tiny_run), "--out", str(tmp_path / "l"), "--grid", "5"]) == 0
    text = capsys.readouterr().out
    assert "expert" in text and "roughness" in text
    assert (tmp_path / "g" / "gap.json").exists() and (tmp_path / "l" / "landscape.json").exists()
