"""Intervals of paired differences that count every source of uncertainty (used by evaluation.paired).

- `tango_interval`: Tango's (1998) asymptotic score interval for a difference of paired proportions,
  the set of differences that Tango's score test does not reject, found by bisection. Chosen over the exact
  interval conditional on the number of discordant pairs (which treats that number as fixed, so the
  interval can never be wider than the observed share of discordant pairs: +2 points read -2 to +2 where
  the score interval reads -5 to +11) and over Newcombe's hybrid (method 10) because it is the score test
  itself inverted (at a difference of 0 Tango's statistic is McNemar's (b - c) / sqrt(b + c)), it needs
  no continuity choice, it stays inside [-1, 1], it has width where no pair is discordant, and Fagerland,
  Lydersen and Laake (Stat Med 2014) found its coverage close to nominal down to small samples.
- `two_level_bootstrap`: a percentile interval for cells pooled over training seeds on the same pairs,
  resampling the seeds and the pairs (both with replacement) of the per-(seed, pair) differences: both
  are samples (of training runs, of start/goal pairs) that a replication would draw anew. With as few
  seeds as a study trains (2-3), the seed level has few distinct draws and the percentile interval runs
  somewhat narrow (a bootstrap mean over S units has (S - 1) / S of the variance): read it as a floor on
  the uncertainty from the seeds, not a precise interval.

Example:
    >>> [round(v, 4) for v in tango_interval(6, 16, 161)]  # Cavo et al. 2012, Fagerland et al.'s example
    [-0.124, -0.0054]
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

BOOTSTRAP_ROUNDS = 10_000
"""Rounds of the two-level bootstrap (vectorised: a (rounds, seeds) @ (seeds, pairs) product)."""


def tango_score(only_a: int, only_b: int, n: int, delta: float) -> float:
    """Tango's score statistic at the difference `delta` (a's success minus b's): (b - c - n delta) over its
    standard error with p01 at its maximum likelihood under `delta` (b = only_a, c = only_b). Decreasing
    in `delta`; +-inf where the variance vanishes but the numerator does not."""
    b, c = only_a, only_b
    w = -b - c + (2 * n - b + c) * delta
    # the restricted MLE of p01 (only b succeeds), the positive root of 2n p^2 + w p - c delta (1 - delta) = 0
    p01 = (math.sqrt(max(0.0, w * w + 8 * n * c * delta * (1 - delta))) - w) / (4 * n)
    variance = n * (2 * p01 + delta * (1 - delta))
    numerator = b - c - n * delta
    if variance <= 1e-300:
        return 0.0 if abs(numerator) < 1e-12 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def tango_interval(only_a: int, only_b: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Tango's score interval of the difference of paired success rates, (only_a - only_b) / n, from the
    discordant counts and the number of pairs: the differences whose |score| stays below the normal
    quantile, each end found by bisection between the estimate (score 0) and -1 or +1."""
    if not 0 <= only_a + only_b <= n or min(only_a, only_b) < 0 or n <= 0:
        raise ValueError(f"tango_interval: counts {only_a} and {only_b} do not fit {n} pairs")
    z = float(stats.norm.ppf(1 - alpha / 2))
    estimate = (only_a - only_b) / n

    def end(target: float, far: float) -> float:
        # the score falls from +inf (at -1) through 0 (at the estimate) to -inf (at +1): bisect score = target
        if (tango_score(only_a, only_b, n, far) - target) * (far - estimate) >= 0:
            return far  # the test keeps even the extreme difference (every pair discordant one way)
        inside, outside = estimate, far
        for _ in range(60):  # to 2^-60 of the span: far below a printed digit
            middle = (inside + outside) / 2
            if abs(tango_score(only_a, only_b, n, middle)) < z:
                inside = middle
            else:
                outside = middle
        return inside

    return end(z, -1.0), end(-z, 1.0)


def seed_pair_table(differences: np.ndarray, pairs: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The (seeds, pairs) table of per-episode differences; every seed must have planned every pair once."""
    differences, pairs, seeds = (np.asarray(x) for x in (differences, pairs, seeds))
    if not len(differences) == len(pairs) == len(seeds):
        raise ValueError(
            f"seeds and pairs label each episode: {len(seeds)} seed and {len(pairs)} pair labels "
            f"for {len(differences)} episodes"
        )
    seed_labels, seed_index = np.unique(seeds, return_inverse=True)
    pair_labels, pair_index = np.unique(pairs, return_inverse=True)
    counts = np.zeros((len(seed_labels), len(pair_labels)), int)
    np.add.at(counts, (seed_index, pair_index), 1)
    if np.any(counts != 1):
        raise ValueError(
            "two-level bootstrap: every training seed must plan every pair exactly once (pool_over_seeds' "
            f"layout); {int(np.sum(counts == 0))} (seed, pair) cells are missing, {int(np.sum(counts > 1))} repeated"
        )
    table = np.zeros(counts.shape)
    table[seed_index, pair_index] = differences
    return table


def two_level_bootstrap(
    differences: np.ndarray,
    pairs: np.ndarray,
    seeds: np.ndarray,
    alpha: float = 0.05,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean difference over seeds and pairs: each round draws the training seeds
    with replacement and, independently, the pairs with replacement, and averages the differences of every
    drawn (seed, pair); a seed or pair drawn twice counts twice. The generator is seeded, so a report is
    reproducible."""
    table = seed_pair_table(differences, pairs, seeds)
    n_seeds, n_pairs = table.shape
    rng = np.random.default_rng(seed)
    # how often each seed and each pair is drawn in each round: the mean is then a weighted sum
    seed_draws = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=rounds)
    pair_draws = rng.multinomial(n_pairs, np.full(n_pairs, 1 / n_pairs), size=rounds)
    means = np.einsum("rp,rp->r", seed_draws @ table, pair_draws) / (n_seeds * n_pairs)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
