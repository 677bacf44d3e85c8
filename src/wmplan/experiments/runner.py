"""The one grid engine under `wmplan demo` and `wmplan study`: a GridSpec says what a grid makes (one
dataset, base runs per encoder and training seed, finetuned runs naming their parent and recipe, the cells
each run is planned in), and `run_grid` makes it, skipping whatever an earlier call finished:

    OUT/data/                   the dataset (made once; kept when it holds the episodes asked for)
    OUT/runs/<run>/             each run, named by its path (the demo: <encoder>[/seed<k>]/<model>; the study:
                                seed<k>/<setting>)
    OUT/eval/<run>/<cell>/      each cell of each run (experiments.cell_folder: cell.json first, summary.json last)

What counts as finished is wmplan.experiments.resumable's rule for each step; a finished base run whose stored
config differs from the one asked is refused naming the first differing key (the trainer's resume check).
The recipes above (demo.py, study.py) build a GridSpec, call run_grid and write their own reports;
`wmplan study --from-demo` fills a grid from another grid's folder first (experiments.adoption).

Example:
    >>> spec = GridSpec("wall", 200, 0, (BaseRun("base", "state", 0, "tiny"),), {"base": (Cell("adam", OPEN),)}, 10)
    >>> summaries = run_grid(spec, "results/grid", progress=False)   # doctest: +SKIP
    >>> summaries[("base", "adam")]["success_rate"]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from wmplan.config import RunConfig, apply_overrides, preset
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.evaluation.eval_config import EvalConfig, MPCSettings, PlannerSettings
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.cells import Cell
from wmplan.experiments.resumable import dataset_once, evaluate_cells, finetune_once, train_once
from wmplan.experiments.workers import check_workers
from wmplan.overrides import apply_dataclass_overrides
from wmplan.tasks import task_names
from wmplan.training.finetune import METHODS

T = TypeVar("T")
DATA, RUNS, EVAL = "data", "runs", "eval"


@dataclass(frozen=True)
class BaseRun:
    """A run trained from scratch on the grid's data: the preset for the task, then `overrides`."""

    name: str
    """Its path under OUT/runs (and its cells' under OUT/eval), e.g. state/seed0/base."""
    encoder: str
    train_seed: int
    preset: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Run settings beyond the preset (the recipe's train.*, model.*): they win over the run's data, seed,
    encoder and device."""


@dataclass(frozen=True)
class FinetunedRun:
    """A run finetuned from another run of the grid (`parent`, trained first) with `method`."""

    name: str
    parent: str
    method: str
    """online or adversarial (training.finetune)."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Finetuning settings (its length, radii); the device is the grid's."""


Run = BaseRun | FinetunedRun


@dataclass(frozen=True)
class GridSpec:
    """What a grid makes; every field is checked when it is built, before anything is written."""

    env: str
    collect_episodes: int
    """Episodes of the grid's one dataset."""
    data_seed: int
    """The collector's seed."""
    runs: tuple[Run, ...]
    """Every run, each parent before its finetunings."""
    cells: Mapping[str, tuple[Cell, ...]]
    """Run name -> the cells it is planned in (names distinct within a run: they name folders)."""
    episodes: int
    """Start/goal pairs per cell."""
    pair_seed: int = REPORT_PAIR_SEED
    """The seed of every cell's pairs."""
    planner: Mapping[str, Any] = field(default_factory=dict)
    """planner.<field> settings of every cell."""
    mpc: Mapping[str, Any] = field(default_factory=dict)
    """mpc.<field> settings of every cell."""

    def __post_init__(self) -> None:
        if self.env not in task_names():
            raise ValueError(f"GridSpec env: unknown task {self.env!r}; choose one of {', '.join(task_names())}")
        for key in ("collect_episodes", "episodes"):
            if getattr(self, key) < 1:
                raise ValueError(f"GridSpec {key}: give at least 1, got {getattr(self, key)}")
        _check_runs(self.env, self.runs)
        for key, settings in (("planner", PlannerSettings()), ("mpc", MPCSettings())):
            try:
                apply_dataclass_overrides(settings, dict(getattr(self, key)), key)
            except ValueError as exc:
                raise ValueError(f"GridSpec {key}: {exc}") from None
        names = [run.name for run in self.runs]
        unknown = sorted(set(self.cells) - set(names))
        if unknown:
            raise ValueError(f"GridSpec cells: {unknown} name no run of the spec (its runs: {', '.join(names)})")
        for run, cells in self.cells.items():
            twice = sorted({c.name for c in cells if [d.name for d in cells].count(c.name) > 1})
            if twice:
                raise ValueError(f"GridSpec cells: run {run} lists the cells {twice} twice; list each once")
            for cell in cells:
                if cell.pair_seed != self.pair_seed:
                    raise ValueError(
                        f"GridSpec cells: {run}'s cell {cell.name} plans pairs of seed {cell.pair_seed}, the spec's "
                        f"pair_seed is {self.pair_seed}; give every cell the spec's"
                    )
                self.eval_config(cell)  # settings that do not apply to the cell, before any work

    def eval_config(self, cell: Cell) -> EvalConfig:
        """The eval of one of the grid's cells: its own settings, the grid's pairs and planner/mpc settings."""
        return cell.eval_config(self.episodes, self.planner, self.mpc)

    def run(self, name: str) -> Run:
        return next(run for run in self.runs if run.name == name)

    def base_of(self, name: str) -> BaseRun:
        """The base run at the root of `name`'s lineage."""
        run = self.run(name)
        return run if isinstance(run, BaseRun) else self.base_of(run.parent)


def _check_runs(env: str, runs: tuple[Run, ...]) -> None:
    """Runs named once by a relative path, each finetuning of an earlier run by a known method, each base's
    settings known keys (apply_overrides names an unknown one)."""
    if not runs:
        raise ValueError("GridSpec runs: give at least one run")
    seen: list[str] = []
    for run in runs:
        path = PurePosixPath(run.name)
        if not run.name or path.is_absolute() or ".." in path.parts or run.name in seen:
            raise ValueError(
                f"GridSpec runs: run name {run.name!r} must be a relative folder path without '..', named once"
            )
        if isinstance(run, FinetunedRun):
            if run.parent not in seen:
                raise ValueError(
                    f"GridSpec runs: {run.name} finetunes {run.parent!r}, which is no earlier run of the spec; "
                    "list each parent before its finetunings"
                )
            if run.method not in METHODS:
                raise ValueError(
                    f"GridSpec runs: {run.name}'s method {run.method!r}; choose one of {', '.join(METHODS)}"
                )
        else:
            try:
                apply_overrides(preset(run.preset, env), dict(run.overrides))
            except ValueError as exc:
                raise ValueError(f"GridSpec runs: base run {run.name}: {exc}") from None
        seen.append(run.name)


def base_config(spec: GridSpec, run: BaseRun, out: Path, device: str) -> RunConfig:
    """The config a base run of the grid in `out` is trained with: the preset for the task, its data, seed,
    encoder and device, then the run's overrides."""
    placed = {
        "data.path": str(out / DATA),
        "train.seed": run.train_seed,
        "model.encoder.name": run.encoder,
        "train.device": device,
    }
    return apply_overrides(preset(run.preset, spec.env), placed | dict(run.overrides))


def run_folder(out: Path, run: str) -> Path:
    return out / RUNS / run


def cell_folder(out: Path, run: str, cell: Cell) -> Path:
    return out / EVAL / run / cell.name


def run_grid(
    spec: GridSpec,
    out: str | Path,
    *,
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
    clock: Callable[..., Any] | None = None,
) -> dict[tuple[str, str], EvalSummary]:
    """Make the grid `spec` in `out` (the module's layout), resuming what an earlier call finished, and
    return every cell's summary keyed by (run name, cell name). `workers` > 1: the cells are planned by that
    many one-thread processes (wmplan.experiments.workers). `clock(stage, fn, *args)` (e.g. demo.StageClock)
    times each step under the stage names "collect", "<encoder>: train", "<encoder>: finetune <method>" and
    "<encoders>: eval"."""
    check_workers(workers)
    out, timed = Path(out), clock or _untimed
    timed("collect", make_dataset, spec, out, progress)
    for run in spec.runs:
        encoder = spec.base_of(run.name).encoder
        if isinstance(run, BaseRun):
            cfg = base_config(spec, run, out, device)
            timed(f"{encoder}: train", train_once, cfg, run_folder(out, run.name), progress)
        else:
            overrides = {"train.device": device, **run.overrides}
            parent, target = run_folder(out, run.parent), run_folder(out, run.name)
            timed(f"{encoder}: finetune {run.method}", finetune_once, parent, target, run.method, overrides, progress)
    jobs = {
        (run, cell.name): (run_folder(out, run), spec.eval_config(cell), cell_folder(out, run, cell))
        for run, cells in spec.cells.items()
        for cell in cells
    }
    encoders = ", ".join(dict.fromkeys(run.encoder for run in spec.runs if isinstance(run, BaseRun)))
    return timed(f"{encoders}: eval", evaluate_cells, jobs, workers, progress, device)


def make_dataset(spec: GridSpec, out: Path, progress: bool) -> Any:
    """The grid's dataset in OUT/data: kept when it holds the episodes asked for, else collected there."""
    return dataset_once(out / DATA, spec.env, spec.collect_episodes, spec.data_seed, progress)


def _untimed(stage: str, fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
