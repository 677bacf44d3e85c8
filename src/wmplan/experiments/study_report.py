"""The study's report (see study.py): per finetuning setting, the cells as mean [min-max] over seeds, the
paired tests pooled over seeds (every seed's episodes on the same pairs are pairs), one verdict per
method, the lengths a user would pick from the training side alone, and two plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.evaluation.paired import PairedEffect, gap_change, success_difference
from wmplan.experiments.study import StudySpec, adversarial_name, choose_length, online_name

HOLDS, DIRECTION_ONLY, DOES_NOT_HOLD = (
    "the effect holds across seeds (p < 0.05)",
    "holds in direction only",
    "does not hold",
)


def pooled(grid: dict[str, Any], model: str, cell: str) -> np.ndarray:
    """Per-episode success of `model` in `cell`, the seeds' episodes one after another."""
    return np.concatenate([np.asarray(g[model][cell]["success"], bool) for g in grid["seeds"].values()])


def rates(grid: dict[str, Any], model: str, cell: str) -> list[float]:
    return [float(np.mean(g[model][cell]["success"])) for g in grid["seeds"].values()]


def effects(grid: dict[str, Any], model: str) -> dict[str, PairedEffect]:
    """The finetuned `model` against its base, pooled over seeds: Adam + MPC success, Adam open loop
    success, and the change of the Adam-CEM gap under MPC."""
    base_adam, base_cem = pooled(grid, "base", "adam_mpc"), pooled(grid, "base", "cem_mpc")
    return {
        "adam_mpc": success_difference(pooled(grid, model, "adam_mpc"), base_adam),
        "adam": success_difference(pooled(grid, model, "adam"), pooled(grid, "base", "adam")),
        "gap": gap_change(base_adam, base_cem, pooled(grid, model, "adam_mpc"), pooled(grid, model, "cem_mpc")),
    }


def verdict(effect: PairedEffect) -> str:
    if effect.estimate > 0 and effect.significant:
        return HOLDS
    return DIRECTION_ONLY if effect.estimate > 0 else DOES_NOT_HOLD


def _cell_text(values: list[float]) -> str:
    return f"{100 * np.mean(values):.0f} [{100 * min(values):.0f}-{100 * max(values):.0f}]"


def write_study_report(out: Path, spec: StudySpec, grid: dict[str, Any]) -> str:
    seeds = list(grid["seeds"])
    models = list(next(iter(grid["seeds"].values())))
    lines = [
        f"# Finetuning study: {spec.env}",
        "",
        f"{len(seeds)} training seeds ({', '.join(seeds)}) on one dataset; every model planned on the same "
        f"{spec.episodes} pairs (seed {spec.pair_seed}). Success %, mean over seeds [min-max]; effects are "
        "paired over the pairs of every seed (McNemar exact for success; a paired sign-flip test for the "
        "change of the Adam-CEM gap), with 95% bootstrap intervals.",
        "",
        *(
            [
                f"**Partial**: {len(seeds)} of the spec's {len(spec.seeds)} seeds are finished; this report is rewritten after each.",
                "",
            ]
            if len(seeds) < len(spec.seeds)
            else []
        ),
        "| model | Adam MPC | Adam open | CEM MPC | Adam MPC vs base | gap change vs base | train loss | val loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    found: dict[str, dict[str, PairedEffect]] = {}
    for model in models:
        side = [g[model]["training"] for g in grid["seeds"].values()]
        row = [model, *(_cell_text(rates(grid, model, c)) for c in ("adam_mpc", "adam", "cem_mpc"))]
        if model == "base":
            row += ["", ""]
        else:
            found[model] = effects(grid, model)
            row += [found[model]["adam_mpc"].describe(100, " pts"), found[model]["gap"].describe(100, " pts")]
        row += [f"{np.mean([s['train_loss'] for s in side]):.4g}", f"{np.mean([s['val_loss'] for s in side]):.4g}"]
        lines.append("| " + " | ".join(row) + " |")
    lines += _diagnostics_table(grid, models)
    adversarial = [adversarial_name(e) for e in spec.adversarial_epochs]
    online = [online_name(n) for n in spec.online_steps]
    lines += ["", "## Verdicts (Adam + MPC success against the base model, pooled over seeds)", ""]
    for method, names in (("Adversarial World Modeling", adversarial), ("Online World Modeling", online)):
        best = max(names, key=lambda n: found[n]["adam_mpc"].estimate)
        lines.append(
            f"- {method}: at its best length ({best}) {verdict(found[best]['adam_mpc'])}: "
            f"{found[best]['adam_mpc'].describe(100, ' points')}; at every length: "
            + "; ".join(f"{n} {verdict(found[n]['adam_mpc'])}" for n in names)
            + ". (The best length is picked after the fact: read its p-value with that in mind.)"
        )
    train_loss = [float(np.mean([g[n]["training"]["train_loss"] for g in grid["seeds"].values()])) for n in adversarial]
    online_loss = [
        float(np.mean([g[n]["training"].get("online_loss", np.nan) for g in grid["seeds"].values()])) for n in online
    ]
    chosen_adv = choose_length(spec.adversarial_epochs, train_loss)
    chosen_online = choose_length(spec.online_steps, online_loss)
    lines += [
        "",
        "## Lengths chosen from the training side",
        "",
        "Rule (no simulator): the shortest length after which the next one lowers the finetuning objective "
        "(adversarial: its training loss on perturbed batches; online: the loss on its buffer of planned "
        "trajectories, mean of the last tenth of steps) by less than 5% of itself.",
        f"- adversarial: {chosen_adv} epochs (training loss by length {', '.join(f'{v:.4g}' for v in train_loss)});"
        f" there Adam + MPC: {found[adversarial_name(chosen_adv)]['adam_mpc'].describe(100, ' points')}",
        f"- online: {chosen_online} steps (buffer loss by length {', '.join(f'{v:.4g}' for v in online_loss)});"
        f" there Adam + MPC: {found[online_name(chosen_online)]['adam_mpc'].describe(100, ' points')}",
    ]
    _plot(out, spec, grid, found, adversarial, online, train_loss, online_loss)
    lines += ["", "![effects](effects.png)", "", "![training side](training.png)", ""]
    lines += _adopted(out)
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text


def val_loss(grid: dict[str, Any], names: list[str]) -> list[float]:
    """Each model's last validation loss on the expert data, mean over seeds."""
    return [float(np.mean([g[n]["training"]["val_loss"] for g in grid["seeds"].values()])) for n in names]


def _plot(
    out: Path,
    spec: StudySpec,
    grid: dict[str, Any],
    found: dict[str, dict[str, PairedEffect]],
    adversarial: list[str],
    online: list[str],
    train_loss: list[float],
    online_loss: list[float],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, names, lengths, label in (
        (axes[0], adversarial, spec.adversarial_epochs, "adversarial epochs"),
        (axes[1], online, spec.online_steps, "online steps"),
    ):
        for key, colour in (("adam_mpc", "tab:blue"), ("gap", "tab:orange")):
            est = [100 * found[n][key].estimate for n in names]
            low = [100 * found[n][key].ci95[0] for n in names]
            high = [100 * found[n][key].ci95[1] for n in names]
            ax.errorbar(
                [n * (1.04 if key == "gap" else 1.0) for n in lengths],  # side by side, not one bar over the other
                est,
                yerr=[np.subtract(est, low), np.subtract(high, est)],
                marker="o",
                capsize=3,
                color=colour,
                label="Adam MPC success vs base" if key == "adam_mpc" else "Adam-CEM gap narrowed by",
            )
        ax.axhline(0, color="grey", lw=0.8)
        _length_axis(ax, lengths, label)
        ax.set_ylabel("points (95% CI, pooled over seeds)")
        ax.legend(fontsize=8)
    fig.suptitle(f"{spec.env}: effect of finetuning length")
    fig.tight_layout()
    fig.savefig(out / "effects.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, lengths, objective, names, xlabel, ylabel in (
        (
            axes[0],
            spec.adversarial_epochs,
            train_loss,
            adversarial,
            "adversarial epochs",
            "training loss (perturbed batches)",
        ),
        (axes[1], spec.online_steps, online_loss, online, "online steps", "buffer loss (last tenth)"),
    ):
        ax.plot(lengths, objective, marker="o", color="tab:blue")
        _length_axis(ax, lengths, xlabel)
        ax.set_ylabel(ylabel, color="tab:blue")
        # the clean validation loss on the expert data: what finetuning may cost the model's plain prediction
        twin = ax.twinx()
        twin.plot(lengths, val_loss(grid, names), marker="s", color="tab:grey", linestyle="--")
        twin.set_ylabel("val loss (expert data)", color="tab:grey")
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=120)
    plt.close(fig)


def _length_axis(ax, lengths: list[int], label: str) -> None:
    """A log axis of finetuning lengths, labelled at the lengths studied (not 2 x 10^0)."""
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.set_xticks(lengths, [f"{n:g}" for n in lengths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(label)


def _adopted(out: Path) -> list[str]:
    """The report's account of what `--from-demo` copied in rather than made (study_from_demo)."""
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


def _diagnostics_table(grid: dict[str, Any], models: list[str]) -> list[str]:
    """The train-test gap and the cost landscape of every setting, mean over seeds [min-max]."""
    per_seed = [g for g in grid["seeds"].values() if all("diagnostics" in g[m] for m in models)]
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
        values = [[g[model]["diagnostics"][key] for g in per_seed] for key, _ in columns]
        lines.append(
            f"| {model} | " + " | ".join(f"{np.mean(v):.4g} [{min(v):.3g}-{max(v):.3g}]" for v in values) + " |"
        )
    return lines
