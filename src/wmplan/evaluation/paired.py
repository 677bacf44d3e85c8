"""Paired statistics for comparisons on the same start/goal pairs.

Two planners, or two models, planned from the same pairs give paired outcomes: episode i of one cell
and episode i of the other share a start and a goal. A comparison is a test on the per-episode
differences, not two overlapping intervals:
- success (bool per episode): McNemar's exact test (a binomial test on the discordant pairs), with a
  paired bootstrap interval of the difference in success rates;
- a distance (float per episode, lower is better): a sign-flip permutation test on the differences,
  with a paired bootstrap interval of the mean difference;
- "finetuning narrows the Adam-CEM gap": the per-episode difference of differences
  (Adam_ft - CEM_ft) - (Adam_base - CEM_base), tested the same way.

Every result is a `PairedEffect`: the mean effect (a - b), its 95% interval, the two-sided p-value and n.

Example:
    >>> effect = success_difference(np.array([1, 1, 1, 0]), np.array([0, 0, 1, 0]))
    >>> round(effect.estimate, 2), effect.n
    (0.5, 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_ROUNDS = 10_000
ALPHA = 0.05


@dataclass(frozen=True)
class PairedEffect:
    estimate: float
    """Mean of a - b over the pairs (a share for success: 0.25 is 25 points)."""
    ci95: tuple[float, float]
    """Paired bootstrap percentile interval of the estimate."""
    p_value: float
    """Two-sided; exact (McNemar) for success, a sign-flip permutation test otherwise."""
    n: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def describe(self, scale: float = 1.0, unit: str = "", digits: int = 0) -> str:
        """'+25 points (95% CI +5 to +45), p = 0.031' (`scale` 100, `unit` ' points'), with ', not
        significant' where p >= 0.05."""
        low, high = (scale * v for v in self.ci95)
        text = f"{scale * self.estimate:+.{digits}f}{unit} (95% CI {low:+.{digits}f} to {high:+.{digits}f}), p = {self.p_value:.3g}"
        return text if self.significant else text + ", not significant"


def _check_paired(*arrays: np.ndarray) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(f"paired outcomes need the same, non-zero number of episodes; got {sorted(lengths)}")
    return lengths.pop()


def bootstrap_interval(differences: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of per-pair differences, resampling pairs."""
    rng = np.random.default_rng(seed)
    n = len(differences)
    means = differences[rng.integers(0, n, size=(BOOTSTRAP_ROUNDS, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def sign_flip_p_value(differences: np.ndarray, seed: int = 0) -> float:
    """Two-sided p of the mean difference under the null that each pair's sign is a coin flip (exact
    enumeration up to 16 non-zero pairs, Monte Carlo with the observed statistic counted beyond)."""
    d = differences[differences != 0]
    if len(d) == 0:
        return 1.0
    observed = abs(d.sum())
    if len(d) <= 16:
        signs = 1 - 2 * ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    flipped = np.abs((rng.choice([-1.0, 1.0], size=(BOOTSTRAP_ROUNDS, len(d))) * d).sum(axis=1))
    return float((1 + np.sum(flipped >= observed - 1e-12)) / (BOOTSTRAP_ROUNDS + 1))


def success_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> PairedEffect:
    """Success of a minus success of b over the same pairs; McNemar's exact test on the discordant pairs."""
    n = _check_paired(a, b)
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    d = a.astype(float) - b.astype(float)
    return PairedEffect(float(d.mean()), bootstrap_interval(d, seed), float(p), n)


def distance_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> PairedEffect:
    """Mean of a - b (e.g. final distances; negative: a ends closer) with a sign-flip permutation test."""
    n = _check_paired(a, b)
    d = np.asarray(a, float) - np.asarray(b, float)
    return PairedEffect(float(d.mean()), bootstrap_interval(d, seed), sign_flip_p_value(d, seed), n)


def gap_change(
    adam_base: np.ndarray, cem_base: np.ndarray, adam_ft: np.ndarray, cem_ft: np.ndarray, seed: int = 0
) -> PairedEffect:
    """The change of the Adam-CEM gap from the base to a finetuned model, per episode:
    (adam_ft - cem_ft) - (adam_base - cem_base); positive means finetuning narrowed a gap in CEM's favour
    (for success; pass negated distances to read distances the same way)."""
    _check_paired(adam_base, cem_base, adam_ft, cem_ft)
    f = [np.asarray(x, float) for x in (adam_base, cem_base, adam_ft, cem_ft)]
    d = (f[2] - f[3]) - (f[0] - f[1])
    return PairedEffect(float(d.mean()), bootstrap_interval(d, seed), sign_flip_p_value(d, seed), len(d))


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
