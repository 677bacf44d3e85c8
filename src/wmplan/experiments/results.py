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
folders), and a study folder holding study_grid.json instead (converted on reading by `convert_study_grid`;
`convert_study_folder` writes the converted grid.json beside it). A converted study's cells hold what the
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

from wmplan.models.run_folder import NO_RUN_RECORD
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
        return GridResults.from_document(_read_json(folder / GRID_FILE))
    if (folder / OLD_STUDY_GRID).exists():
        return GridResults.from_document(_converted(folder))
    raise FileNotFoundError(
        f"{folder} holds no {GRID_FILE} (nor a study's {OLD_STUDY_GRID}); give the --out folder of a demo, "
        "study or sweep that finished"
    )


def convert_study_folder(folder: str | Path) -> Path:
    """Write grid.json beside a study's study_grid.json (which is kept); returns its path. Refused where
    grid.json exists already: nothing written is replaced."""
    folder = Path(folder)
    if (folder / GRID_FILE).exists():
        raise ValueError(f"{folder} already holds {GRID_FILE}; there is nothing to convert")
    if not (folder / OLD_STUDY_GRID).exists():
        raise FileNotFoundError(f"{folder} holds no {OLD_STUDY_GRID}; give a study folder made before {GRID_FILE}")
    return write_document(folder, _converted(folder))


def _converted(folder: Path) -> dict[str, Any]:
    from wmplan.experiments.study import StudySpec

    if not (folder / STUDY_SPEC).exists():
        raise FileNotFoundError(f"{folder} holds {OLD_STUDY_GRID} but no {STUDY_SPEC}, which says what it studied")
    return convert_study_grid(_read_json(folder / OLD_STUDY_GRID), StudySpec(**_read_json(folder / STUDY_SPEC)))


def convert_study_grid(old: dict[str, Any], spec: StudySpec) -> dict[str, Any]:
    """The format-3 document of a study_grid.json (grid["seeds"][seed][model][cell] holding the outcomes,
    [model]["training"] and [model]["diagnostics"]) of the study `spec`. A cell name the study does not plan
    is refused, naming it."""
    from wmplan.experiments.study import study_cells

    protocols = old.get("protocols", ["fixed"])  # a grid written before protocols were recorded: fixed
    known = {c.name: c for c in study_cells(dataclasses.replace(spec, protocols=protocols))}
    cells: list[dict[str, Any]] = []
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for seed, by_model in old["seeds"].items():
        for model, found in by_model.items():
            models.setdefault(model, {})[seed] = {
                "training": found["training"],
                "diagnostics": found.get("diagnostics"),
            }
            for name, outcome in found.items():
                if name in ("training", "diagnostics"):
                    continue
                if name not in known:
                    raise ValueError(f"study_grid.json: cell {name!r} is none of the study's ({', '.join(known)})")
                cell = known[name]
                cells.append(
                    _converted_cell(spec, model, int(seed), f"eval/seed{seed}/{model}/{name}", cell, outcome, old)
                )
    return study_document(spec, old.get("pair_seed", spec.pair_seed), protocols, cells, models)


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


def _converted_cell(
    spec: StudySpec, model: str, seed: int, folder: str, cell: Any, outcome: dict[str, Any], old: dict[str, Any]
) -> dict[str, Any]:
    """One cell of a converted study grid: what study_grid.json kept, null for what it did not."""
    success, distance = outcome["success"], outcome["final_distance"]
    columns = {"success": success, "reached": outcome.get("reached"), "final_distance": distance}
    columns["replans"] = outcome.get("replans")
    episodes = [
        {"pair": i, **{key: values[i] for key, values in columns.items() if values is not None}}
        for i in range(len(success))
    ]
    unknown = ("mpc_execute", "max_replans", "mean_replans", "objective", "ci95", *NO_RUN_RECORD)
    return {
        "encoder": spec.encoder,
        "model": model,
        "planner": cell.planner,
        "mpc": cell.mode.mpc,
        "protocol": outcome.get("protocol", cell.protocol),
        "bounded": cell.mode.bounded,
        **dict.fromkeys(unknown),
        "success_rate": float(np.mean(success)),
        "mean_final_distance": float(np.mean(distance)),
        "seconds_per_plan": outcome.get("seconds_per_plan"),
        "pair_seed": old.get("pair_seed", spec.pair_seed),
        "episodes": episodes,
        "folder": folder,
        "train_seed": seed,
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it or rerun the grid that wrote it") from None
