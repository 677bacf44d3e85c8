"""Where the authors' code differs from the study's finetuning: each method's middle-length setting of a finished
study, finetuned again on one training seed's base model the way the code does it, planned in the study's cells
on the same pairs and compared, paired, with the study's own version.

    OUT/runs/seed<k>/<setting>_code/          the code's version of a study setting (the study's other runs kept)
    OUT/eval/seed<k>/<setting>_code/<cell>/   its cells, the study's cells and pairs
    OUT/variants.json, OUT/variants.md        per method and cell: the successes of base, study and code version,
                                              code - study paired with its interval and Holm-adjusted p, and each
                                              version against the base model with its verdict

The versions (PAPER.md):
- adversarial: the study follows the paper's text, perturbing the visual latents and the raw actions with radii
  fixed from the first minibatch's spread; the code perturbs the predictor's input tokens, the action embedding
  included, with radii from each batch's own spread;
- online: the study mixes a fixed share of buffer windows into every batch from a bounded buffer (its own
  choice, where the text is silent); the code trains expert and online windows 1 : k in the k-th pass over the
  data, from a buffer that keeps every window. Its planner (Adam, lr 0.3, 100 steps) is already the study's.

Example:
    >>> rows = run_variants("results/study/pusht_state", seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.evaluation.multiple import claim_verdict, holm
from wmplan.evaluation.paired import PairedEffect, success_difference
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.runner import BaseRun, FinetunedRun, run_grid
from wmplan.experiments.study import (
    StudySpec,
    adversarial_name,
    online_name,
    study_cells,
    study_grid,
)
from wmplan.writing import atomic_write

CODE_VERSIONS: dict[str, dict[str, Any]] = {
    "adversarial": {"adversarial.action_space": "embedding", "adversarial.eps_mode": "adaptive"},
    # a buffer far above what the study's longest online length adds (3,000 steps: 300 refreshes x 32 starts
    # x 5 windows = 48,000), i.e. one that keeps everything, as the code's does
    "online": {"online.share": "growing", "online.buffer_size": 1_000_000},
}
"""Per method, the settings that turn the study's version into the authors' code's."""


def middle_settings(spec: StudySpec) -> dict[str, str]:
    """Per method, the study setting whose code version is measured: the middle length, default radii."""
    return {
        "adversarial": adversarial_name(spec.adversarial_epochs[len(spec.adversarial_epochs) // 2]),
        "online": online_name(spec.online_steps[len(spec.online_steps) // 2]),
    }


def run_variants(
    out: str | Path, seed: int = 0, *, workers: int = 1, device: str = "cpu", progress: bool = True
) -> list[dict[str, Any]]:
    """Finetune and plan the code versions in the study folder `out` (resumable: the grid engine skips what a
    call finished) and write variants.json and variants.md; returns the comparison's rows."""
    out = Path(out)
    spec = StudySpec(**json.loads((out / "study.json").read_text()))
    if seed not in spec.seeds:
        raise ValueError(f"{out} has no training seed {seed} (its seeds: {spec.seeds}); choose one of them")
    grid = study_grid(spec, [seed], out)
    base = next(run for run in grid.runs if isinstance(run, BaseRun))
    settings = middle_settings(spec)
    runs: list[BaseRun | FinetunedRun] = [base]  # with the study's own runs, which the engine finds finished
    for method, setting in settings.items():
        study_run = next(run for run in grid.runs if run.name == f"seed{seed}/{setting}")
        assert isinstance(study_run, FinetunedRun)
        overrides = {**study_run.overrides, **CODE_VERSIONS[method]}
        runs += [study_run, FinetunedRun(f"{study_run.name}_code", base.name, method, overrides)]
    cells = study_cells(spec)
    variant_grid = dataclasses.replace(grid, runs=tuple(runs), cells={run.name: tuple(cells) for run in runs})
    written = out / "variants.json"
    # minutes summed over the calls that made it (a resumed call adds its own)
    minutes: dict[str, float] = json.loads(written.read_text())["minutes"] if written.exists() else {}

    def clock(stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            minutes[stage] = round(minutes.get(stage, 0.0) + (time.monotonic() - start) / 60, 2)

    done = run_grid(variant_grid, out, workers=workers, device=device, progress=progress, clock=clock)
    rows: list[dict[str, Any]] = []
    for method, setting in settings.items():
        for cell in cells:
            before, ours, code = (
                done[(name, cell.name)] for name in (base.name, f"seed{seed}/{setting}", f"seed{seed}/{setting}_code")
            )
            effect = paired(code, ours)
            rows.append(
                {
                    "method": method,
                    "setting": setting,
                    "cell": cell.name,
                    "base_success": before["success_rate"],
                    "study_success": ours["success_rate"],
                    "code_success": code["success_rate"],
                    "difference": effect.estimate,
                    "ci95": list(effect.ci95),
                    "p_value": effect.p_value,
                    "study_mean_final_distance": ours["mean_final_distance"],
                    "code_mean_final_distance": code["mean_final_distance"],
                    "study_vs_base": as_row(paired(ours, before)),
                    "code_vs_base": as_row(paired(code, before)),
                }
            )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
    for version in ("study_vs_base", "code_vs_base"):  # each version's verdicts: Holm over its own claims
        for row, adjusted in zip(rows, holm([r[version]["p_value"] for r in rows])):
            row[version] |= {"p_holm": adjusted, "verdict": claim_verdict(row[version]["difference"], adjusted)}
    document = {"seed": seed, "code_versions": CODE_VERSIONS, "rows": rows, "minutes": minutes}
    atomic_write(written, lambda p: p.write_text(json.dumps(document, indent=2) + "\n"))
    atomic_write(out / "variants.md", lambda p: p.write_text(variants_markdown(spec, document)))
    return rows


def paired(a: EvalSummary, b: EvalSummary) -> PairedEffect:
    """Success of cell a minus cell b (eval summaries) over their shared pairs."""
    return success_difference(np.array(a["episode_success"]), np.array(b["episode_success"]))


def as_row(effect: PairedEffect) -> dict[str, Any]:
    return {"difference": effect.estimate, "ci95": list(effect.ci95), "p_value": effect.p_value}


def variants_markdown(spec: StudySpec, document: dict[str, Any]) -> str:
    """The comparison as a table: code - study per cell, and each version against the base model."""
    lines = [
        f"# The authors' code against the study's finetuning: {spec.env}, {spec.encoder} encoder, training seed "
        f"{document['seed']}",
        "",
        f"{spec.episodes} pairs of seed {spec.pair_seed}, the study's cells. Code versions: "
        + "; ".join(f"{m}: " + ", ".join(f"`{k}={v}`" for k, v in s.items()) for m, s in CODE_VERSIONS.items())
        + f". p-values Holm-adjusted over the {len(document['rows'])} rows for code - study, and for each version's "
        "effect against the base model over that version's rows (so the study version's verdicts here may differ "
        "from the study report's, whose family is every length of its block).",
        "",
        "| setting | cell | base | study | code | code - study (95% CI) | p (Holm) | study vs base | code vs base "
        "| final distance study / code |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in document["rows"]:
        low, high = (100 * v for v in r["ci95"])
        success = " | ".join(f"{100 * r[k]:.0f}%" for k in ("base_success", "study_success", "code_success"))
        against = " | ".join(
            f"{100 * r[k]['difference']:+.0f}, p = {r[k]['p_holm']:.3f}, {r[k]['verdict']}"
            for k in ("study_vs_base", "code_vs_base")
        )
        lines.append(
            f"| {r['setting']} | {r['cell']} | {success} | {100 * r['difference']:+.0f} ({low:+.0f} to {high:+.0f}) "
            f"| {r['p_holm']:.3f} | {against} | {r['study_mean_final_distance']:.3g} / "
            f"{r['code_mean_final_distance']:.3g} |"
        )
    lines += ["", "Minutes: " + ", ".join(f"{k} {v}" for k, v in document["minutes"].items()), ""]
    return "\n".join(lines)
