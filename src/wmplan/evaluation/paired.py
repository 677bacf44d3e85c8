"""Paired statistics for comparisons on the same start/goal pairs.

Two planners, or two models, planned from the same pairs give paired outcomes: episode i of one cell
and episode i of the other share a start and a goal. A comparison is a test on the per-episode
differences, not two overlapping intervals:
- success (bool per episode, one training seed): McNemar's exact test (a binomial test on the discordant
  pairs) gives the p-value, and Tango's score interval the 95% interval (evaluation.intervals: it counts
  the uncertainty in the number of discordant pairs, which the exact interval conditional on that number
  leaves out). The interval is the score test inverted and the p-value the exact test, so near 5% they
  can disagree: Cavo et al.'s 6 against 16 of 161 pairs read -6 points (95% CI -12.4 to -0.5) beside
  p = 0.052. Verdicts read the exact p-value (Holm-adjusted over a report's claims, evaluation.multiple),
  the more cautious of the two;
- a distance (float per episode, lower is better): a sign-flip permutation test on the differences;
- "finetuning narrows the Adam-CEM gap": the per-episode difference of differences
  (Adam_ft - CEM_ft) - (Adam_base - CEM_base), tested the same way.
A sign-flip test's interval is the set of shifts it does not reject (the test inverted), so it excludes 0
exactly when p < 0.05.

Cells pooled over training seeds plan the same pairs once per seed. Those episodes are not independent
(a pair that is hard for one seed's model tends to be hard for the next), so `clusters` (the pair of
each episode, `pair_clusters`) makes every test resample pairs, not episodes: the differences are
averaged per pair and the pairs' signs flipped; success is tested that way too. Over tie-heavy success
differences the inverted sign-flip interval is coarse (a shift of exactly 0 leaves the tied pairs tied, any
other unties them, so an end can sit at 0 as an artefact), and it leaves out the seeds as a source of
uncertainty; so with `seeds` (the training seed of each episode, `seed_clusters`) an effect also carries
a two-level bootstrap interval over seeds and pairs (`bootstrap_ci95`). The p-value stays the sign-flip
test's.

Every result is a `PairedEffect`: the mean effect (a - b), its 95% interval(s), the two-sided p-value and n.

Example:
    >>> effect = success_difference(np.array([1, 1, 1, 0]), np.array([0, 0, 1, 0]))
    >>> round(effect.estimate, 2), effect.n
    (0.5, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from wmplan.evaluation.intervals import tango_interval, two_level_bootstrap

PERMUTATION_ROUNDS = 10_000
"""Random sign patterns of a sign-flip test beyond EXACT_UP_TO units (each pattern is one matmul row)."""
EXACT_UP_TO = 16
"""Sign-flip tests over this many units or fewer enumerate every sign pattern."""
ALPHA = 0.05


@dataclass(frozen=True)
class PairedEffect:
    estimate: float
    """Mean of a - b over the pairs (a share for success: 0.25 is 25 points)."""
    ci95: tuple[float, float]
    """95% interval: Tango's score interval for the success of single-seed cells (the score test inverted:
    near 5% it can disagree with the exact p-value); otherwise the sign-flip test inverted (it excludes 0
    exactly when p < 0.05)."""
    p_value: float
    """Two-sided; exact (McNemar) for the success of single-seed cells, a sign-flip permutation test otherwise."""
    n: int
    """Episodes compared (pooled seeds: every seed's)."""
    bootstrap_ci95: tuple[float, float] | None = None
    """Cells pooled over seeds, given the seed of each episode: the 95% percentile interval of a two-level
    bootstrap over seeds and pairs (evaluation.intervals); None otherwise."""

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def describe(self, scale: float = 1.0, unit: str = "", digits: int = 0, adjusted: float | None = None) -> str:
        """'+25 points (95% CI +5 to +45), p = 0.031' (`scale` 100, `unit` ' points'); with a bootstrap
        interval '(95% CI a to b by sign flips over pairs; a' to b' by a two-level bootstrap over seeds and
        pairs)'; with `adjusted`, ', Holm-adjusted p = ...'; ', not significant' where the p that verdicts
        read (the adjusted one when given) is >= 0.05."""
        f = lambda v: f"{scale * v:+.{digits}f}"  # noqa: E731
        low, high = self.ci95
        interval = f"95% CI {f(low)} to {f(high)}"
        if self.bootstrap_ci95 is not None:
            b_low, b_high = self.bootstrap_ci95
            interval += (
                f" by sign flips over pairs; {f(b_low)} to {f(b_high)} by a two-level bootstrap over seeds and pairs"
            )
        text = f"{f(self.estimate)}{unit} ({interval}), p = {self.p_value:.3g}"
        read = self.p_value
        if adjusted is not None:
            text += f", Holm-adjusted p = {adjusted:.3g}"
            read = adjusted
        return text if read < ALPHA else text + ", not significant"


def pair_clusters(pairs: int, seeds: int) -> np.ndarray:
    """The pair of every episode of a cell pooled over `seeds` training seeds (seed after seed, each
    planning the same `pairs` pairs in the same order: `pool_over_seeds`'s layout)."""
    return np.tile(np.arange(pairs), seeds)


def seed_clusters(pairs: int, seeds: int) -> np.ndarray:
    """The training seed (0, 1, ...) of every episode of the same pooled cell: `pair_clusters`' partner."""
    return np.repeat(np.arange(seeds), pairs)


def _check_paired(*arrays: np.ndarray) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"paired outcomes need the same, non-zero number of episodes; got {sorted(lengths)}")
    return lengths.pop()


def _per_pair(differences: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """The mean difference of each pair (cluster); the differences themselves without clusters."""
    if clusters is None:
        return differences
    clusters = np.asarray(clusters)
    if len(clusters) != len(differences):
        raise ValueError(f"clusters: {len(clusters)} labels for {len(differences)} episodes")
    labels, index = np.unique(clusters, return_inverse=True)
    sums = np.bincount(index, weights=differences, minlength=len(labels))
    return sums / np.bincount(index, minlength=len(labels))


def _sign_patterns(units: int, seed: int) -> np.ndarray:
    if units <= EXACT_UP_TO:
        return 1.0 - 2.0 * ((np.arange(2**units)[:, None] >> np.arange(units)) & 1)
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(PERMUTATION_ROUNDS, units))


def _flip_p(values: np.ndarray, signs: np.ndarray) -> float:
    """Two-sided p of sum(values) under independent coin-flip signs (exact when `signs` enumerates every
    pattern; else Monte Carlo with the observed pattern counted)."""
    observed = abs(values.sum())
    if observed < 1e-12:
        return 1.0
    extreme = int(np.sum(np.abs(signs @ values) >= observed * (1 - 1e-9)))
    if len(signs) == 2 ** len(values):
        return extreme / len(signs)
    return (1 + extreme) / (len(signs) + 1)


def sign_flip_test(values: np.ndarray, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """(p, 95% interval) of the mean of per-pair `values` by a sign-flip permutation test: p under the null
    that each pair's sign is a coin flip; the interval the shifts d whose values - d the same test (the same
    sign patterns) does not reject at 5%, found by bisection on each side of the mean."""
    values = np.asarray(values, float)
    signs = _sign_patterns(len(values), seed)
    mean = float(values.mean())

    def bound(far: float) -> float:
        # between the mean (p = 1) and `far` (beyond every value): the last shift the test keeps
        if _flip_p(values - far, signs) >= ALPHA:
            return far
        inside, outside = mean, far
        for _ in range(32):  # to a 2^-32 share of the span: far below any difference the report prints
            middle = (inside + outside) / 2
            if _flip_p(values - middle, signs) >= ALPHA:
                inside = middle
            else:
                outside = middle
        return inside

    spread = float(values.max() - values.min()) + 1e-9
    low, high = bound(float(values.min()) - spread), bound(float(values.max()) + spread)
    p = _flip_p(values, signs)
    if p >= ALPHA:
        # Pairs with no difference (ties, common in success) flip to themselves at a shift of exactly 0 but not
        # at any other, so p jumps there: the shift 0, which the test keeps, stays inside the interval.
        low, high = min(low, 0.0), max(high, 0.0)
    return p, (low, high)


def _flip_effect(
    d: np.ndarray, clusters: np.ndarray | None, seed: int, seeds: np.ndarray | None = None
) -> PairedEffect:
    """A sign-flip test over the pairs (the units of `clusters`); with `seeds`, the two-level bootstrap
    interval beside it."""
    bootstrap = None
    if seeds is not None:
        if clusters is None:
            raise ValueError("seeds label each episode's training seed; pass clusters (each episode's pair) too")
        bootstrap = two_level_bootstrap(d, clusters, seeds, alpha=ALPHA, seed=seed)
    per_pair = _per_pair(d, clusters)
    if not np.any(per_pair != 0):
        return PairedEffect(0.0, (0.0, 0.0), 1.0, len(d), bootstrap)
    p, interval = sign_flip_test(per_pair, seed)
    return PairedEffect(float(per_pair.mean()), interval, p, len(d), bootstrap)


def success_difference(
    a: np.ndarray,
    b: np.ndarray,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    seeds: np.ndarray | None = None,
) -> PairedEffect:
    """Success of a minus success of b over the same pairs: McNemar's exact test on the discordant pairs
    with Tango's score interval; with `clusters` that repeat (seeds pooled), a sign-flip test on the
    pairs' mean differences, and with `seeds` as well, the two-level bootstrap interval beside it."""
    n = _check_paired(a, b)
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    d = a.astype(float) - b.astype(float)
    if clusters is not None and len(np.unique(clusters)) < n:
        return _flip_effect(d, clusters, seed, seeds)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    # no discordant pair: no evidence either way (p = 1), but the score interval still has width
    p = float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return PairedEffect(float(d.mean()), tango_interval(only_a, only_b, n, ALPHA), p, n)


def distance_difference(
    a: np.ndarray,
    b: np.ndarray,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    seeds: np.ndarray | None = None,
) -> PairedEffect:
    """Mean of a - b (e.g. final distances; negative: a ends closer) with a sign-flip permutation test
    (over pairs when `clusters` is given; with `seeds`, the two-level bootstrap interval beside it)."""
    _check_paired(a, b)
    return _flip_effect(np.asarray(a, float) - np.asarray(b, float), clusters, seed, seeds)


def gap_change(
    adam_base: np.ndarray,
    cem_base: np.ndarray,
    adam_ft: np.ndarray,
    cem_ft: np.ndarray,
    seed: int = 0,
    clusters: np.ndarray | None = None,
    seeds: np.ndarray | None = None,
) -> PairedEffect:
    """The change of (Adam - CEM) from the base to a finetuned model, per episode:
    (adam_ft - cem_ft) - (adam_base - cem_base); positive: Adam gained on CEM, which narrows the gap when
    CEM led on the base model (for success; pass negated distances to read distances the same way)."""
    _check_paired(adam_base, cem_base, adam_ft, cem_ft)
    f = [np.asarray(x, float) for x in (adam_base, cem_base, adam_ft, cem_ft)]
    return _flip_effect((f[2] - f[3]) - (f[0] - f[1]), clusters, seed, seeds)


def wilson_interval(successes: int, n: int) -> list[float]:
    """95% Wilson score interval of a success rate (scipy's binomtest)."""
    if n == 0:
        return [0.0, 1.0]
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def mean_interval(values: np.ndarray) -> list[float]:
    """95% t interval of a mean (the task's final distance over 20-50 episodes: a t, not 1.96)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return [float(values.mean()) - float("inf"), float(values.mean()) + float("inf")]
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]
