"""Adoption by record: start a grid (experiments.runner) with what another grid's folder already made, rather
than making it again (`wmplan study --from-demo DIR`): its dataset, every run whose stored config is one the
spec asks for, and every cell of such a run that the other grid finished with the very eval the spec asks.

Nothing is taken on trust:
- the dataset only when it holds the task, episodes and collector seed the spec asks for (else refused);
- a base run when its stored config equals, key for key, the one the spec would train (MAY_DIFFER aside);
- a finetuned run only beside the run its parent was adopted from (every grid keeps a run's finetunings
  in the same folder as it), under the same rule;
- a cell when its cell.json record is the spec's and it was planned by the run as it is (the one rule of
  experiments.cell_folder);
- never over a run this grid made itself (one in OUT not listed as adopted): neither it, nor its
  finetunings and cells, which would be of another model.
What is adopted is copied into OUT, listed in OUT/adopted.json (after every run: a kill between copies must
not leave an adopted run looking like the grid's own) and named in the report; the rest the grid makes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from wmplan.config import RunConfig, stored_settings
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.experiments.cell_folder import cell_record, finished_cell
from wmplan.experiments.runner import DATA, EVAL, RUNS, BaseRun, GridSpec, base_config
from wmplan.models.run_folder import RunFolder
from wmplan.training.finetune import finetune_config
from wmplan.training.trainer import config_differences

MAY_DIFFER = ("train.device", "data.path", "finetune.parent")
"""Config keys that name where a run was made, not what it is."""
LISTING = "adopted.json"


def adopt_grid(source: Path, spec: GridSpec, out: Path, device: str) -> list[str]:
    """Copy into `out` what the grid folder `source` made that the grid `spec` (on `device`) would make too
    (the module's rules); returns the copied paths, relative to `out`."""
    _check_data(source, spec)
    out.mkdir(parents=True, exist_ok=True)
    listing = out / LISTING
    before = json.loads(listing.read_text())["adopted"] if listing.exists() else []
    adopted: list[str] = []

    def record() -> None:  # "demo": the key the study's report reads the source from
        found = {"demo": str(source.resolve()), "adopted": sorted({*before, *adopted})}
        listing.write_text(json.dumps(found, indent=2))

    if not (out / DATA).exists():
        shutil.copytree(source / DATA, out / DATA)
        adopted.append(DATA)
    stored = _stored_configs(source / RUNS)
    expected: dict[str, RunConfig] = {}
    origin: dict[str, Path] = {}  # a run of the spec -> the source's run it was adopted from
    for run in spec.runs:
        own = Path(RUNS) / run.name
        if (out / own).exists() and str(own) not in before:
            continue  # made by this grid itself
        if isinstance(run, BaseRun):
            cfg, candidates = base_config(spec, run, out, device), list(stored)
        elif run.parent in origin:
            parent = origin[run.parent]
            overrides = {"train.device": device, **run.overrides}
            cfg = finetune_config(expected[run.parent], parent, run.method, overrides, preset=None)
            candidates = [f for f in stored if f.parent == parent.parent and f != parent]
        else:
            continue  # its parent is not adopted: it is the grid's to make
        match = next((f for f in candidates if not _differences(stored[f], cfg)), None)
        if match is None:
            continue
        expected[run.name], origin[run.name] = cfg, match
        adopted += _copy(match, out, own)
        fingerprint = RunFolder(match).state().fingerprint
        for cell in spec.cells.get(run.name, ()):
            where = source / EVAL / match.relative_to(source / RUNS) / cell.name
            if _finished_alike(where, cell_record(spec.eval_config(cell)), fingerprint):
                adopted += _copy(where, out, Path(EVAL) / run.name / cell.name)
        record()
    record()
    return adopted


def _check_data(source: Path, spec: GridSpec) -> None:
    """Refuse a source whose dataset is not the one the spec makes, naming both."""
    try:
        store = TrajectoryStore.open(source / DATA)
    except DatasetError as exc:
        raise ValueError(
            f"{source} holds no grid's dataset ({exc}); give the --out folder of a finished grid"
        ) from None
    found = {"env": store.attrs.get("task"), "seed": store.attrs["collector"]["seed"], "episodes": store.n_episodes}
    wanted = {"env": spec.env, "seed": spec.data_seed, "episodes": spec.collect_episodes}
    if found != wanted:
        raise ValueError(f"{source} was made on other data ({found}; this grid needs {wanted}); nothing was adopted")


def _stored_configs(runs: Path) -> dict[Path, dict[str, Any]]:
    """Every run folder under `runs` -> its stored config; not a run's checkpoints (hidden folders inside it)
    nor an interrupted finetuning (<name>.partial)."""
    return {
        found.parent: json.loads(found.read_text())["config"]
        for found in sorted(runs.rglob("config.json"))
        if not any(p.startswith(".") or p.endswith(".partial") for p in found.parent.relative_to(runs).parts)
    }


def _differences(stored: dict[str, Any], asked: RunConfig) -> list[str]:
    """Keys in which a stored config differs from `asked` (MAY_DIFFER aside)."""
    return [k for k in config_differences(stored_settings(stored), asked.to_dict()) if k not in MAY_DIFFER]


def _finished_alike(folder: Path, wanted: dict[str, Any], fingerprint: str) -> bool:
    """Whether the source finished in `folder` the cell the grid wants (experiments.cell_folder's rule: the
    same eval, planned by the run as it is); a cell of other settings is the grid's to plan."""
    try:
        return finished_cell(folder, wanted, fingerprint, say=False) is not None
    except ValueError:
        return False


def _copy(source: Path, out: Path, target: Path) -> list[str]:
    if (out / target).exists():
        return []
    partial = out / target.with_name(target.name + ".partial")  # a kill mid-copy leaves no half folder
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    partial.rename(out / target)
    return [str(target)]
