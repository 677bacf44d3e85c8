"""grid.json of `wmplan demo`: the demo's numbers in one machine-readable file, for users' own plots, in
the format every grid writes (wmplan.experiments.results, whose docstring describes it): kind "demo", each
cell built by `cell` from its eval summary, the one cell builder of every grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmplan.defaults import TUNING_PAIR_SEED
from wmplan.evaluation.protocols import cell_protocol
from wmplan.evaluation.report import Grid
from wmplan.evaluation.summary import EvalSummary, seed_spread
from wmplan.experiments.results import document, write_document
from wmplan.models.encoder_registry import encoder_entry
from wmplan.models.run_folder import NO_RUN_RECORD, RunFolder


def encoder_facts(run: Path, encoder: str) -> dict[str, Any]:
    """What a trained run says about its encoder: pixels or state, the latent/true-distance Spearman
    (from encoder.json; null where the encoder was not pretrained) and the final validation losses."""
    folder = RunFolder(run)
    last, facts = folder.metrics()[-1], folder.encoder_info()
    return {
        "pixels": not encoder_entry(encoder).reads_state,
        "latent_distance_spearman": facts.get("latent_distance_spearman"),
        "val_loss": float(last["val_loss"]),
        "copy_last_loss": float(last["val_baseline_loss"]),
    }


def episode_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    """A summary's per-episode outcomes, one row per (training seed, pair) in the summary's order."""
    seeds = s.get("train_seeds") or [None]
    pairs = len(s["episode_success"]) // len(seeds)
    columns = {
        "success": s["episode_success"],
        "reached": s.get("episode_reached"),
        "final_distance": s["episode_final_distance"],
        "replans": s.get("episode_replans"),
    }
    rows = []
    for i in range(len(s["episode_success"])):
        row: dict[str, Any] = {"pair": i % pairs}
        if seeds[0] is not None:
            row["train_seed"] = seeds[i // pairs]
        row |= {name: values[i] for name, values in columns.items() if values is not None}
        rows.append(row)
    return rows


def cell(encoder: str, model: str, planner: str, mpc: bool, bounded: bool, s: EvalSummary) -> dict[str, Any]:
    """One grid.json cell from an eval summary."""
    return {
        "encoder": encoder,
        "model": model,
        "planner": planner,
        "mpc": mpc,
        "protocol": cell_protocol(s),
        "mpc_execute": s["mpc_config"]["execute"] if mpc else None,
        "max_replans": s["mpc_config"]["replans"],
        "mean_replans": s.get("mean_replans"),
        "bounded": bounded,
        "objective": s["objective"]["mode"],
        "success_rate": s["success_rate"],
        "ci95": s["ci95"],
        "mean_final_distance": s["mean_final_distance"],
        "seconds_per_plan": s["seconds_per_plan"],
        **(seed_spread(s) or {}),
        "pair_seed": s["seed"],
        **{key: s.get(key) for key in NO_RUN_RECORD},
        "episodes": episode_rows(dict(s)),
    }


def reference_entry(r: dict[str, Any]) -> dict[str, Any]:
    """grid.json's record of one simulator reference (CEM in the simulator, or greedy pushes)."""
    entry: dict[str, Any] = {k: r[k] for k in ("method", "success_rate", "mean_final_distance") if k in r}
    entry |= {
        "protocol": r.get("protocol", "fixed"),
        "mode": r.get("mode", "open loop"),
        "ci95": r.get("ci95"),
        "pair_seed": r["seed"],
    }
    if "mpc_config" in r:
        entry |= {
            "max_replans": r["mpc_config"]["replans"],
            "execute": r["mpc_config"]["execute"],
            "mean_replans": r["mean_replans"],
            "budget": {k: r[k] for k in ("samples", "topk", "iterations", "horizon", "frameskip")},
        }
    if "episode_success" in r:
        entry["episodes"] = episode_rows(r)
    return entry


def grid_document(
    env: str,
    references: dict[str, dict[str, Any]],
    runs: dict[str, Path],
    grids: dict[str, Grid],
    other_objective: dict[str, dict] | None = None,
    paper_cells: dict[str, dict] | None = None,
    folders: dict[str, dict[tuple, list[str]]] | None = None,
) -> dict[str, Any]:
    """The grid.json document: `references` maps each mode (open loop, fixed, paper) to its simulator
    reference, `runs` each encoder to its base run, `grids` each encoder to {(model, planner, mpc,
    bounded): eval summary}, `other_objective` each encoder to {(planner, mpc): summary} of the base model
    planned with the objective mode that is not the default, `paper_cells` each encoder to {(model,
    planner): summary} of MPC under the paper protocol, `folders` each encoder to {("grid" | "other" |
    "paper", *key): the cell's folders relative to OUT, one per training seed}."""
    placed = folders or {}

    def located(encoder: str, key: tuple, found: dict[str, Any]) -> dict[str, Any]:
        where = placed.get(encoder, {}).get(key)
        if not where:
            return found
        return {**found, "folder": where[0], **({"seed_folders": where} if len(where) > 1 else {})}

    cells = [
        located(encoder, ("grid", *key), cell(encoder, *key, s))
        for encoder, grid in grids.items()
        for key, s in grid.items()
    ]
    cells += [
        located(encoder, ("other", planner, mpc), cell(encoder, "base", planner, mpc, False, s))
        for encoder, extra in (other_objective or {}).items()
        for (planner, mpc), s in extra.items()
    ]
    cells += [
        located(encoder, ("paper", model, planner), cell(encoder, model, planner, True, False, s))
        for encoder, extra in (paper_cells or {}).items()
        for (model, planner), s in extra.items()
    ]
    reference = references["open loop"]
    return document(
        "demo",
        env,
        cells,
        tuning_seed=TUNING_PAIR_SEED,
        reference={k: reference[k] for k in ("method", "success_rate", "mean_final_distance")},
        references={mode: reference_entry(r) for mode, r in references.items()},
        encoders={encoder: encoder_facts(run, encoder) for encoder, run in runs.items()},
    )


def write_grid(
    out: Path,
    env: str,
    references: dict[str, dict[str, Any]],
    runs: dict[str, Path],
    grids: dict[str, Grid],
    other_objective: dict[str, dict] | None = None,
    paper_cells: dict[str, dict] | None = None,
    folders: dict[str, dict[tuple, list[str]]] | None = None,
) -> dict[str, Any]:
    """Write out/grid.json and return its document (grid_document's arguments)."""
    doc = grid_document(env, references, runs, grids, other_objective, paper_cells, folders)
    write_document(out, doc)
    return doc
