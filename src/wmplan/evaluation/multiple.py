"""A report's many tests read together: Holm's adjustment over a family of claims, and the one set of
verdict labels every report prints.

A report that runs ten tests at 5% finds, on average, half a "significant" effect where there is none.
Holm's step-down adjustment keeps the chance of any false "significant" in the family at 5% whatever the
tests' dependence (they share pairs and cells here, so a method that assumes independence would not do),
and it is never less powerful than Bonferroni's.

A verdict reads the adjusted p and the direction of the estimate, each comparison oriented so that the
claim under test is a positive estimate:

    "reproduced (p < 0.05)"                 positive, adjusted p < 0.05
    "same direction, not significant"       positive, adjusted p >= 0.05
    "opposite direction, not significant"   negative, adjusted p >= 0.05
    "reversed (p < 0.05)"                   negative, adjusted p < 0.05

An estimate of exactly 0 (identical cells, or as many pairs won as lost) has no direction: calling it
either direction would be false, so it reads "no difference, not significant", a fifth label that only
such an estimate reaches (its p-value is 1 under every test here, so it is never significant).

Example:
    >>> holm([0.01, 0.04, 0.03, 0.005])
    [0.03, 0.06, 0.06, 0.02]
    >>> claim_verdict(0.12, 0.06)
    'same direction, not significant'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ALPHA = 0.05

REPRODUCED = "reproduced (p < 0.05)"
SAME_DIRECTION = "same direction, not significant"
OPPOSITE_DIRECTION = "opposite direction, not significant"
REVERSED = "reversed (p < 0.05)"
NO_DIFFERENCE = "no difference, not significant"
VERDICTS = (REPRODUCED, SAME_DIRECTION, OPPOSITE_DIRECTION, REVERSED)
"""The four labels of an estimate with a direction (NO_DIFFERENCE: an estimate of exactly 0)."""


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest p times (m - i + 1), made
    non-decreasing along the sorted order (an adjusted p never falls below a smaller raw p's) and capped at 1.
    An adjusted p < 0.05 rejects at a 5% chance of any false rejection in the family."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"holm: p-values must be a flat list of numbers in [0, 1]; got {list(p_values)}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return [float(v) for v in adjusted]


def claim_verdict(estimate: float, p_adjusted: float) -> str:
    """The label of a claim whose comparison is oriented so that the claim is a positive `estimate`, read
    off its (Holm-)adjusted p-value; see the module's table."""
    if estimate == 0:
        return NO_DIFFERENCE
    significant = p_adjusted < ALPHA
    if estimate > 0:
        return REPRODUCED if significant else SAME_DIRECTION
    return REVERSED if significant else OPPOSITE_DIRECTION


def family_note(tests: int, what: str = "claims", detail: str = "") -> str:
    """How a block states its family, e.g. 'Holm-adjusted over the 6 claims of this block'."""
    return f"Holm-adjusted over the {tests} {what if tests != 1 else what.removesuffix('s')} of this block{detail}"
