"""report.md of `wmplan demo`: tables beside the paper's, the figures, the directions read from the
numbers, the stage times and the commands that reproduce every file.

Example:
    >>> write_report(out, "wall", store.summary(), grids, diagnostics, seconds, scale, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wmplan.defaults import TUNING_PAIR_SEED
from wmplan.envs import make_task
from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.protocols import PROTOCOL_NOTES, Mode
from wmplan.evaluation.report import (
    MODEL_NAMES,
    PAPER_PLANNERS,
    Grid,
    grid_rows,
    pair_kind_table,
    paper_protocol_table,
    plot_efficiency,
    reached_table,
    success_grid_table,
)
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.claims import paper_directions
from wmplan.experiments.demo_commands import reproduce_commands
from wmplan.models.encoder_registry import encoder_title
from wmplan.tasks import task_spec


def _defaults_origin(env: str) -> str:
    """Where the task's planning defaults were chosen, in the report's words (wmplan.tasks, chosen_on)."""
    chosen_on = task_spec(env).planning.chosen_on
    if chosen_on == "tuning":
        return f"the task's planning defaults were chosen on other pairs, seed {TUNING_PAIR_SEED}"
    if chosen_on == "report":
        return (
            "the task's planning defaults were chosen on these report pairs before tuning pairs existed, not yet "
            f"re-derived on the tuning pairs (seed {TUNING_PAIR_SEED}): a cell may be flattered by them"
        )
    return "the task's planning defaults were set without a search over start/goal pairs"


def write_report(
    out: Path,
    env: str,
    data: dict,
    grids: dict[str, Grid],
    diagnostics: dict[str, dict],
    seconds: dict[str, float],
    scale: dict[str, Any],
    seed: int,
    references: dict[str, dict[str, Any]],
    other_objective: dict[str, dict] | None = None,
    train_seeds: list[int] | None = None,
    workers: int = 1,
    paper_cells: dict[str, dict] | None = None,
) -> str:
    """Write out/efficiency.png and out/report.md; return the Markdown. `references`: the simulator
    reference's summary per mode (open loop, and MPC under the fixed and paper protocols: what a perfect
    model could reach on the same pairs); `paper_cells`: per encoder, {(model, planner): summary} of MPC
    under the paper protocol; `other_objective`: per
    encoder, {(planner, mpc): summary} of the base model planned with the non-default objective mode;
    `train_seeds`: the models' training seeds (default [seed]); with several, every summary is pooled
    over them (wmplan.evaluation.summary.pool_over_seeds)."""
    plot_efficiency(grids, out / "efficiency.png", env)
    episodes = scale["episodes"]
    train_seeds = train_seeds or [seed]
    how_cells = (
        "A cell reads `success % (95% Wilson CI) · seconds per planning call`"
        if len(train_seeds) == 1
        else f"Every model is trained with each of the seeds {', '.join(map(str, train_seeds))} on the same data; a cell "
        "reads `success % over all seeds' episodes (= the mean over seeds) [lowest-highest seed] · seconds per planning "
        "call`; every paired test below pairs each (seed, pair) with itself and tests over the pairs (each pair's "
        "differences averaged over the seeds: the seeds replan the same pairs)"
    )
    parts = [
        f"# wmplan demo: {env}, CPU scale\n",
        f"Total {seconds['total'] / 60:.1f} min on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        f"{f'; eval cells planned by {workers} one-thread processes at once' if workers > 1 else ''}). "
        f"Dataset: {data['episodes']} episodes, {data['frames']} frames "
        f"of {_frame_size(data)} RGB.",
        f"Every cell plans the same {episodes} start/goal pairs (seed {EvalConfig().seed}; {_defaults_origin(env)}) "
        "and, unless marked paper protocol, is scored in the "
        "simulator at the end of its budget (the fixed protocol); "
        f"{'the paper used 50 (`wmplan demo --full`)' if episodes < 50 else 'as many as the paper'}. "
        f"{how_cells} (one batched call plans all episodes; simulator excluded; "
        f"{_mpc_schedule(grids)}). The paper's columns are its Table 1 (DINO-WM on DINOv2 tokens, 50 episodes), for direction only: "
        "our models, data scale and encoders differ.\n",
    ]
    if task_spec(env).reports_distance:
        initial = next(iter(next(iter(grids.values())).values()))["mean_initial_distance"]
        parts.append(
            f"Cells lead with the mean final Chamfer distance to the goal's particles (table units, 95% CI); the starts are "
            f"{initial:.3f} from their goals on average, and success means under the task's threshold. DINO-WM "
            "reports CEM + MPC Chamfer distances of 0.41 (Rope) and 0.26 (Granular) on FleX, in other units.\n"
        )
    parts += [_reference_line(mode, r) for mode, r in references.items()]
    for encoder, grid in grids.items():
        parts.append(
            _encoder_section(
                out, env, encoder, grid, diagnostics[encoder], (other_objective or {}).get(encoder, {}), train_seeds
            )
        )
        paper = (paper_cells or {}).get(encoder, {})
        if paper:
            parts.append(_paper_section(paper, env, references.get("paper")))
        parts.append(_pair_kind_section(env, grid, paper, references, episodes))
    parts += [
        "## Success against planning time (the paper's Figure 3)\n",
        "![efficiency](efficiency.png)\n",
        "x: planning wall-clock of a whole cell (every replan, all episodes at once); colour = planner, marker = model, "
        "filled = MPC, black edge = bounded plans.\n",
        _timings(seconds),
        reproduce_commands(out, env, data, scale, seed, list(grids), references, train_seeds),
    ]
    report = "\n".join(parts)
    (out / "report.md").write_text(report)
    return report


def seed_folder(root: Path, train_seed: int, train_seeds: list[int]) -> Path:
    """Where the demo keeps one training seed's runs or evals under `root`: root itself for a single
    seed (the usual layout), root/seed<k> for each of several."""
    return root / f"seed{train_seed}" if len(train_seeds) > 1 else root


def _frame_size(data: dict) -> str:
    """'65x65' from a dataset summary's obs shape (frames, H, W, 3)."""
    _, height, width, _ = data["arrays"]["obs"]["shape"]
    return f"{height}x{width}"


def _encoder_section(
    out: Path, env: str, encoder: str, grid: Grid, diag: dict, other: dict, train_seeds: list[int]
) -> str:
    several = len(train_seeds) > 1
    models = [
        _models_line(seed_folder(out / "runs" / encoder, s, train_seeds), f" (training seed {s})" if several else "")
        for s in train_seeds
    ]
    bounded = any(key[3] for key in grid)
    lines = [
        f"## {encoder_title(encoder)}\n",
        "\n".join(models),
        "",
        success_grid_table(grid, env),
        "",
        "Bounded rows keep every plan inside the task's action range (`--set planner.bounded=true`).\n"
        if bounded
        else "",
        paper_directions(grid, by_distance=task_spec(env).reports_distance),
        "",
        _objective_table(grid, other, task_spec(env).reports_distance),
        "",
        "Reached at any step, % (the goal touched at some env step on the way; DINO-WM's own evaluation stops "
        "an episode there, which the success columns above do not):\n",
        reached_table(grid),
        "",
        "### Train-test gap (the paper's Figure 4) and cost landscape (Figure 2)"
        + (f", training seed {train_seeds[0]}'s models\n" if several else "\n"),
        "| model | expert error | planner error | ratio | landscape roughness | basin width |",
        "|---|---|---|---|---|---|",
    ]
    gap, land = diag["gap"], diag["landscape"]
    for model in (k for k in gap if k != "settings"):
        g, s = gap[model], land[model]
        lines.append(
            f"| {MODEL_NAMES.get(model, model)} | {g['expert_error']:.2e} | {g['planner_error']:.2e} | {g['ratio']:.2f} | "
            f"{s['roughness']:.4f} | {s['basin_width']:.2f} |"
        )
    gs, grid_n = gap["settings"], land["settings"]["grid"]
    lines += [
        "",
        f"Errors: open-loop latent MSE over {gs['horizon']} model steps on {gs['windows']} held-out expert windows and on "
        "the trajectories the base model's Adam planner produced from the same starts and the simulator executed (ratio = planner / "
        f"expert). Roughness: mean |second difference| of the cost over a {grid_n}x{grid_n} slice through the base model's Adam "
        "optimum, over the cost range (lower = smoother); basin width: share of the slice within 10% of the range above its minimum.\n",
        f"![gap](gap/{encoder}/gap.png)\n",
        f"![landscape](landscape/{encoder}/landscape.png)\n",
        _door_path_lines(encoder, diag.get("door_path")),
    ]
    return "\n".join(lines)


def _door_path_lines(encoder: str, result: dict | None) -> str:
    """What the base model's cost does on the way out of the wall's local minimum (Wall only)."""
    if result is None:
        return ""
    if not result["pairs"]:
        return "No detour pair among the evaluation pairs: the cost along the way out of the wall's minimum is not traced.\n"
    mine, truth = result[encoder], result["true distance"]
    return (
        f"Cost along the way out of the wall's local minimum (`evaluation/door_path.py`: from the wall's face nearest the "
        f"goal, along it to the door, through it, to the goal; the base model, {result['pairs']} detour pairs): the "
        f"latent cost rises before it falls on {100 * mine['rises']:.0f}% of them, by {100 * mine['mean_largest_rise']:.0f}% of "
        f"its start value on average; the true distance on {100 * truth['rises']:.0f}%, by "
        f"{100 * truth['mean_largest_rise']:.0f}%. The higher the rise, the deeper the trap for every local planner.\n\n"
        f"![door path](door_path/{encoder}/door_path.png)\n"
    )


def _objective_table(grid: Grid, other: dict, by_distance: bool) -> str:
    """The base model's cells under the task's default objective mode beside the other mode."""
    if not other:
        return ""
    lines = [
        "Objective (base model): the task's default mode, which the tables above use, beside the other "
        "(`last`: the horizon's final frame; `all`: every predicted frame, later ones weighted more; `--set planner.objective=...`):\n",
        "| planner | mode | default | other |",
        "|---|---|---|---|",
    ]
    for (planner, mpc), alt in other.items():
        default = grid.get(("base", planner, mpc, False))
        if default is not None:
            lines.append(
                f"| {planner} | {Mode(mpc).label} | {_objective_cell(default, by_distance)} | "
                f"{_objective_cell(alt, by_distance)} |"
            )
    return "\n".join(lines)


def _objective_cell(s: EvalSummary, by_distance: bool) -> str:
    value = f"{s['mean_final_distance']:.3f}" if by_distance else f"{100 * s['success_rate']:.0f}%"
    return f"{s['objective']['mode']}: {value}"


def _reference_line(mode: str, r: dict[str, Any]) -> str:
    """What planning in the simulator itself reaches on the same pairs in one mode: the ceiling of the
    cells of that mode."""
    if r["method"] == "cem_in_simulator":
        how = (
            f"the eval's CEM ({r['samples']} samples, top {r['topk']}, {r['iterations']} iterations, horizon {r['horizon']}) "
            f"with every candidate scored by the simulator on the true state, {_mode_words(mode, r)}"
        )
    else:
        how = f"greedy pushes in the simulator ({r['candidates']} candidates per push, {r['pushes']} pushes, judged on the true state)"
    return (
        f"Simulator reference, {mode} (`wmplan reference`, below): {how} reaches "
        f"{100 * r['success_rate']:.0f}% success and a mean final {r['distance']} of {r['mean_final_distance']:.3f} on the same "
        "pairs: what a perfect model could give these planners.\n"
    )


def _mode_words(mode: str, r: dict[str, Any]) -> str:
    if mode == "open loop":
        return "open loop"
    m = r["mpc_config"]
    if mode == "paper":
        return (
            f"MPC under the paper protocol (whole plans, up to {m['replans']} plans, {r['mean_replans']:.1f} used on "
            "average; the loop stops at the simulator's success test)"
        )
    return f"MPC under the fixed protocol ({m['replans']} plans executing {m['execute']} model steps each)"


def _pair_kind_section(env: str, grid: Grid, paper: dict, references: dict[str, dict], episodes: int) -> str:
    """Every cell's success split by the kind of its pair, where the task tells kinds apart (Wall: does the
    straight line pass the door?): where models and planners differ when the totals agree."""
    task = make_task(env)
    if not hasattr(task, "pair_kinds"):
        return ""
    kinds = task.pair_kinds(*task.sample_start_goal(np.random.default_rng(EvalConfig().seed), episodes))
    rows: dict[str, list] = {}
    for model, mpc, bounded, row in grid_rows(grid):
        rows[f"{MODEL_NAMES.get(model, model)}, {Mode(mpc, bounded).label}"] = row
    for model in dict.fromkeys(m for m, _ in paper):
        rows[f"{MODEL_NAMES.get(model, model)}, MPC (paper protocol)"] = [paper.get((model, p)) for p in PAPER_PLANNERS]
    return pair_kind_table(rows, kinds, references) + "\n"


def _paper_section(cells: dict, env: str, reference: dict[str, Any] | None) -> str:
    """The paper-protocol table of one encoder, beside the paper's MPC cells, and the paper's MPC claims
    tested on its cells (a family of their own)."""
    note = PROTOCOL_NOTES["paper"]
    as_grid: Grid = {(model, planner, True, False): s for (model, planner), s in cells.items()}
    return "\n".join(
        [
            "### MPC under the paper protocol, beside the paper's Table 1\n",
            f"{note[0].upper()}{note[1:]}. This is how the paper's MPC numbers were made, so these "
            "cells (not the fixed-protocol ones above) are the like-for-like comparison. A cell reads `success % "
            "(interval) · seconds per planning call · planning calls per episode`.\n",
            paper_protocol_table(cells, env, reference),
            "",
            "Under the paper protocol: " + paper_directions(as_grid, by_distance=task_spec(env).reports_distance),
            "",
        ]
    )


def _models_line(runs: Path, label: str = "") -> str:
    """Validation losses of the three models (clean teacher-forced loss on the same expert windows), each
    beside its own copy-last-frame loss: the latent holds each model's own proprio embedding, so the
    baseline differs between models."""
    parts = []
    for model in ("base", "online", "adversarial"):
        last = list(csv.DictReader((runs / model / "metrics.csv").open()))[-1]
        parts.append(
            f"{MODEL_NAMES[model]} val loss {float(last['val_loss']):.2e} (copying the last frame "
            f"{float(last['val_baseline_loss']):.2e})"
        )
    encoder = (
        json.loads((runs / "base" / "encoder.json").read_text()) if (runs / "base" / "encoder.json").exists() else {}
    )
    spearman = (
        f"; latent/true distance Spearman {encoder['latent_distance_spearman']:.4f}"
        if "latent_distance_spearman" in encoder
        else ""
    )
    return f"Models{label}: " + ", ".join(parts) + f"{spearman}."


def _timings(seconds: dict[str, float]) -> str:
    rows = "\n".join(f"| {stage} | {s / 60:.1f} |" for stage, s in seconds.items())
    return f"## Time per stage\n\n| stage | minutes |\n|---|---|\n{rows}\n"


def _mpc_schedule(grids: dict[str, Grid]) -> str:
    """How an MPC cell of this report plans, from the first MPC summary: "an MPC episode makes 2 calls
    and executes 5 model steps of each"."""
    for grid in grids.values():
        for summary in grid.values():
            if summary["mpc"]:
                m = summary["mpc_config"]
                return f"an MPC episode makes {m['replans']} calls and executes {m['execute']} model steps of each"
    return "no MPC cells"
