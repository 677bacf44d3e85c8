import numpy as np
import pytest

from wmplan.evaluation.paired import wilson_interval
from wmplan.evaluation.protocols import check_comparable, check_protocol
from wmplan.evaluation.summary import pool_over_seeds


def summary(success, protocol="fixed", seed=99, run="r"):
    success = list(success)
    return {
        "run": run,
        "task": "wall",
        "planner": "cem",
        "mpc": True,
        "protocol": protocol,
        "episodes": len(success),
        "seed": seed,
        "success_rate": float(np.mean(success)),
        "reached_rate": 0.0,
        "mean_final_distance": 1.0,
        "seconds_per_plan": 1.0,
        "planning_calls": 1,
        "planning_seconds_total": 1.0,
        "episode_success": success,
        "episode_final_distance": [float(not s) for s in success],
        "episode_reached": success,
        "episode_replans": [3] * len(success),
        "mean_replans": 3.0,
    }


def test_an_unknown_protocol_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown protocol 'papr'; choose one of fixed, paper"):
        check_protocol("papr")


def test_cells_of_different_protocols_or_pair_seeds_are_never_pooled():
    with pytest.raises(ValueError, match="protocol 'fixed' \\(runs/a\\) and protocol 'paper' \\(runs/b\\)"):
        pool_over_seeds([summary([1, 0], run="runs/a"), summary([1, 0], "paper", run="runs/b")], [0, 1])
    with pytest.raises(ValueError, match="pair seed 99 .* pair seed 7"):
        check_comparable([summary([1]), summary([1], seed=7)], "compare")
    pooled = pool_over_seeds([summary([1, 0]), summary([0, 0])], [0, 1])
    assert pooled["protocol"] == "fixed" and pooled["episode_replans"] == [3, 3, 3, 3]


def test_a_pooled_rate_counts_the_spread_between_seeds_in_its_interval():
    # two seeds that disagree completely on 20 shared pairs: 40 "independent" episodes would give a Wilson
    # interval of about 35-65%; resampling the seeds as well spans nearly all of 0-100%
    pooled = pool_over_seeds([summary([1] * 20), summary([0] * 20)], [0, 1])
    low, high = pooled["ci95"]
    wilson = wilson_interval(20, 40)
    assert pooled["success_rate"] == 0.5 and low <= 0.05 and high >= 0.95
    assert high - low > 2 * (wilson[1] - wilson[0])
