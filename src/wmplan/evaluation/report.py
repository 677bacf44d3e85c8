"""Tables of planning results beside the paper's numbers (Markdown), and the efficiency plot.

A result grid maps (model, planner, mpc, bounded) to an `evaluate` summary; `model` is base, online or
adversarial.

Example:
    >>> print(success_grid_table(grid, task="wall"))   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wmplan.evaluation.protocols import MODES, MPC, MPC_BOUNDED, OPEN, Mode
from wmplan.evaluation.summary import EvalSummary, seed_spread
from wmplan.planning.registry import planner_colour, planner_names, planner_title
from wmplan.tasks import task_spec

Grid = dict[tuple[str, str, bool, bool], EvalSummary]
"""(model, planner, mpc, bounded) -> that cell's eval summary."""

MODEL_NAMES = {"base": "base", "online": "Online WM", "adversarial": "Adversarial WM"}
PAPER_PLANNERS = ("gd", "adam", "cem")
"""The tables' columns: the paper's planners (the others appear in the efficiency plot). Every planner's name and
colour in a report are those its registry entry gives (wmplan.planning.registry: planner_title, planner_colour)."""


def cell(summary: EvalSummary | None, distance: bool = False) -> str:
    """'62 (48-74) · 4.1 s': success % with its 95% CI, and seconds per planning call; with `distance`,
    the mean final distance and its 95% CI first ('0.21 (0.17-0.25) · 35% · 4.1 s'). A summary pooled
    over training seeds shows the mean over seeds and, in brackets, the seeds' range instead of the CI
    ('62 [55-70] · 4.1 s')."""
    if summary is None:
        return "-"
    spread = seed_spread(summary)
    rates = spread["seed_success_rates"] if spread else []
    low, high = (min(rates), max(rates)) if rates else summary["ci95"]
    brackets = "[]" if rates else "()"
    text = (
        f"{100 * summary['success_rate']:.0f} {brackets[0]}{100 * low:.0f}-{100 * high:.0f}{brackets[1]} · "
        f"{summary['seconds_per_plan']:.1f} s"
    )
    if distance:
        finals = spread["seed_final_distances"] if spread else []
        d_low, d_high = (min(finals), max(finals)) if finals else summary["final_distance_ci95"]
        text = (
            f"{summary['mean_final_distance']:.3f} {brackets[0]}{d_low:.3f}-{d_high:.3f}{brackets[1]} · "
            f"{text.replace(' ' + brackets[0], '% ' + brackets[0], 1)}"
        )
    return text


def grid_rows(grid: Grid):
    """(model, mpc, bounded, [summary or None per planner]) for every (model, mode) that `grid` holds,
    models in the grid's order and modes in MODES order: the rows of every table of a grid."""
    for model in dict.fromkeys(key[0] for key in grid):
        for mode in MODES:  # a model's block: open loop, MPC, then MPC with bounded plans
            row = [grid.get((model, planner, mode.mpc, mode.bounded)) for planner in PAPER_PLANNERS]
            if any(r is not None for r in row):
                yield model, mode.mpc, mode.bounded, row


def success_grid_table(grid: Grid, task: str) -> str:
    """One row per (model, mode) present in `grid`; columns GD, Adam, CEM, then the paper's GD / Adam / CEM.
    For the deformable tasks each cell leads with the mean final Chamfer distance."""
    distance = task_spec(task).reports_distance
    lines = ["| model | mode | GD | Adam | CEM | paper GD / Adam / CEM |", "|---|---|---|---|---|---|"]
    for model, mpc, bounded, row in grid_rows(grid):
        paper = (task_spec(task).paper_success or {}).get(model)
        paper_cell = " / ".join(str(paper[p][int(mpc)]) for p in PAPER_PLANNERS) if paper and not bounded else "-"
        lines.append(
            f"| {MODEL_NAMES.get(model, model)} | {Mode(mpc, bounded).label} | "
            + " | ".join(cell(r, distance) for r in row)
            + f" | {paper_cell} |"
        )
    note = task_spec(task).paper_note
    return "\n".join(lines + ["", note] if note else lines)


def paper_protocol_table(cells: dict[tuple[str, str], EvalSummary], task: str, reference: dict | None) -> str:
    """MPC under the paper protocol (DINO-WM's loop), one row per model: each cell `success (interval) ·
    seconds per planning call · planning calls per episode`, beside the paper's MPC cells (its Table 1,
    made the same way); a first row for the simulator reference under the same protocol."""
    lines = [
        "| model | GD | Adam | CEM | paper GD / Adam / CEM (MPC) |",
        "|---|---|---|---|---|",
    ]
    if reference is not None:
        lines.append(
            f"| simulator reference (CEM) | - | - | {100 * reference['success_rate']:.0f} · "
            f"{reference['mean_replans']:.1f} plans | - |"
        )
    paper = task_spec(task).paper_success or {}
    for model in dict.fromkeys(m for m, _ in cells):
        row = [cells.get((model, p)) for p in PAPER_PLANNERS]
        theirs = paper.get(model)
        lines.append(
            f"| {MODEL_NAMES.get(model, model)} | "
            + " | ".join(
                "-" if r is None else f"{cell(r)} · {r.get('mean_replans', float('nan')):.1f} plans" for r in row
            )
            + f" | {' / '.join(str(theirs[p][1]) for p in PAPER_PLANNERS) if theirs else '-'} |"
        )
    return "\n".join(lines)


def by_pair_kind(summary: EvalSummary | dict, kinds: np.ndarray) -> dict[str, float]:
    """Success share of a cell's episodes on each kind of pair (`kinds`: one label per pair; a cell pooled
    over seeds repeats the pairs seed after seed)."""
    success = np.asarray(summary["episode_success"], float)
    labels = np.resize(kinds, len(success))  # seed after seed, the same pairs in the same order
    return {kind: float(success[labels == kind].mean()) for kind in dict.fromkeys(kinds)}


def pair_kind_table(rows: dict[str, list[EvalSummary | None]], kinds: np.ndarray, references: dict[str, dict]) -> str:
    """Success % on each kind of pair (Wall: direct | detour), one row per (model, mode) label, columns GD,
    Adam, CEM; first the simulator references (mode -> summary with per-episode outcomes) in the CEM column."""
    names = list(dict.fromkeys(kinds))
    counts = " / ".join(f"{name} {int(np.sum(kinds == name))}" for name in names)
    lines = [
        f"Success % by pair kind ({' / '.join(names)}; pairs: {counts}):\n",
        "| model, mode | GD | Adam | CEM |",
        "|---|---|---|---|",
    ]

    def text(s) -> str:
        return "-" if s is None else " / ".join(f"{100 * v:.0f}" for v in by_pair_kind(s, kinds).values())

    lines += [
        f"| simulator reference, {mode} | - | - | {text(r)} |"
        for mode, r in references.items()
        if "episode_success" in r
    ]
    lines += [f"| {label} | " + " | ".join(text(s) for s in row) + " |" for label, row in rows.items()]
    return "\n".join(lines)


def reached_table(grid: Grid) -> str:
    """The share of episodes that touched the goal at any env step (DINO-WM stops an episode there), per cell."""
    lines = ["| model | mode | GD | Adam | CEM |", "|---|---|---|---|---|"]
    for model, mpc, bounded, row in grid_rows(grid):
        lines.append(
            f"| {MODEL_NAMES.get(model, model)} | {Mode(mpc, bounded).label} | "
            + " | ".join("-" if r is None else f"{100 * r['reached_rate']:.0f}" for r in row)
            + " |"
        )
    return "\n".join(lines)


MODEL_MARKERS = {"base": "o", "online": "s", "adversarial": "^"}
MODE_STYLES = {
    OPEN: dict(marker="o", markerfacecolor="none"),
    MPC: dict(marker="o"),
    MPC_BOUNDED: dict(marker="o", markeredgecolor="black"),
}


def efficiency_legend(grids: dict[str, Grid]) -> list[dict]:
    """The efficiency plot's legend entries (Line2D keyword arguments): the planners the panels show, and the
    models and modes only where the panels show more than one of them."""
    cells = [key for grid in grids.values() for key in grid]
    planners = {planner for _, planner, _, _ in cells}
    models = {model for model, _, _, _ in cells}
    modes = {Mode(mpc, bounded) for _, _, mpc, bounded in cells}
    entries = [
        dict(color=planner_colour(p), marker="o", label=planner_title(p)) for p in planner_names() if p in planners
    ]
    if len(models) > 1:
        entries += [dict(color="grey", marker=m, label=MODEL_NAMES[k]) for k, m in MODEL_MARKERS.items() if k in models]
    if len(modes) > 1:
        entries += [dict(color="grey", **style, label=m.label) for m, style in MODE_STYLES.items() if m in modes]
    return entries


def plot_efficiency(grids: dict[str, Grid], path: Path, task: str, titles: dict[str, str] | None = None) -> None:
    """Success against total planning seconds for every cell, one panel per encoder (the paper's Figure 3)
    or per key of `grids` with its title in `titles`. Colour = planner, marker = model, filled = MPC,
    hollow = open loop, a black edge = bounded plans."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(grids), figsize=(5.2 * len(grids), 4.2), squeeze=False)
    for ax, (encoder, grid) in zip(axes[0], grids.items()):
        for (model, planner, mpc, bounded), s in grid.items():
            colour = planner_colour(planner)
            ax.scatter(
                s["planning_seconds_total"],
                100 * s["success_rate"],
                s=60 if bounded else 45,
                marker=MODEL_MARKERS.get(model, "x"),
                facecolors=colour if mpc else "none",
                edgecolors="black" if bounded else colour,
                linewidths=1.4,
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        low, high = ax.get_xlim()
        if high / low < 10:  # no decade inside: label a few minor ticks, or the axis has no numbers at all
            ax.xaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        else:
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on a long log axis
        ax.set_ylim(-4, 104)
        ax.set_xlabel("planning seconds for all episodes (all replans, batched)")
        ax.set_ylabel("success %")
        ax.set_title(titles[encoder] if titles else f"{task}, {encoder} encoder")
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], linestyle="", **style) for style in efficiency_legend(grids)]
    fig.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
