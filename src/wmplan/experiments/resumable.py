"""Steps of the long jobs (`wmplan demo --resume`, `wmplan study`) that a rerun skips once finished, so a
job killed after hours redoes only the step the kill interrupted.

When a step counts as finished:
- a dataset: it opens, and holds the episodes of the task and collect seed asked for;
- a simulator reference: its summary.json is there (a resumed demo asks the same as the killed one);
- a base run: its config.json is there (the trainer resumes from its last checkpoint, and refuses a
  config that differs);
- a finetuned run: its folder is there. It is written to <name>.partial and renamed when complete, so a
  leftover .partial is an interrupted one, resumed from its last checkpoint (redone from its parent when
  it has none);
- an eval cell: by the rule of every grid (wmplan.experiments.cell_folder): its cell.json says the same
  eval, its summary.json (written last) reads, and it was planned by the run as it is now (the run's
  fingerprint): a cell of a run retrained since is planned again, and a line on stderr says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from wmplan.config import RunConfig
from wmplan.data.collect import collect
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.evaluation.eval_config import EvalConfig
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.cell_folder import cell_record
from wmplan.experiments.cell_jobs import CellJob, do_cells, pooled
from wmplan.experiments.sim_reference import simulator_reference
from wmplan.training.finetune import finetune
from wmplan.training.trainer import resume_conflicts, train
from wmplan.writing import MANIFEST, OutputError, checkpoint_source


def dataset_once(path: Path, env: str, episodes: int, seed: int, progress: bool) -> TrajectoryStore:
    """The dataset at `path` when it is the one asked for, else a fresh collection there."""
    if path.exists():
        try:
            store = TrajectoryStore.open(path, task=env)
        except DatasetError:
            store = None  # an interrupted collection: collected again below
        if store is not None and store.n_episodes == episodes and store.attrs["collector"]["seed"] == seed:
            return store
    return collect(env, path, episodes=episodes, seed=seed, overwrite=path.exists(), progress=progress)


def reference_once(resume: bool, env: str, out: Path, **settings: Any) -> dict[str, Any]:
    """The simulator reference `simulator_reference(env, out, **settings)`, or with `resume` the one an
    earlier run finished in `out` (its summary.json is written last). A resumed demo asks what the killed
    one asked (demo.json), so its references are the same."""
    done = out / "summary.json"
    if resume and done.exists():
        return json.loads(done.read_text())
    return simulator_reference(env, out, **settings)


def train_once(cfg: RunConfig, out: Path, progress: bool) -> None:
    """Train a base run into `out`, or resume it from its last checkpoint; a finished run is left as it is,
    without loading the dataset (which alone took two minutes of a resumed demo)."""
    if finished_run(cfg, out):
        return
    started = (out / "config.json").exists() and (out / "trainer_state.pt").exists()
    if (out / "config.json").exists() and not started:
        shutil.rmtree(out)  # killed before its first checkpoint: nothing to resume from
    train(cfg, out, resume=started, progress=progress)


def finished_run(cfg: RunConfig, out: Path) -> bool:
    """Whether `out` holds an intact checkpoint of its last epoch under the config asked for (the keys a
    resume may change aside, train.epochs compared by the epoch reached). Anything else, a torn checkpoint
    included, goes to `train`, which restores, checks and resumes."""
    try:
        if checkpoint_source(out) != out:
            return False
        epoch = json.loads((out / MANIFEST).read_text())["epoch"]
        stored = json.loads((out / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError, OutputError):
        return False
    return not resume_conflicts(stored, cfg) and epoch + 1 >= cfg.train.epochs


def finetune_once(parent: Path, target: Path, method: str, overrides: dict[str, Any], progress: bool) -> None:
    """Finetune `parent` into `target` unless `target` is already there."""
    if target.exists():
        return
    partial = target.with_name(target.name + ".partial")
    started = (partial / "config.json").exists() and (partial / "trainer_state.pt").exists()
    if not started:
        shutil.rmtree(partial, ignore_errors=True)  # killed before its first checkpoint: redone from its parent
    finetune(parent, partial, method, overrides, preset=None, progress=progress, resume=started)
    partial.rename(target)


def evaluate_cells(
    jobs: dict[Any, tuple[Path, EvalConfig, Path]], workers: int, progress: bool, device: str
) -> dict[Any, EvalSummary]:
    """Every job's (run, cfg, where) cell, keyed as `jobs`, by experiments.cell_jobs: in this process on every
    thread, or in a pool of `workers` one-thread processes, each on its own GPU where there are several (a bar
    counts the finished cells)."""
    from tqdm.auto import tqdm

    cells = {
        str(where): (key, CellJob(run, str(where), cfg, where, cell_record(cfg), None))
        for key, (run, cfg, where) in jobs.items()
    }
    found = {}
    shown = progress and pooled(workers, len(jobs))
    with tqdm(total=len(jobs), desc=f"eval cells, {workers} workers", unit="cell", disable=not shown) as bar:
        for name, _, summary in do_cells([job for _, job in cells.values()], workers, device, progress):
            assert summary is not None  # "busy" only where cells are claimed
            found[cells[name][0]] = summary
            bar.update(1)
    return found
