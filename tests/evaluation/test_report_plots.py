"""The efficiency plot's legend names what its panels show and nothing else."""

from wmplan.evaluation.report import efficiency_legend, plot_efficiency


def summary(seconds: float, success: float) -> dict:
    return {"planning_seconds_total": seconds, "success_rate": success}


def labels(grids) -> list[str]:
    return [entry["label"] for entry in efficiency_legend(grids)]


def test_one_model_one_mode_lists_planners_only():
    # The equal-time benchmark's panels: the base model under MPC, several planners.
    grid = {("base", p, True, False): summary(10.0, 0.5) for p in ("cem", "adam", "hybrid")}
    assert labels({"wall": grid, "pusht": grid}) == ["Adam", "CEM", "CEM then Adam"]


def test_models_and_modes_listed_when_they_differ(tmp_path):
    grid = {
        ("base", "cem", True, False): summary(100.0, 0.56),
        ("online", "adam", False, False): summary(20.0, 0.5),
        ("adversarial", "gd", True, True): summary(30.0, 0.2),
    }
    found = labels({"conv": grid})
    assert found[:3] == ["GD", "Adam", "CEM"]
    assert "base" in found and "Online WM" in found and "Adversarial WM" in found
    assert found[-3:] == ["open loop", "MPC", "MPC, bounded"]
    plot_efficiency({"conv": grid}, tmp_path / "efficiency.png", "wall")
    assert (tmp_path / "efficiency.png").stat().st_size > 0
