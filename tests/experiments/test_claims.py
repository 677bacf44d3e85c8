import re

import numpy as np

from wmplan.experiments.claims import paper_directions

RNG = np.random.default_rng(0)
NOISE = RNG.normal(0, 0.01, 20)  # shared by every cell: the pairs' own difficulty, which pairing cancels


def grid_of(values: dict) -> dict:
    """A demo grid {(model, planner, mpc, bounded): summary} from {(model, planner): (success, distance)},
    20 paired episodes per cell."""
    return {
        (m, p, mpc, False): {
            "success_rate": s,
            "mean_final_distance": d,
            "seconds_per_plan": 1.0,
            "episode_success": [bool(s)] * 20,
            "episode_final_distance": list(d + NOISE + RNG.normal(0, 0.002, 20)),
        }
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


def test_directions_by_distance_read_lower_as_better_and_test_the_pairs():
    text = paper_directions(GRID, by_distance=True)
    assert "- GD below CEM on the base model, open loop: reproduced (p < 0.05); CEM - GD +0.11" in text
    # Adam - CEM: base +0.13, online +0.02 (narrowed by 0.11), adversarial +0.20 (widened by 0.07)
    assert "- Online WM narrows the Adam-CEM gap, open loop: reproduced (p < 0.05); change of Adam - CEM +0.11" in text
    widened = re.search(
        r"- Adversarial WM narrows the Adam-CEM gap, open loop: not reproduced; change of Adam - CEM (\S+)", text
    )
    assert widened and abs(float(widened.group(1)) + 0.07) < 0.005


def test_directions_by_success_see_no_difference_in_zeros_and_test_the_distances_too():
    text = paper_directions(GRID)
    line = next(x for x in text.splitlines() if x.startswith("- GD below CEM on the base model, open loop"))
    success, distance = line.split("; by final distance (how much closer): ")
    assert success.endswith("not reproduced; CEM - GD +0 points (95% CI +0 to +0), p = 1, not significant")
    # the verdict is success's, but the distances, which do differ, are tested on the same pairs
    assert distance.startswith("reproduced (p < 0.05), +0.11")


def test_summaries_without_episodes_leave_the_tests_out():
    old = {key: {k: v for k, v in s.items() if not k.startswith("episode_")} for key, s in GRID.items()}
    text = paper_directions(old)
    assert "below CEM" not in text and "planning time as a share of CEM's" in text


def test_seeds_pooled_on_the_same_pairs_are_tested_over_the_pairs():
    # two seeds that agree episode for episode: CEM wins 6 of the same 20 pairs under each. Pooled, the
    # claims test the 20 pairs (p of 6 wins out of 6, 1/32), not 40 independent episodes (12 of 12, 1/2048).
    wins = [True] * 6 + [False] * 14

    def pooled(success):
        return {
            "success_rate": float(np.mean(success)),
            "mean_final_distance": 0.5,
            "seconds_per_plan": 1.0,
            "episodes": 40,
            "train_seeds": [0, 1],
            "episode_success": success * 2,
            "episode_final_distance": [0.5] * 40,
        }

    grid = {("base", "cem", False, False): pooled(wins), ("base", "gd", False, False): pooled([False] * 20)}
    line = next(x for x in paper_directions(grid).splitlines() if x.startswith("- GD below CEM"))
    p = float(re.search(r"p = ([0-9.e-]+)", line).group(1))
    assert "CEM - GD +30 points" in line and 0.02 < p < 0.05
