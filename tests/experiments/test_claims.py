import re

import numpy as np
import pytest

from wmplan.experiments.claims import paper_directions

RNG = np.random.default_rng(0)
NOISE = RNG.normal(0, 0.01, 20)  # shared by every cell: the pairs' own difficulty, which pairing cancels


def grid_of(values: dict, mpc_steps: int | None = None) -> dict:
    """A demo grid {(model, planner, mpc, bounded): summary} from {(model, planner): (success, distance)},
    20 paired episodes per cell; with `mpc_steps`, MPC cells execute 5 steps that many times and open loop
    cells one plan of 5 (as evaluate records them)."""
    return {
        (m, p, mpc, False): {
            "success_rate": s,
            "mean_final_distance": d,
            "seconds_per_plan": 1.0,
            "episode_success": [bool(s)] * 20,
            "episode_final_distance": list(d + NOISE + RNG.normal(0, 0.002, 20)),
            **(
                {}
                if mpc_steps is None
                else {
                    "mpc": mpc,
                    "planner_config": {"horizon": 5},
                    "mpc_config": {"replans": mpc_steps // 5 if mpc else 1, "execute": 5},
                }
            ),
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
        r"- Adversarial WM narrows the Adam-CEM gap, open loop: reversed \(p < 0.05\); change of Adam - CEM (\S+)", text
    )
    assert widened and abs(float(widened.group(1)) + 0.07) < 0.005
    # 8 claims, one measure each; every claim line prints its raw and its adjusted p
    assert (
        "p-values Holm-adjusted over the 8 claims of this block, verdicts read the adjusted p" in text.splitlines()[0]
    )
    claims = [x for x in text.splitlines() if re.search(r"p = \S+, Holm-adjusted p = ", x)]
    assert len(claims) == 8


def test_directions_by_success_see_no_difference_in_zeros_and_test_the_distances_too():
    text = paper_directions(GRID)
    line = next(x for x in text.splitlines() if x.startswith("- GD below CEM on the base model, open loop"))
    success, distance = line.split("; by final distance (how much closer): ")
    # no discordant pair in 20: no difference, but Tango's interval still spans +-z^2 / (20 + z^2) = 16 points
    assert success.endswith(
        "no difference, not significant; CEM - GD +0 points (95% CI -16 to +16), p = 1, Holm-adjusted p = 1, "
        "not significant"
    )
    # the verdict is success's, but the distances, which do differ, are tested on the same pairs
    assert distance.startswith("reproduced (p < 0.05), +0.11")
    assert "Holm-adjusted over the 16 tests of this block (8 claims x 2 measures)" in text.splitlines()[0]


def test_summaries_without_episodes_leave_the_tests_out():
    old = {key: {k: v for k, v in s.items() if not k.startswith("episode_")} for key, s in GRID.items()}
    text = paper_directions(old)
    assert "below CEM" not in text and "planning time as a share of CEM's" in text


def _pooled(success: list[bool]) -> dict:
    """A cell pooled over two seeds that agree episode for episode on 20 pairs."""
    return {
        "success_rate": float(np.mean(success)),
        "mean_final_distance": 0.5,
        "seconds_per_plan": 1.0,
        "episodes": 40,
        "train_seeds": [0, 1],
        "episode_success": success * 2,
        "episode_final_distance": [0.5] * 40,
    }


def test_seeds_pooled_on_the_same_pairs_are_tested_over_the_pairs_and_holm_adjusted():
    # two seeds that agree episode for episode: CEM wins 6 of the same 20 pairs under each. Pooled, the
    # claims test the 20 pairs (p of 6 wins out of 6, 1/32), not 40 independent episodes (12 of 12, 1/2048).
    wins = [True] * 6 + [False] * 14
    grid = {("base", "cem", False, False): _pooled(wins), ("base", "gd", False, False): _pooled([False] * 20)}
    text = paper_directions(grid)
    line = next(x for x in text.splitlines() if x.startswith("- GD below CEM"))
    p, adjusted = (float(v) for v in re.search(r"p = ([0-9.e-]+), Holm-adjusted p = ([0-9.e-]+)", line).groups())
    assert "CEM - GD +30 points" in line and 0.02 < p < 0.05
    # the family is this claim's two tests (success, and distance with p = 1): 2 x 1/32 is not below 0.05, so
    # the verdict, read from the adjusted p, is not "reproduced" although the raw p is
    assert "over the 2 tests of this block (1 claim x 2 measures)" in text
    assert adjusted == pytest.approx(2 * p, abs=1e-3) and line.startswith(
        "- GD below CEM on the base model, open loop: same direction, not significant;"
    )
    # pooled cells carry the bootstrap over seeds and pairs beside the sign-flip interval; the seeds agree,
    # so it is the pairs' alone: 6 wins of 20 resampled
    assert "by sign flips over pairs; +10 to +50 by a two-level bootstrap over seeds and pairs" in line


def test_mpc_against_open_loop_is_tested_only_on_equal_executed_steps():
    values = {("base", "adam"): (0.0, 0.50), ("base", "cem"): (0.0, 0.40)}
    longer = paper_directions(grid_of(values, mpc_steps=10), by_distance=True)
    assert "MPC above open loop, base model" not in longer
    assert "- MPC above open loop: not tested (" in longer and "adam 10 against 5; cem 10 against 5" in longer
    assert "over the 2 claims of this block" in longer  # Adam below CEM in both modes; no GD, no finetuned model
    equal = paper_directions(grid_of(values, mpc_steps=5), by_distance=True)
    assert "- MPC above open loop, base model, adam: " in equal and "- MPC above open loop, base model, cem: " in equal
    assert "not tested" not in equal and "over the 4 claims of this block" in equal  # the family grows by two
