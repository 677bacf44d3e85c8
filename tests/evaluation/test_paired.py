import numpy as np
import pytest
from scipy import stats

from wmplan.evaluation.paired import (
    distance_difference,
    gap_change,
    mean_interval,
    sign_flip_p_value,
    success_difference,
    wilson_interval,
)


def test_mcnemar_counts_only_the_discordant_pairs():
    # 20 pairs: 9 where only a succeeds, 1 where only b does, 10 ties (5 both, 5 neither)
    a = np.array([1] * 9 + [0] + [1] * 5 + [0] * 5, bool)
    b = np.array([0] * 9 + [1] + [1] * 5 + [0] * 5, bool)
    effect = success_difference(a, b)
    assert effect.estimate == pytest.approx(0.4) and effect.n == 20
    assert effect.p_value == pytest.approx(2 * 11 / 1024)  # exact binomial: P(X <= 1 | 10, 0.5), both tails
    assert effect.significant and effect.ci95[0] > 0
    # the ties carry no evidence: adding 80 of them changes the effect's size but not its p-value
    more = success_difference(np.r_[a, np.ones(80, bool)], np.r_[b, np.ones(80, bool)])
    assert more.p_value == pytest.approx(effect.p_value) and more.estimate == pytest.approx(0.08)


def test_identical_cells_are_no_effect_and_say_so():
    same = np.array([1, 0, 1, 1, 0], bool)
    effect = success_difference(same, same)
    assert (effect.estimate, effect.p_value, effect.ci95) == (0.0, 1.0, (0.0, 0.0))
    assert effect.describe(100, " points").endswith("p = 1, not significant")


def test_sign_flip_test_is_exact_for_few_pairs():
    d = np.array([1.0, 2.0, 3.0])
    # 8 sign patterns; |sum| >= 6 only for all + and all -: p = 2 / 8
    assert sign_flip_p_value(d) == pytest.approx(0.25)
    assert sign_flip_p_value(np.zeros(5)) == 1.0


def test_distance_difference_finds_a_consistent_improvement():
    rng = np.random.default_rng(0)
    base = rng.uniform(1, 2, 30)
    better = base - 0.3 + rng.normal(0, 0.05, 30)
    effect = distance_difference(better, base)
    assert effect.estimate == pytest.approx(-0.3, abs=0.05) and effect.p_value < 0.001
    assert effect.ci95[0] < effect.estimate < effect.ci95[1] < 0


def test_gap_change_is_the_difference_of_differences_per_episode():
    adam_base, cem_base = np.array([0, 0, 1, 0]), np.array([1, 1, 1, 1])
    adam_ft, cem_ft = np.array([1, 1, 1, 0]), np.array([1, 1, 1, 1])
    effect = gap_change(adam_base, cem_base, adam_ft, cem_ft)
    assert effect.estimate == pytest.approx(0.5)  # the gap went from -0.75 to -0.25
    with pytest.raises(ValueError, match="same, non-zero number of episodes"):
        gap_change(adam_base, cem_base, adam_ft, cem_ft[:3])


def test_intervals_match_scipy():
    assert wilson_interval(40, 50) == pytest.approx([0.6696, 0.8876], abs=1e-3)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == pytest.approx(1.0)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    low, high = mean_interval(values)
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / 2
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))
