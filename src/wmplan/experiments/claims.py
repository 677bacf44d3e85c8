"""The paper's claims read off a demo grid, each with a paired test on the same start/goal pairs and a
verdict: "reproduced (p < 0.05)", "same direction, not significant" or "not reproduced".

Example:
    >>> print(paper_directions(grid))   # doctest: +SKIP
    Directions (the paper's claims; paired tests over the same pairs, by success %, then ...):
    - GD below CEM on the base model, open loop: reproduced (p < 0.05); CEM - GD +35 points (95% CI ...
"""

from __future__ import annotations

import numpy as np

from wmplan.evaluation.paired import PairedEffect, distance_difference, gap_change, success_difference
from wmplan.evaluation.report import MODEL_NAMES, Grid
from wmplan.evaluation.summary import pairs_of


def paper_directions(grid: Grid, by_distance: bool = False) -> str:
    """The paper's claims, read off this grid with paired tests on the same pairs (evaluation.paired):
    McNemar's exact test on success, and a sign-flip permutation test on the final distances (cells pooled
    over seeds: sign-flip tests over the pairs, each pair's differences averaged over seeds); the tasks
    judged by distance (Rope, Granular: success rates near 0) are tested on distance only. "Narrows the
    gap" tests the per-episode difference of differences. A direction that holds on the point estimate
    is "same direction, not significant" unless p < 0.05; the verdict is the first measure's."""

    def pairs(model: str, planner: str, mpc: bool) -> np.ndarray | None:
        """Each episode's pair when the cells pool seeds: the tests then resample pairs, not episodes."""
        return pairs_of(grid[(model, planner, mpc, False)])

    def outcome(model: str, planner: str, mpc: bool, distance: bool) -> np.ndarray | None:
        s = grid.get((model, planner, mpc, False))
        if s is None or "episode_success" not in s:
            return None
        # "better" is larger: success as 0/1, distances negated
        return -np.asarray(s["episode_final_distance"]) if distance else np.asarray(s["episode_success"], float)

    measures = (True,) if by_distance else (False, True)  # distance? per measure, the first gives the verdict

    def verdict(effect: PairedEffect) -> str:
        holds = effect.estimate > 0  # every comparison below is oriented so that the claim is positive
        if holds and effect.significant:
            return "reproduced (p < 0.05)"
        return "same direction, not significant" if holds else "not reproduced"

    def tested(what: str, compare) -> str | None:
        """'<verdict>; <what> <effect>' for the first measure, then '; by final distance ...' for the second."""
        texts: list[str] = []
        for distance in measures:
            effect = compare(distance)
            if effect is None:
                return None
            scale, unit, digits = (1.0, "", 3) if distance else (100.0, " points", 0)
            described = effect.describe(scale, unit, digits)
            texts.append(
                f"{verdict(effect)}; {what} {described}"
                if not texts
                else f"by final distance (how much closer): {verdict(effect)}, {described}"
            )
        return "; ".join(texts)

    def difference(a: tuple[str, str, bool], b: tuple[str, str, bool]):
        """Cell a minus cell b, each (model, planner, mpc), on either measure."""

        def compare(distance: bool) -> PairedEffect | None:
            x, y = outcome(*a, distance), outcome(*b, distance)
            if x is None or y is None:
                return None
            test = distance_difference if distance else success_difference
            return test(x, y, clusters=pairs(*a))

        return compare

    def narrowing(model: str, mpc: bool):
        """The change of the Adam-CEM difference from the base model to `model`."""

        def compare(distance: bool) -> PairedEffect | None:
            adam_base, cem_base, adam_ft, cem_ft = (
                outcome(m, p, mpc, distance) for m in ("base", model) for p in ("adam", "cem")
            )
            if adam_base is None or cem_base is None or adam_ft is None or cem_ft is None:
                return None
            return gap_change(adam_base, cem_base, adam_ft, cem_ft, clusters=pairs("base", "adam", mpc))

        return compare

    what = "minus the mean final distance" if by_distance else "success %, then minus the final distance"
    lines = [f"Directions (the paper's claims; paired tests over the same pairs, by {what}; higher is better):"]
    for mpc, mode in ((False, "open loop"), (True, "MPC")):
        for name, planner in (("GD", "gd"), ("Adam", "adam")):
            text = tested(f"CEM - {name}", difference(("base", "cem", mpc), ("base", planner, mpc)))
            if text:
                lines.append(f"- {name} below CEM on the base model, {mode}: {text}.")
        for model in ("online", "adversarial"):
            text = tested("change of Adam - CEM", narrowing(model, mpc))
            if text:
                lines.append(f"- {MODEL_NAMES[model]} narrows the Adam-CEM gap, {mode}: {text}.")
    for planner in ("adam", "cem"):
        text = tested("MPC - open loop", difference(("base", planner, True), ("base", planner, False)))
        if text:
            lines.append(f"- MPC above open loop, base model, {planner}: {text}.")
    adam_s, cem_s = grid.get(("base", "adam", True, False)), grid.get(("base", "cem", True, False))
    if adam_s and cem_s:
        lines.append(
            f"- Adam's planning time as a share of CEM's (MPC, base): {100 * adam_s['seconds_per_plan'] / cem_s['seconds_per_plan']:.0f}%."
        )
    return "\n".join(lines)
