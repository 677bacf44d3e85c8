"""The study's report (see study.py): per finetuning setting, the cells as mean [min-max] over seeds, the
paired tests pooled over seeds (every seed's episodes on the same pairs are pairs), one verdict per
method from p-values Holm-adjusted over the verdicts' family, the lengths a user would pick from the
training side alone, and two plots (study_plots)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wmplan.evaluation.multiple import (
    OPPOSITE_DIRECTION,
    REPRODUCED,
    REVERSED,
    SAME_DIRECTION,
    claim_verdict,
    family_note,
    holm,
)
from wmplan.evaluation.paired import PairedEffect, gap_change, pair_clusters, seed_clusters, success_difference
from wmplan.evaluation.protocols import MPC, OPEN, PROTOCOL_NOTES
from wmplan.experiments.cells import Cell
from wmplan.experiments.results import GridResults
from wmplan.experiments.study import LENGTH_RULE_GAIN, StudySpec, adversarial_name, choose_length, online_name
from wmplan.experiments.study_plots import plot_effects, plot_training

NOT_EVERY_SEED = " (p < 0.05 pooled, but not in that direction for every seed on its own)"
"""What a verdict adds where the pooled test rejects but some seed's own effect disagrees."""
ADAM_OPEN = Cell("adam", OPEN).name
"""The grid's name of the Adam open-loop cell (an MPC cell's name depends on its protocol)."""


def pooled(grid: GridResults, model: str, cell: str) -> np.ndarray:
    """Per-episode success of `model` in `cell`, the seeds' episodes one after another."""
    return grid.success(model, cell)


def _pairs_per_cell(grid: GridResults) -> int:
    """The pairs every seed planned (the study's episodes)."""
    return len(pooled(grid, "base", ADAM_OPEN)) // len(grid.train_seeds)


def pairs(grid: GridResults) -> np.ndarray:
    """The pair of every pooled episode: each seed plans the same pairs, so the tests resample pairs."""
    return pair_clusters(_pairs_per_cell(grid), len(grid.train_seeds))


def seeds_of(grid: GridResults) -> np.ndarray | None:
    """The training seed of every pooled episode (for the two-level bootstrap); None for one seed."""
    seeds = len(grid.train_seeds)
    return seed_clusters(_pairs_per_cell(grid), seeds) if seeds > 1 else None


def rates(grid: GridResults, model: str, cell: str) -> list[float]:
    return grid.seed_rates(model, cell)


def effects(grid: GridResults, model: str, protocol: str = "fixed") -> dict[str, PairedEffect]:
    """The finetuned `model` against its base, pooled over seeds and tested over pairs (with a two-level
    bootstrap interval over seeds and pairs): Adam + MPC success, Adam open loop success, and the change of
    (Adam - CEM) under MPC; the MPC cells those of `protocol`."""
    adam_mpc, cem_mpc = (Cell(planner, MPC, protocol).name for planner in ("adam", "cem"))
    base_adam, base_cem = pooled(grid, "base", adam_mpc), pooled(grid, "base", cem_mpc)
    clusters, seeds = pairs(grid), seeds_of(grid)
    return {
        "adam_mpc": success_difference(pooled(grid, model, adam_mpc), base_adam, clusters=clusters, seeds=seeds),
        "adam": success_difference(
            pooled(grid, model, ADAM_OPEN), pooled(grid, "base", ADAM_OPEN), clusters=clusters, seeds=seeds
        ),
        "gap": gap_change(
            base_adam,
            base_cem,
            pooled(grid, model, adam_mpc),
            pooled(grid, model, cem_mpc),
            clusters=clusters,
            seeds=seeds,
        ),
    }


def seed_effects(grid: GridResults, model: str, cell: str) -> list[float]:
    """Each seed's own effect on `cell`: the finetuned model's success minus its base's."""
    return [a - b for a, b in zip(rates(grid, model, cell), rates(grid, "base", cell), strict=True)]


def verdict(effect: PairedEffect, per_seed: list[float], p_adjusted: float | None = None) -> str:
    """One of the four labels (evaluation.multiple) from the pooled estimate and `p_adjusted` (the effect's
    own p where None), holding across seeds: "reproduced (p < 0.05)" needs p < 0.05 pooled (tested over
    pairs) and a positive effect for every seed on its own, "reversed (p < 0.05)" a negative one for every
    seed; a pooled p < 0.05 that some seed does not share reads as not significant in its direction."""
    label = claim_verdict(effect.estimate, effect.p_value if p_adjusted is None else p_adjusted)
    if label == REPRODUCED and min(per_seed) <= 0:
        return SAME_DIRECTION
    if label == REVERSED and max(per_seed) >= 0:
        return OPPOSITE_DIRECTION
    return label


def verdict_text(effect: PairedEffect, per_seed: list[float], p_adjusted: float) -> str:
    """The verdict, with NOT_EVERY_SEED where the seeds alone kept the pooled test's direction from it."""
    label = verdict(effect, per_seed, p_adjusted)
    return label + (NOT_EVERY_SEED if label != claim_verdict(effect.estimate, p_adjusted) else "")


def _seed_text(per_seed: list[float]) -> str:
    return "per seed " + ", ".join(f"{100 * v:+.0f}" for v in per_seed)


def _gaps(grid: GridResults, protocol: str, model: str = "base") -> list[float]:
    """Each seed's Adam + MPC success minus its CEM + MPC success: the gap finetuning should narrow."""
    adam, cem = (rates(grid, model, Cell(planner, MPC, protocol).name) for planner in ("adam", "cem"))
    return [a - c for a, c in zip(adam, cem, strict=True)]


def _cell_text(values: list[float]) -> str:
    return f"{100 * np.mean(values):.0f} [{100 * min(values):.0f}-{100 * max(values):.0f}]"


def effects_file(protocol: str) -> str:
    """The effects plot of a protocol's MPC cells (the fixed protocol's keeps the older name)."""
    return "effects.png" if protocol == "fixed" else f"effects_{protocol}.png"


def write_study_report(out: Path, spec: StudySpec, grid: GridResults) -> str:
    """Write out/report.md (and its plots) from the study's results `grid`; returns its text."""
    seeds = [str(seed) for seed in grid.train_seeds]
    models = grid.model_names()
    protocols = grid.protocols
    lines = [
        f"# Finetuning study: {spec.env}",
        "",
        f"{len(seeds)} training seeds ({', '.join(seeds)}) on one dataset; every model planned on the same "
        f"{spec.episodes} pairs (seed {spec.pair_seed}); the MPC cells under the "
        f"{' and '.join(protocols)} protocol{'s' if len(protocols) > 1 else ''}, each in its own section with "
        "its own family of claims. Success %, mean over seeds [min-max]. Effects are the "
        "finetuned model minus its own seed's base, pooled over the seeds and tested over the pairs (each "
        "pair's differences averaged over the seeds, then a sign-flip permutation test, its 95% interval the "
        "same test inverted, with a two-level bootstrap interval over seeds and pairs beside it; one seed: "
        "McNemar's exact test with Tango's score interval). The verdicts read p-values Holm-adjusted over "
        "their block, and an effect is reproduced (or reversed) only when it is significant pooled and has "
        "its direction for every seed on its own.",
        "",
        *(
            [
                f"**Partial**: {len(seeds)} of the spec's {len(spec.seeds)} seeds are finished; this report is rewritten after each.",
                "",
            ]
            if len(seeds) < len(spec.seeds)
            else []
        ),
    ]
    adversarial = [adversarial_name(e) for e in spec.adversarial_epochs]
    online = [online_name(n) for n in spec.online_steps]
    found_by: dict[str, dict[str, dict[str, PairedEffect]]] = {}
    adjusted_by: dict[str, dict[str, float]] = {}
    for protocol in protocols:
        found, adjusted, section = _protocol_section(grid, models, adversarial, online, protocol)
        found_by[protocol], adjusted_by[protocol] = found, adjusted
        lines += section
        plot_effects(out / effects_file(protocol), spec, found, adversarial, online, protocol)
    lines += _diagnostics_table(grid, models)
    train_loss, online_loss = rule_objectives(spec, grid)
    lines += [
        "",
        "## Lengths chosen from the training side",
        "",
        "Rule (no simulator): the shortest length after which the next one lowers the finetuning objective "
        f"(mean over seeds) by less than {100 * LENGTH_RULE_GAIN:g}% of itself; adversarial: its training loss "
        "on perturbed batches in the last epoch; online: the loss on its buffer of planned trajectories, mean of "
        "the last tenth of its logged values.",
    ]
    for what, unit, lengths, models_of, objective in (
        ("adversarial", "epochs", spec.adversarial_epochs, adversarial, train_loss),
        ("online", "steps", spec.online_steps, online, online_loss),
    ):
        chosen, finding = length_rule_finding(unit, lengths, objective)
        if chosen is None:
            lines.append(f"- {what}: {finding}")
            continue
        name = models_of[lengths.index(chosen)]
        there = "; ".join(
            f"{protocol} protocol "
            + found_by[protocol][name]["adam_mpc"].describe(100, " points", adjusted=adjusted_by[protocol][name])
            for protocol in protocols
        )
        lines.append(f"- {what}: {finding}; there Adam + MPC: {there}")
    val_loss = (training_means(grid, adversarial, "val_loss"), training_means(grid, online, "val_loss"))
    plot_training(out, spec, train_loss, online_loss, val_loss)
    lines.append("")
    lines += [f"![effects, {protocol} protocol]({effects_file(protocol)})\n" for protocol in protocols]
    lines += ["![training side](training.png)", ""]
    lines += _adopted(out)
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text


def _protocol_section(
    grid: GridResults, models: list[str], adversarial: list[str], online: list[str], protocol: str
) -> tuple[dict[str, dict[str, PairedEffect]], dict[str, float], list[str]]:
    """One protocol's table of every model and its verdicts, Holm-adjusted over that protocol's family (one
    claim per finetuned model: Adam + MPC against its base); returns the effects, the adjusted p-values and
    the lines."""
    adam_mpc, cem_mpc = (Cell(planner, MPC, protocol).name for planner in ("adam", "cem"))
    lines = [
        f"## {protocol.capitalize()} protocol: {PROTOCOL_NOTES[protocol]}",
        "",
        "| model | Adam MPC | Adam open | CEM MPC | Adam MPC vs base | Adam open vs base "
        "| change of Adam - CEM (MPC) vs base | train loss | val loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    found: dict[str, dict[str, PairedEffect]] = {}
    for model in models:
        side = grid.training(model)
        row = [model, *(_cell_text(rates(grid, model, c)) for c in (adam_mpc, ADAM_OPEN, cem_mpc))]
        if model == "base":
            gaps = 100 * np.array(_gaps(grid, protocol))
            row += ["", "", f"base Adam - CEM: {gaps.mean():+.0f} [{gaps.min():+.0f} to {gaps.max():+.0f}]"]
        else:
            found[model] = effects(grid, model, protocol)
            row += [
                f"{found[model]['adam_mpc'].describe(100, ' pts')}; {_seed_text(seed_effects(grid, model, adam_mpc))}",
                found[model]["adam"].describe(100, " pts"),
                found[model]["gap"].describe(100, " pts"),
            ]
        row += [f"{np.mean([s['train_loss'] for s in side]):.4g}", f"{np.mean([s['val_loss'] for s in side]):.4g}"]
        lines.append("| " + " | ".join(row) + " |")
    names = adversarial + online  # the family: one claim per finetuned model, Adam + MPC against its base
    adjusted = dict(zip(names, holm([found[n]["adam_mpc"].p_value for n in names])))
    lines += [
        "",
        f"### Verdicts, {protocol} protocol (Adam + MPC success against the base model, pooled over seeds)",
        "",
        f"p-values {family_note(len(names), 'claims', ' (one per finetuned model)')}; each verdict reads the "
        "adjusted p and the direction of the pooled effect, and needs that direction for every seed too.",
        "",
    ]

    def judged(name: str) -> str:
        return verdict_text(found[name]["adam_mpc"], seed_effects(grid, name, adam_mpc), adjusted[name])

    for method, settings in (("Adversarial World Modeling", adversarial), ("Online World Modeling", online)):
        best = max(settings, key=lambda n: found[n]["adam_mpc"].estimate)
        lines.append(
            f"- {method}: at its best length ({best}) {judged(best)}: "
            f"{found[best]['adam_mpc'].describe(100, ' points', adjusted=adjusted[best])}, "
            f"{_seed_text(seed_effects(grid, best, adam_mpc))}; at every length: "
            + "; ".join(
                f"{n} {judged(n)} (p = {found[n]['adam_mpc'].p_value:.3g}, adjusted {adjusted[n]:.3g})"
                for n in settings
            )
            + f". (The best length is picked after the fact, one of {len(settings)} tested; the adjustment over "
            "every length of both methods covers that pick.)"
        )
    lines.append("")
    return found, adjusted, lines


def length_rule_finding(unit: str, lengths: list[int], objective: list[float]) -> tuple[int | None, str]:
    """The length the rule picks (None: undetermined) and how to read it. The rule picks the longest length
    studied also when every step still paid, where a longer finetuning may pay more: said, not hidden."""
    by_length = ", ".join(f"{v:.4g}" for v in objective)
    chosen = choose_length(lengths, objective)
    if chosen is None:
        return None, f"undetermined: a length has no logged objective ({by_length})"
    text = f"{chosen} {unit.removesuffix('s') if chosen == 1 else unit} (objective by length {by_length})"
    if chosen == lengths[-1] and len(lengths) > 1:
        text += (
            f"; the longest studied: each longer finetuning still lowered the objective by at least "
            f"{100 * LENGTH_RULE_GAIN:g}%, so the rule found no plateau and a longer one may pay more"
        )
    return chosen, text


def rule_objectives(spec: StudySpec, grid: GridResults) -> tuple[list[float], list[float]]:
    """What the length rule reads, mean over seeds, by length: the adversarial training loss (perturbed
    batches, last epoch) and the online buffer loss (last tenth of its logged values)."""
    return (
        training_means(grid, [adversarial_name(e) for e in spec.adversarial_epochs], "train_loss"),
        training_means(grid, [online_name(n) for n in spec.online_steps], "online_loss"),
    )


def rule_lengths(spec: StudySpec, grid: GridResults) -> dict[str, int | None]:
    """The finetuning lengths the training-side rule picks from a study (None: undetermined): what a
    task's demo recipe (wmplan.tasks) takes."""
    train_loss, online_loss = rule_objectives(spec, grid)
    return {
        "adversarial": choose_length(spec.adversarial_epochs, train_loss),
        "online": choose_length(spec.online_steps, online_loss),
    }


def training_means(grid: GridResults, names: list[str], key: str) -> list[float]:
    """Each model's training-side number `key` (study.training_side), mean over seeds; NaN where a seed
    lacks it (online finetuning that logged no buffer loss)."""
    return [float(np.mean([side.get(key, np.nan) for side in grid.training(n)])) for n in names]


def _adopted(out: Path) -> list[str]:
    """The report's account of what `--from-demo` copied in rather than made (experiments.adoption)."""
    listing = out / "adopted.json"
    if not listing.exists():
        return []
    adopted = json.loads(listing.read_text())
    return [
        "## Taken from a demo",
        "",
        f"These were made by the demo run in {adopted['demo']} and adopted after checking that each model's "
        "config and each cell's pairs and planner settings are the study's own (`wmplan study --from-demo`):",
        "",
        *(f"- {path}" for path in adopted["adopted"]),
        "",
    ]


def _diagnostics_table(grid: GridResults, models: list[str]) -> list[str]:
    """The train-test gap and the cost landscape of every setting, mean over seeds [min-max]."""
    sides = [{m: grid.models[m][seed].diagnostics or {} for m in models} for seed in grid.train_seeds]
    per_seed = [g for g in sides if all(g.values())]
    if not per_seed:
        return []
    columns = (
        ("gap_expert_error", "expert error"),
        ("gap_planner_error", "planner error"),
        ("gap_ratio", "planner / expert"),
        ("roughness", "landscape roughness"),
        ("basin_width", "basin width"),
    )
    lines = [
        "",
        "## Train-test gap and cost landscape (the paper's Figures 4 and 2)",
        "",
        "Each model's open-loop error on expert windows and on the trajectories of the base model's Adam plans "
        "executed in the simulator (the same trajectories for every model of a seed, so the comparison is "
        "paired), and the roughness and basin width of its cost over a 2-D slice of actions around the base "
        f"model's planned optimum; mean over {len(per_seed)} seeds [min-max].",
        "",
        "| model | " + " | ".join(name for _, name in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for model in models:
        values = [[g[model][key] for g in per_seed] for key, _ in columns]
        lines.append(
            f"| {model} | " + " | ".join(f"{np.mean(v):.4g} [{min(v):.3g}-{max(v):.3g}]" for v in values) + " |"
        )
    return lines
