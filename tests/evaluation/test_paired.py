import numpy as np
import pytest
from scipy import optimize, stats

from wmplan.evaluation.intervals import tango_interval, two_level_bootstrap
from wmplan.evaluation.multiple import (
    NO_DIFFERENCE,
    OPPOSITE_DIRECTION,
    REPRODUCED,
    REVERSED,
    SAME_DIRECTION,
    claim_verdict,
    holm,
)
from wmplan.evaluation.paired import (
    PairedEffect,
    distance_difference,
    gap_change,
    mean_interval,
    pair_clusters,
    seed_clusters,
    sign_flip_test,
    success_difference,
    wilson_interval,
)

Z = stats.norm.ppf(0.975)


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


def test_identical_cells_are_no_effect_but_not_a_certain_zero():
    same = np.array([1, 0, 1, 1, 0], bool)
    effect = success_difference(same, same)
    assert (effect.estimate, effect.p_value) == (0.0, 1.0)
    # no discordant pair in 5 says little: with b = c = 0 Tango's score is -sqrt(n d / (1 - d)) for d > 0, so
    # the interval is +-z^2 / (n + z^2) (the old conditional interval read 0 to 0)
    assert effect.ci95 == pytest.approx((-(Z**2) / (5 + Z**2), Z**2 / (5 + Z**2)), abs=1e-9)
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


def test_tango_interval_matches_the_published_example_and_can_disagree_with_the_exact_test():
    # Cavo et al. 2012, Fagerland, Lydersen and Laake's example: 6 and 16 discordant of 161 pairs; their
    # Tango interval -0.1240 to -0.0054 (the contingencytables package prints the same)
    a = np.r_[np.ones(6, bool), np.zeros(16, bool), np.ones(59, bool), np.zeros(80, bool)]
    b = np.r_[np.zeros(6, bool), np.ones(16, bool), np.ones(59, bool), np.zeros(80, bool)]
    effect = success_difference(a, b)
    assert effect.estimate == pytest.approx(-10 / 161)
    assert effect.ci95 == pytest.approx((-0.1240, -0.0054), abs=5e-5)
    # the exact test keeps 0 where the score interval does not: the margin where they may disagree
    assert effect.p_value == pytest.approx(0.0525, abs=1e-4) and not effect.significant
    five = success_difference(np.r_[np.ones(5, bool), np.zeros(45, bool)], np.zeros(50, bool))
    assert five.p_value == pytest.approx(0.0625) and five.ci95[0] > 0


def _brute_force_tango(b: int, c: int, n: int, step: float = 1e-5) -> tuple[float, float]:
    """Tango's interval by brute force: the restricted MLE of p01 by numerical maximisation of the
    likelihood (no closed form), the score on a grid of differences, the extreme differences it keeps."""

    def score(delta: float) -> float:
        low, high = max(0.0, -delta), (1 - delta) / 2  # p01, p10 = p01 + delta and p11 + p00 all in [0, 1]
        if high - low < 1e-12:
            p01 = low
        else:
            loglik = lambda p: (
                -(  # noqa: E731
                    b * np.log(max(p + delta, 1e-300))
                    + c * np.log(max(p, 1e-300))
                    + (n - b - c) * np.log(max(1 - 2 * p - delta, 1e-300))
                )
            )
            p01 = optimize.minimize_scalar(loglik, bounds=(low, high), method="bounded", options={"xatol": 1e-12}).x
        variance = n * (2 * p01 + delta - delta**2)
        return (b - c - n * delta) / np.sqrt(variance) if variance > 0 else np.inf * np.sign(b - c - n * delta)

    keeps = lambda grid: [d for d in grid if abs(score(d)) < Z]  # noqa: E731
    coarse = keeps(np.arange(-1 + step, 1, 100 * step))  # then each end to `step` within the last coarse step
    low = min(keeps(np.arange(max(-1 + step, coarse[0] - 100 * step), coarse[0] + step, step)))
    high = max(keeps(np.arange(coarse[-1], min(1 - step, coarse[-1] + 100 * step) + step / 2, step)))
    return low, high


@pytest.mark.parametrize("b, c, n", [(1, 0, 50), (3, 1, 12), (0, 4, 10), (2, 2, 9), (6, 0, 6)])
def test_tango_interval_is_the_score_test_inverted(b, c, n):
    low, high = tango_interval(b, c, n)
    brute = _brute_force_tango(b, c, n)
    assert (low, high) == pytest.approx(brute, abs=3e-5)
    assert low <= (b - c) / n <= high and -1 <= low and high <= 1


def test_tango_counts_the_uncertainty_in_the_number_of_discordant_pairs():
    # one discordant pair of 50: the exact interval conditional on it could only span +-1/50
    a, b = np.r_[True, np.zeros(49, bool)], np.zeros(50, bool)
    effect = success_difference(a, b)
    share = stats.binomtest(1, 1).proportion_ci(method="exact")
    conditional = ((2 * share.low - 1) / 50, (2 * share.high - 1) / 50)
    assert effect.ci95[0] < conditional[0] and effect.ci95[1] > conditional[1]
    assert effect.ci95[0] < effect.estimate == 0.02 < effect.ci95[1]
    assert effect.ci95 == pytest.approx((-0.0528, 0.1050), abs=1e-3)  # about -5 to +11 points


def test_sign_flip_intervals_exclude_zero_exactly_when_the_test_rejects():
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


def test_pooled_seeds_carry_a_two_level_bootstrap_beside_the_sign_flip_test():
    # two seeds on 50 pairs, most tied: the sign-flip interval ends at exactly 0 (an artefact of the ties,
    # p = 0.076); the bootstrap over seeds and pairs has no such end and reaches below 0
    first, second = np.zeros(50), np.zeros(50)
    first[38:46], second[43:46], second[46:49], second[49] = 1, 1, -1, 1
    d = np.r_[first, second]
    pairs, seeds = pair_clusters(50, 2), seed_clusters(50, 2)
    effect = success_difference(d > 0, d < 0, clusters=pairs, seeds=seeds)
    assert list(seed_clusters(3, 2)) == [0, 0, 0, 1, 1, 1]
    assert effect.p_value == pytest.approx(0.076, abs=0.01) and effect.ci95[0] == 0.0
    assert effect.bootstrap_ci95 is not None and effect.bootstrap_ci95[0] < -0.02 < 0.2 < effect.bootstrap_ci95[1]
    assert success_difference(d > 0, d < 0, clusters=pairs).bootstrap_ci95 is None
    text = effect.describe(100, " points")
    assert (
        "(95% CI +0 to +18 by sign flips over pairs; -4 to +22 by a two-level bootstrap over seeds and pairs)" in text
    )
    assert distance_difference(d, np.zeros(100), clusters=pairs, seeds=seeds).bootstrap_ci95 == effect.bootstrap_ci95
    with pytest.raises(ValueError, match="pass clusters"):
        distance_difference(d, np.zeros(100), seeds=seeds)


def test_the_bootstrap_resamples_seeds_as_well_as_pairs():
    # every pair gains +0.3 under seed 0, 0 under seed 1, -0.3 under seed 2: the pairs agree, the seeds do not.
    # The sign-flip test over pairs sees each pair's mean, 0, and no uncertainty; the bootstrap draws three
    # seeds, all three the same one with chance 1/27 > 2.5% each way, so its interval is exactly -0.3 to +0.3
    d = np.repeat([0.3, 0.0, -0.3], 20)
    pairs, seeds = pair_clusters(20, 3), seed_clusters(20, 3)
    assert two_level_bootstrap(d, pairs, seeds) == pytest.approx((-0.3, 0.3))
    assert distance_difference(d, np.zeros(60), clusters=pairs).ci95 == (0.0, 0.0)
    # one seed: a plain percentile bootstrap over pairs (compared with one drawn independently here)
    values = np.random.default_rng(3).normal(0.2, 1.0, 40)
    means = np.random.default_rng(4).choice(values, size=(20_000, 40)).mean(axis=1)
    ours = two_level_bootstrap(values, np.arange(40), np.zeros(40))
    assert ours == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), abs=0.02)
    assert ours == two_level_bootstrap(values, np.arange(40), np.zeros(40))  # a fixed generator seed
    with pytest.raises(ValueError, match="every training seed must plan every pair exactly once"):
        two_level_bootstrap(d[:-1], pairs[:-1], seeds[:-1])


def test_holm_steps_down_stays_monotone_and_caps_at_one():
    # by hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the last is raised
    # to 0.06 so that a larger raw p never gets a smaller adjusted one
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    capped = holm([0.3, 0.6, 0.9])  # 3 x 0.3, then 2 x 0.6 = 1.2 capped at 1, then 0.9 raised to 1
    assert capped[0] == pytest.approx(0.9) and capped[1:] == [1.0, 1.0]
    assert holm([0.02]) == [0.02] and holm([]) == []
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        holm([0.5, 1.5])


def test_verdicts_read_the_adjusted_p_and_the_direction():
    assert claim_verdict(0.2, 0.01) == REPRODUCED == "reproduced (p < 0.05)"
    assert claim_verdict(0.2, 0.06) == SAME_DIRECTION == "same direction, not significant"
    assert claim_verdict(-0.2, 0.06) == OPPOSITE_DIRECTION == "opposite direction, not significant"
    assert claim_verdict(-0.2, 0.01) == REVERSED == "reversed (p < 0.05)"
    assert claim_verdict(0.0, 1.0) == NO_DIFFERENCE
    effect = PairedEffect(0.2, (0.05, 0.35), 0.02, 50)
    assert effect.describe(100, " points", adjusted=0.08).endswith("p = 0.02, Holm-adjusted p = 0.08, not significant")
    assert effect.describe(100, " points", adjusted=0.04).endswith("Holm-adjusted p = 0.04")
