"""Study folders made before grid.json: their study_grid.json (grid["seeds"][seed][model][cell] holding the
outcomes, [model]["training"] and [model]["diagnostics"]) converted to grid.json's format 3
(wmplan.experiments.results), on reading (`read_results`) or into a grid.json beside it
(`convert_study_folder`). A converted study's cells hold what the old file kept (the outcomes, the protocol,
the time); what it did not keep is null.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wmplan.experiments.results import GRID_FILE, OLD_STUDY_GRID, STUDY_SPEC, read_json, study_document, write_document
from wmplan.models.run_folder import NO_RUN_RECORD

if TYPE_CHECKING:
    from wmplan.experiments.study import StudySpec


def convert_study_folder(folder: str | Path) -> Path:
    """Write grid.json beside a study's study_grid.json (which is kept); returns its path. Refused where
    grid.json exists already: nothing written is replaced."""
    folder = Path(folder)
    if (folder / GRID_FILE).exists():
        raise ValueError(f"{folder} already holds {GRID_FILE}; there is nothing to convert")
    if not (folder / OLD_STUDY_GRID).exists():
        raise FileNotFoundError(f"{folder} holds no {OLD_STUDY_GRID}; give a study folder made before {GRID_FILE}")
    return write_document(folder, converted_study(folder))


def converted_study(folder: Path) -> dict[str, Any]:
    from wmplan.experiments.study import StudySpec

    if not (folder / STUDY_SPEC).exists():
        raise FileNotFoundError(f"{folder} holds {OLD_STUDY_GRID} but no {STUDY_SPEC}, which says what it studied")
    return convert_study_grid(read_json(folder / OLD_STUDY_GRID), StudySpec(**read_json(folder / STUDY_SPEC)))


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
