"""grid.json: the one result format of every grid (`wmplan demo`, `wmplan study`, `wmplan sweep`), and its
typed reader. Every number is as the grid measured it; a reference is planning in the simulator itself.

Format 3 (a reader of format 2 finds every key it knew where it was):
    {"format": 3, "kind": "demo" | "study" | "sweep", "task": str,
     "cells": [{"encoder", "model" (base | online | adversarial; the study: its setting, e.g.
                adversarial_e3_x1), "planner", "mpc", "protocol" (fixed | paper), "mpc_execute" (model steps
                executed per plan; null open loop), "max_replans", "mean_replans", "bounded", "objective",
                "success_rate", "ci95", "mean_final_distance", "seconds_per_plan", "pair_seed",
                "run_fingerprint", "run_epoch", "run_epochs", "run_finished" (the run that planned,
                models.run_folder.RunState), "episodes": [{"pair", "success", "reached", "final_distance",
                "replans" (, "train_seed")}, ...], "folder" (the cell's eval folder relative to OUT; its
                name is the cell's name, experiments.cells), "train_seed" (where the cell is one training
                seed's: the study's)}, ...],
     demo:  "tuning_seed" (pairs the task's defaults were chosen on),
            "reference": {"method", "success_rate", "mean_final_distance"} (open loop, as in format 1),
            "references": {"open loop" | "fixed" | "paper": {"method", "protocol", "success_rate", "ci95",
                           "mean_final_distance", "max_replans", "execute", "mean_replans", "pair_seed",
                           "episodes": [...]}},
            "encoders": {name: {"pixels": bool, "latent_distance_spearman": float | null, "val_loss": float,
                                "copy_last_loss": float}}
     sweep: "spec" (the sweep's spec less how its cells ran), and per cell "seed" (its pair seed)
     study: "spec" (study.json), "protocols", "episodes" (pairs per cell), "pair_seed", "train_seeds" (the
            finished seeds, in order), "models": {name: {seed: {"training": {"train_loss", "val_loss"
            (, "online_loss")}, "diagnostics": {"gap_expert_error", "gap_planner_error", "gap_ratio",
            "roughness", "basin_width"}}}}}
`episodes` lists one entry per pair and training seed, so every paired test of a report can be recomputed
from this file. A demo with several training seeds (`wmplan demo --seeds`) pools each cell over them: it adds
"train_seeds", "seed_success_rates", "seed_final_distances" and "seed_folders" (one per seed; "folder" is the
first), and the encoder facts are the first seed's base model's (`val_loss`, `copy_last_loss`: its final
validation loss and the loss of copying the last frame on the same windows).

Older files still read: a demo's grid.json of format 1 (no per-episode outcomes) or 2 (kind demo, no
folders), and a study folder holding study_grid.json instead (converted on reading, experiments.legacy_results,
whose `convert_study_folder` writes the converted grid.json beside it). A converted study's cells hold what the
old file kept (the outcomes, the protocol, the time); what it did not keep is null.

Example:
    >>> results = read_results("results/study/wall")  # doctest: +SKIP
    >>> results.success("adversarial_e3_x1", "adam_mpc")  # every seed's episodes, seed after seed  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wmplan.defaults import TUNING_PAIR_SEED
from wmplan.evaluation.protocols import cell_protocol
from wmplan.evaluation.report import Grid
from wmplan.evaluation.summary import EvalSummary, seed_spread
from wmplan.models.encoder_registry import encoder_entry
from wmplan.models.run_folder import NO_RUN_RECORD, RunFolder
from wmplan.writing import atomic_write

if TYPE_CHECKING:
    from wmplan.experiments.study import StudySpec

FORMAT = 3
GRID_FILE, OLD_STUDY_GRID, STUDY_SPEC = "grid.json", "study_grid.json", "study.json"
KINDS = ("demo", "study", "sweep")


def document(kind: str, task: str, cells: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A grid.json document of `kind` with the kind's own top-level `fields` (the module's docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown grid kind {kind!r}; choose one of {', '.join(KINDS)}")
    return {"format": FORMAT, "kind": kind, "task": task, **fields, "cells": cells}


def write_document(out: Path, doc: dict[str, Any]) -> Path:
    """Write out/grid.json atomically (a kill leaves the previous one whole); returns its path."""
    path = Path(out) / GRID_FILE
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))
    return path


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


@dataclass(frozen=True)
class CellResult:
    """One cell of a grid: the names a report selects it by, its per-episode outcomes, the whole record."""

    model: str
    name: str
    """The cell's name (its folder's name, experiments.cells): adam_mpc, adam_mpc_paper, adam_open_seed99."""
    protocol: str
    train_seed: int | None
    """The training seed of the cell's models where the cell is one seed's, else None."""
    success: tuple[bool, ...]
    final_distance: tuple[float, ...]
    record: dict[str, Any]
    """The cell as grid.json holds it."""


@dataclass(frozen=True)
class ModelSide:
    """What a study keeps of one model of one seed besides its cells."""

    training: dict[str, float]
    diagnostics: dict[str, float] | None


@dataclass
class GridResults:
    """A grid.json read back (read_results, from_document): its cells and, for a study, each model's
    training side and diagnostics per training seed."""

    kind: str
    task: str
    cells: list[CellResult]
    train_seeds: list[int]
    """The training seeds, in order (a study: those finished; otherwise those the cells name)."""
    models: dict[str, dict[int, ModelSide]]
    """A study's models: name -> training seed -> its side (empty for a demo or a sweep)."""
    protocols: list[str]
    episodes: int | None
    """Pairs per cell where the grid records it (a study)."""
    document: dict[str, Any]

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> GridResults:
        fmt = doc.get("format", 1)
        if not isinstance(fmt, int) or fmt > FORMAT:
            raise ValueError(f"grid.json of format {fmt!r}: this wmplan reads formats 1 to {FORMAT}; upgrade wmplan")
        kind = doc.get("kind", "demo")  # formats 1 and 2 were the demo's only
        cells = [_cell_result(c) for c in doc["cells"]]
        seeds = doc.get("train_seeds") or sorted({c.train_seed for c in cells if c.train_seed is not None})
        models = {
            name: {
                int(seed): ModelSide(dict(side["training"]), side.get("diagnostics")) for seed, side in by_seed.items()
            }
            for name, by_seed in doc.get("models", {}).items()
        }
        protocols = doc.get("protocols") or list(dict.fromkeys(c.protocol for c in cells))
        return cls(kind, doc["task"], cells, list(seeds), models, protocols, doc.get("episodes"), doc)

    def model_names(self) -> list[str]:
        """The models in the grid's order (a study: base first, then its settings)."""
        return list(self.models) or list(dict.fromkeys(c.model for c in self.cells))

    def cells_of(self, model: str, name: str, protocol: str | None = None) -> list[CellResult]:
        """The cells of `model` named `name` (under `protocol` where given), in training-seed order; a
        KeyError naming what is missing when there is none."""
        found = [c for c in self.cells if (c.model, c.name) == (model, name) and protocol in (None, c.protocol)]
        if not found:
            raise KeyError(f"grid has no cell {name!r} of model {model!r}" + (f" under {protocol}" if protocol else ""))
        order = {seed: i for i, seed in enumerate(self.train_seeds)}
        return sorted(found, key=lambda c: order.get(c.train_seed, -1) if c.train_seed is not None else -1)

    def success(self, model: str, name: str, protocol: str | None = None) -> np.ndarray:
        """Per-episode success of the cell, pooled over the training seeds, seed after seed (the layout of
        evaluation.summary.pool_over_seeds, so paired tests pair each (seed, pair) with itself)."""
        return np.concatenate([np.asarray(c.success, bool) for c in self.cells_of(model, name, protocol)])

    def seed_rates(self, model: str, name: str, protocol: str | None = None) -> list[float]:
        """The cell's success rate of each training seed on its own, in seed order."""
        rates: list[float] = []
        for c in self.cells_of(model, name, protocol):
            pooled = c.record.get("seed_success_rates")
            rates += [float(r) for r in pooled] if pooled else [float(np.mean(c.success))]
        return rates

    def training(self, model: str) -> list[dict[str, float]]:
        """A study model's training side of each training seed, in seed order."""
        return [self.models[model][seed].training for seed in self.train_seeds]

    def diagnostics(self, model: str) -> list[dict[str, float] | None]:
        """A study model's diagnostics of each training seed (None where not measured yet), in seed order."""
        return [self.models[model][seed].diagnostics for seed in self.train_seeds]


def _cell_result(record: dict[str, Any]) -> CellResult:
    from wmplan.evaluation.protocols import Mode
    from wmplan.experiments.cells import Cell

    protocol = record.get("protocol") or "fixed"  # format 1 cells were planned under the fixed protocol
    folder = record.get("folder")
    name = (
        Path(folder).name
        if folder
        else Cell(record["planner"], Mode(record["mpc"], record.get("bounded", False)), protocol).name
    )
    episodes = record.get("episodes") or []
    return CellResult(
        model=record["model"],
        name=name,
        protocol=protocol,
        train_seed=record.get("train_seed"),
        success=tuple(bool(e["success"]) for e in episodes),
        final_distance=tuple(float(e["final_distance"]) for e in episodes),
        record=record,
    )


def read_results(folder: str | Path) -> GridResults:
    """The grid in `folder`: its grid.json, else (a study made before grid.json) its study_grid.json
    converted on reading. A FileNotFoundError naming the folder when it holds neither."""
    folder = Path(folder)
    if (folder / GRID_FILE).exists():
        return GridResults.from_document(read_json(folder / GRID_FILE))
    if (folder / OLD_STUDY_GRID).exists():
        from wmplan.experiments.legacy_results import converted_study

        return GridResults.from_document(converted_study(folder))
    raise FileNotFoundError(
        f"{folder} holds no {GRID_FILE} (nor a study's {OLD_STUDY_GRID}); give the --out folder of a demo, "
        "study or sweep that finished"
    )


def study_document(
    spec: StudySpec, pair_seed: int, protocols: list[str], cells: list[dict[str, Any]], models: dict[str, Any]
) -> dict[str, Any]:
    """A study's grid.json: `cells` (each one seed's), `models` {name: {seed: {"training", "diagnostics"}}}."""
    seeds = [int(s) for s in next(iter(models.values()), {})]
    return document(
        "study",
        spec.env,
        cells,
        spec=dataclasses.asdict(spec),
        protocols=list(protocols),
        episodes=spec.episodes,
        pair_seed=pair_seed,
        train_seeds=seeds,
        models=models,
    )


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it or rerun the grid that wrote it") from None
