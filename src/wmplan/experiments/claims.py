"""The paper's claims read off a demo grid, each with a paired test on the same start/goal pairs and a
verdict (evaluation.multiple): "reproduced (p < 0.05)", "same direction, not significant", "opposite
direction, not significant" or "reversed (p < 0.05)" ("no difference, not significant" for an estimate of
exactly 0), read from p-values Holm-adjusted over every test of the block.

Example:
    >>> print(paper_directions(grid))   # doctest: +SKIP
    Directions (the paper's claims; paired tests over the same pairs, by success %, then ...):
    - GD below CEM on the base model, open loop: reproduced (p < 0.05); CEM - GD +35 points (95% CI ...
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wmplan.evaluation.multiple import claim_verdict, family_note, holm
from wmplan.evaluation.paired import (
    PairedEffect,
    distance_difference,
    gap_change,
    seed_clusters,
    success_difference,
)
from wmplan.evaluation.report import MODEL_NAMES, Grid
from wmplan.evaluation.summary import pairs_of

Compare = Callable[[bool], PairedEffect | None]
"""One claim's test on one measure (distance? else success), oriented so that the claim is positive."""


def seeds_of(summary) -> np.ndarray | None:
    """The training seed of each episode of a cell pooled over seeds (`pairs_of`'s partner: the layout of
    pool_over_seeds, seed after seed); None for a single seed's cell."""
    seeds = len(summary.get("train_seeds") or [])
    return seed_clusters(summary["episodes"] // seeds, seeds) if seeds > 1 else None


def executed_steps(summary) -> int | None:
    """Model steps an episode executes: replans x steps executed per plan (open loop: one plan of the
    planner's horizon); None where the summary does not record them."""
    mpc = summary.get("mpc_config") or {}
    if "replans" in mpc and "execute" in mpc:
        return int(mpc["replans"]) * int(mpc["execute"])
    horizon = (summary.get("planner_config") or {}).get("horizon")
    return int(horizon) if horizon is not None and not summary.get("mpc") else None


class GridCells:
    """A demo grid's base cells ((model, planner, mpc), unbounded) as the claims' paired tests read them."""

    def __init__(self, grid: Grid):
        self.grid = grid

    def summary(self, model: str, planner: str, mpc: bool):
        return self.grid.get((model, planner, mpc, False))

    def pairs(self, model: str, planner: str, mpc: bool) -> np.ndarray | None:
        """Each episode's pair when the cells pool seeds: the tests then resample pairs, not episodes."""
        return pairs_of(self.grid[(model, planner, mpc, False)])

    def seeds(self, model: str, planner: str, mpc: bool) -> np.ndarray | None:
        return seeds_of(self.grid[(model, planner, mpc, False)])

    def outcome(self, model: str, planner: str, mpc: bool, distance: bool) -> np.ndarray | None:
        s = self.summary(model, planner, mpc)
        if s is None or "episode_success" not in s:
            return None
        # "better" is larger: success as 0/1, distances negated
        return -np.asarray(s["episode_final_distance"]) if distance else np.asarray(s["episode_success"], float)

    def difference(self, a: tuple[str, str, bool], b: tuple[str, str, bool]) -> Compare:
        """Cell a minus cell b, each (model, planner, mpc), on either measure."""

        def compare(distance: bool) -> PairedEffect | None:
            x, y = self.outcome(*a, distance), self.outcome(*b, distance)
            if x is None or y is None:
                return None
            test = distance_difference if distance else success_difference
            return test(x, y, clusters=self.pairs(*a), seeds=self.seeds(*a))

        return compare

    def narrowing(self, model: str, mpc: bool) -> Compare:
        """The change of the Adam-CEM difference from the base model to `model`."""

        def compare(distance: bool) -> PairedEffect | None:
            adam_base, cem_base, adam_ft, cem_ft = (
                self.outcome(m, p, mpc, distance) for m in ("base", model) for p in ("adam", "cem")
            )
            if adam_base is None or cem_base is None or adam_ft is None or cem_ft is None:
                return None
            cell = ("base", "adam", mpc)
            return gap_change(adam_base, cem_base, adam_ft, cem_ft, clusters=self.pairs(*cell), seeds=self.seeds(*cell))

        return compare


def paper_claims(cells: GridCells) -> tuple[list[tuple[str, str, Compare]], list[str]]:
    """(claim, what is measured, its test) of each of the paper's claims this grid can test, and the
    planners whose MPC and open-loop cells cannot be compared (different model steps executed)."""
    claims: list[tuple[str, str, Compare]] = []
    for mpc, mode in ((False, "open loop"), (True, "MPC")):
        for name, planner in (("GD", "gd"), ("Adam", "adam")):
            compare = cells.difference(("base", "cem", mpc), ("base", planner, mpc))
            claims.append((f"{name} below CEM on the base model, {mode}", f"CEM - {name}", compare))
        for model in ("online", "adversarial"):
            claim = f"{MODEL_NAMES[model]} narrows the Adam-CEM gap, {mode}"
            claims.append((claim, "change of Adam - CEM", cells.narrowing(model, mpc)))
    untested: list[str] = []
    for planner in ("adam", "cem"):
        closed, open_ = cells.summary("base", planner, True), cells.summary("base", planner, False)
        if not closed or not open_:
            continue
        steps = executed_steps(closed), executed_steps(open_)
        if steps[0] is not None and steps[0] == steps[1]:
            compare = cells.difference(("base", planner, True), ("base", planner, False))
            claims.append((f"MPC above open loop, base model, {planner}", "MPC - open loop", compare))
        else:
            shown = ["unrecorded" if s is None else str(s) for s in steps]
            untested.append(f"{planner} {shown[0]} against {shown[1]}")
    return claims, untested


def paper_directions(grid: Grid, by_distance: bool = False) -> str:
    """The paper's claims, read off this grid with paired tests on the same pairs (evaluation.paired):
    McNemar's exact test on success (Tango's score interval), and a sign-flip permutation test on the final
    distances (cells pooled over seeds: sign-flip tests over the pairs, each pair's differences averaged
    over seeds, with a two-level bootstrap interval over seeds and pairs beside it); the tasks judged by
    distance (Rope, Granular: success rates near 0) are tested on distance only. "Narrows the gap" tests
    the per-episode difference of differences. Every test that prints a verdict is one of the block's
    family: its p-values are Holm-adjusted over all of them, both printed, and the verdicts read the
    adjusted p; a claim's verdict is its first measure's."""
    measures = (True,) if by_distance else (False, True)  # distance? per measure, the first gives the verdict
    claims, untested = paper_claims(GridCells(grid))
    found = [(claim, what, [compare(d) for d in measures]) for claim, what, compare in claims]
    found = [(claim, what, effects) for claim, what, effects in found if None not in effects]
    family = [e for _, _, effects in found for e in effects if e is not None]
    adjusted = iter(holm([e.p_value for e in family]))
    what = "minus the mean final distance" if by_distance else "success %, then minus the final distance"
    if len(measures) == 1:
        note = family_note(len(family))
    else:
        claims_text = f"{len(found)} claim{'s' if len(found) != 1 else ''}"
        note = family_note(len(family), "tests", f" ({claims_text} x {len(measures)} measures)")
    lines = [
        f"Directions (the paper's claims; paired tests over the same pairs, by {what}; higher is better; "
        f"p-values {note}, verdicts read the adjusted p):"
    ]
    for claim, measured, effects in found:
        texts: list[str] = []
        for distance, effect in zip(measures, effects):
            assert effect is not None
            p = next(adjusted)
            scale, unit, digits = (1.0, "", 3) if distance else (100.0, " points", 0)
            described = effect.describe(scale, unit, digits, adjusted=p)
            verdict = claim_verdict(effect.estimate, p)
            texts.append(
                f"{verdict}; {measured} {described}"
                if not texts
                else f"by final distance (how much closer): {verdict}, {described}"
            )
        lines.append(f"- {claim}: {'; '.join(texts)}.")
    if untested:
        lines.append(
            "- MPC above open loop: not tested (only cells that execute the same number of model steps are "
            "compared, else a difference mixes replanning with a longer execution; steps executed, MPC against "
            f"open loop: {'; '.join(untested)})."
        )
    adam_s, cem_s = grid.get(("base", "adam", True, False)), grid.get(("base", "cem", True, False))
    if adam_s and cem_s:
        lines.append(
            f"- Adam's planning time as a share of CEM's (MPC, base): {100 * adam_s['seconds_per_plan'] / cem_s['seconds_per_plan']:.0f}%."
        )
    return "\n".join(lines)
