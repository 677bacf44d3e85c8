import numpy as np
import pytest
from scipy import stats

from wmplan.evaluation.paired import (
    distance_difference,
    gap_change,
    mean_interval,
    pair_clusters,
    sign_flip_test,
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
    assert sign_flip_test(d)[0] == pytest.approx(0.25)
    assert sign_flip_test(np.zeros(5))[0] == 1.0


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


def test_the_interval_excludes_zero_exactly_when_the_test_rejects():
    # McNemar: 5 discordant pairs all one way give p = 0.0625, 6 give 0.03125; the exact interval agrees
    nothing = np.zeros(50, bool)
    five, six = (
        success_difference(np.r_[np.ones(5, bool), nothing[5:]], nothing),
        success_difference(np.r_[np.ones(6, bool), nothing[6:]], nothing),
    )
    assert not five.significant and five.ci95[0] < 0 < five.ci95[1]
    assert six.significant and six.ci95[0] > 0
    # two seeds pooled over 50 pairs, most pairs tied: p = 0.12 at 0, but any shift off 0 unties them and
    # rejects at 5%; the interval still holds 0 (it once read +0.0000000004 to +0.17 beside p = 0.12)
    tied = np.r_[np.zeros(38), [0.5] * 5, [1.0] * 3, [-0.5] * 3, [0.5]]
    p, (low, high) = sign_flip_test(tied)
    assert p > 0.05 and low <= 0 <= high
    # the sign-flip test and its inverted interval, on differences of every kind
    rng = np.random.default_rng(1)
    for trial in range(30):
        values = rng.normal(rng.normal(0, 0.4), 1, int(rng.choice([8, 20, 50])))
        p, (low, high) = sign_flip_test(values, seed=trial)
        assert low <= values.mean() <= high
        assert (p < 0.05) == (low > 0 or high < 0)


def test_seeds_pooled_on_the_same_pairs_are_tested_over_pairs_not_episodes():
    # three seeds that agree episode for episode add no evidence about other pairs: the pooled test over
    # pairs gives what one seed gives, where counting each episode would make 15 wins out of 15 look certain
    gains = np.r_[np.ones(5, bool), np.zeros(45, bool)]
    base = np.zeros(50, bool)
    one_seed = success_difference(gains, base)
    pooled = success_difference(np.tile(gains, 3), np.tile(base, 3), clusters=pair_clusters(50, 3))
    naive = success_difference(np.tile(gains, 3), np.tile(base, 3))
    assert pooled.estimate == pytest.approx(one_seed.estimate) and pooled.n == 150
    assert naive.p_value < 1e-3 < 0.05 < pooled.p_value == pytest.approx(one_seed.p_value, abs=0.01)
    assert list(pair_clusters(3, 2)) == [0, 1, 2, 0, 1, 2]
    # distances and the gap change pool the same way
    distance = distance_difference(np.tile(gains, 3) * -1.0, np.tile(base, 3) * 1.0, clusters=pair_clusters(50, 3))
    assert not distance.significant
