from wmplan.experiments.demo_report import _directions


def grid_of(values: dict) -> dict:
    """A demo grid {(model, planner, mpc, bounded): summary} from {(model, planner): (success, distance)}."""
    return {
        (m, p, mpc, False): {"success_rate": s, "mean_final_distance": d, "seconds_per_plan": 1.0}
        for (m, p), (s, d) in values.items()
        for mpc in (False, True)
    }


# success rates all 0 (as on Rope), distances that do tell the planners apart
GRID = grid_of(
    {
        ("base", "gd"): (0.0, 0.50),
        ("base", "adam"): (0.0, 0.52),
        ("base", "cem"): (0.0, 0.39),
        ("online", "adam"): (0.0, 0.44),
        ("online", "cem"): (0.0, 0.42),
        ("adversarial", "adam"): (0.0, 0.60),
        ("adversarial", "cem"): (0.0, 0.40),
    }
)


def test_directions_by_distance_read_lower_as_better():
    text = _directions(GRID, by_distance=True)
    assert "GD and Adam worse than CEM on the base model, open loop: yes (GD 0.500, Adam 0.520, CEM 0.390)" in text
    # Adam - CEM: base +0.130, online +0.020 (narrowed), adversarial +0.200 (widened)
    assert "Online WM narrows the Adam-CEM gap, open loop: yes (Adam - CEM: base +0.130, online +0.020)" in text
    assert (
        "Adversarial WM narrows the Adam-CEM gap, open loop: no (Adam - CEM: base +0.130, adversarial +0.200)" in text
    )


def test_directions_by_success_see_no_difference_in_zeros():
    text = _directions(GRID)
    assert "worse than CEM on the base model, open loop: no (GD 0, Adam 0, CEM 0)" in text
    assert "narrows the Adam-CEM gap, MPC: no (Adam - CEM: base +0, online +0 points)" in text
