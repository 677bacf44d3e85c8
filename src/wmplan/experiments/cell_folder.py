"""An eval cell's folder, as every grid (demo, study, sweep) writes and trusts it: the one rule for when a
cell is finished, and the one way to plan it.

    <cell>/cell.json       what the cell is: the grid's names for it and its whole EvalConfig (written first)
    <cell>/episodes.jsonl  the eval's per-episode lines (wmplan.evaluation.episodes)
    <cell>/summary.json    the eval's summary (written last, by a rename)

A cell is finished when its cell.json says what is asked now, its summary.json reads, and that summary
was planned by the run as it is now (its fingerprint, models.run_folder.RunState): a cell of a run retrained
since is planned again, and a line on stderr says so. A folder whose cell.json says something else, or that
holds a summary.json without a cell.json (a `wmplan eval` of its own, or a grid written before cells
recorded themselves), is refused naming the folder and never overwritten.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.summary import EvalSummary, planned_by
from wmplan.training.trainer import config_differences
from wmplan.writing import atomic_write, remove_stray_files

CELL_FILE, SUMMARY_FILE = "cell.json", "summary.json"


def cell_record(cfg: EvalConfig, **about: Any) -> dict[str, Any]:
    """cell.json's content: `about` (the grid's names for the cell, e.g. its model) and the cell's whole
    eval, as JSON reads it back."""
    return json.loads(json.dumps({**about, "eval": dataclasses.asdict(cfg)}))


def finished_cell(
    folder: Path, record: dict[str, Any], fingerprint: str | None = None, say: bool = True
) -> EvalSummary | None:
    """The summary of the cell `record` finished in `folder` by the run whose fingerprint is now
    `fingerprint` (None: any run), else None (not planned yet, interrupted, or planned by the run before a
    retraining: then, if `say`, a line on stderr says it is planned again). A ValueError when the folder
    holds another cell or an eval no grid wrote."""
    summary, stored = folder / SUMMARY_FILE, folder / CELL_FILE
    if not stored.exists():
        if summary.exists():
            raise ValueError(
                f"{folder} holds a summary.json without a {CELL_FILE} (a `wmplan eval` of its own, or a grid written "
                "by an earlier version): no grid plans over it. Move it away, or choose another --out (a demo: "
                "--overwrite)"
            )
        return None
    try:
        previous = json.loads(stored.read_text())
    except json.JSONDecodeError:
        return None  # cell.json is written atomically; unreadable means written by something else: redo
    if previous != record:
        raise ValueError(
            f"{folder} was planned with other settings ({_difference(previous, record)}); choose another --out, "
            "or delete that folder to replan it"
        )
    if not summary.exists():
        return None
    try:
        planned: EvalSummary = json.loads(summary.read_text())
    except json.JSONDecodeError:
        return None  # summary.json is written atomically: unreadable means damaged since, so plan it again
    return planned if fingerprint is None or planned_by(planned, fingerprint, folder, say) else None


def plan_cell(
    run: str | Path, cfg: EvalConfig, folder: Path, record: dict[str, Any], device: str, progress: bool
) -> EvalSummary:
    """Plan the cell into `folder`: cell.json first, then the eval (whose summary.json comes last)."""
    from wmplan.evaluation.episodes import evaluate  # the planners' import chain, only where a cell is planned

    folder.mkdir(parents=True, exist_ok=True)
    remove_stray_files(folder)  # temp files of a killed writer
    atomic_write(folder / CELL_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))
    return evaluate(run, cfg, folder, progress=progress, device=device)


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first setting in which two cell records differ, in words (trainer.config_differences finds it)."""

    def at(record: dict[str, Any], key: str) -> Any:
        for part in key.split("."):
            record = record.get(part) if isinstance(record, dict) else None  # type: ignore[assignment]
        return record

    keys = config_differences(old, new)
    return f"{keys[0]} was {at(old, keys[0])!r}, now {at(new, keys[0])!r}" if keys else "no difference"
