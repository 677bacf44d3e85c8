"""grid.json of `wmplan demo`: the demo's numbers in one machine-readable file, for users' own plots.

Format (every number as the demo measured it; `reference` is planning in the simulator itself):
    {"task": str,
     "reference": {"method": str, "success_rate": float, "mean_final_distance": float},
     "encoders": {name: {"pixels": bool, "latent_distance_spearman": float | null, "val_loss": float,
                         "copy_last_loss": float}},
     "cells": [{"encoder", "model" (base | online | adversarial), "planner", "mpc", "mpc_execute" (model steps
                executed per plan; null open loop), "bounded", "objective", "success_rate", "ci95",
                "mean_final_distance", "seconds_per_plan"}, ...]}
`val_loss` and `copy_last_loss` are the base model's final validation loss and the loss of copying the
last frame on the same windows. With several training seeds (`wmplan demo --seeds`), each cell is pooled
over them and adds "train_seeds", "seed_success_rates" and "seed_final_distances" (one per seed); the
encoder facts are the first seed's base model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wmplan.config import STATE_ENCODERS
from wmplan.evaluation.report import Grid
from wmplan.evaluation.summary import EvalSummary, seed_spread
from wmplan.models.run_folder import RunFolder

GRID_FILE = "grid.json"


def encoder_facts(run: Path, encoder: str) -> dict[str, Any]:
    """What a trained run says about its encoder: pixels or state, the latent/true-distance Spearman
    (from encoder.json; null where the encoder was not pretrained) and the final validation losses."""
    folder = RunFolder(run)
    last, facts = folder.metrics()[-1], folder.encoder_info()
    return {
        "pixels": encoder not in STATE_ENCODERS,
        "latent_distance_spearman": facts.get("latent_distance_spearman"),
        "val_loss": float(last["val_loss"]),
        "copy_last_loss": float(last["val_baseline_loss"]),
    }


def cell(encoder: str, model: str, planner: str, mpc: bool, bounded: bool, s: EvalSummary) -> dict[str, Any]:
    """One grid.json cell from an eval summary."""
    return {
        "encoder": encoder,
        "model": model,
        "planner": planner,
        "mpc": mpc,
        "mpc_execute": s["mpc_config"]["execute"] if mpc else None,
        "bounded": bounded,
        "objective": s["objective"]["mode"],
        "success_rate": s["success_rate"],
        "ci95": s["ci95"],
        "mean_final_distance": s["mean_final_distance"],
        "seconds_per_plan": s["seconds_per_plan"],
        **(seed_spread(s) or {}),
    }


def grid_document(
    env: str,
    reference: dict[str, Any],
    runs: dict[str, Path],
    grids: dict[str, Grid],
    other_objective: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """The grid.json document: `runs` maps each encoder to its base run, `grids` each encoder to
    {(model, planner, mpc, bounded): eval summary}, `other_objective` each encoder to {(planner, mpc):
    summary} of the base model planned with the objective mode that is not the default."""
    cells = [cell(encoder, *key, s) for encoder, grid in grids.items() for key, s in grid.items()]
    cells += [
        cell(encoder, "base", planner, mpc, False, s)
        for encoder, extra in (other_objective or {}).items()
        for (planner, mpc), s in extra.items()
    ]
    return {
        "task": env,
        "reference": {k: reference[k] for k in ("method", "success_rate", "mean_final_distance")},
        "encoders": {encoder: encoder_facts(run, encoder) for encoder, run in runs.items()},
        "cells": cells,
    }


def write_grid(
    out: Path,
    env: str,
    reference: dict[str, Any],
    runs: dict[str, Path],
    grids: dict[str, Grid],
    other_objective: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Write out/grid.json and return its document."""
    document = grid_document(env, reference, runs, grids, other_objective)
    (out / GRID_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return document
