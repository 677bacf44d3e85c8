"""The end-to-end job behind `make demo`: collect -> train -> finetune both ways -> plan in the
simulator -> gap -> landscape -> report, for the task's pixel encoder (its DemoRecipe) and the privileged-state
(`state`) encoder. A recipe on the grid engine (wmplan.experiments.runner): one GridSpec per encoder
(`demo_spec`), the simulator references, the diagnostics and the report around it.

Everything lands under `out` (default results/demo), which the demo rewrites on each run (with `resume`,
a rerun keeps what a killed run finished; `wmplan demo` first asks for --overwrite or --resume where a demo
is there, wmplan.output_rule.output_folder):
data/, runs/<encoder>/{base,online,adversarial}/, eval/<encoder>/<model>/<planner>[_mpc][_bounded]/,
gap/<encoder>/, landscape/<encoder>/, reference/ (planning in the simulator itself, open loop: the
ceiling; reference_mpc_fixed/ and reference_mpc_paper/ under MPC), eval cells of the paper protocol as
<planner>_mpc_paper/, door_path/<encoder>/ (Wall: the cost along the way out of the wall's local minimum),
efficiency.png, report.md and grid.json (the numbers, machine-readable), demo.json (what was asked: a
resumed run must ask the same) and timings.json (minutes per stage, summed over the processes of a
resumed run). With several training seeds (`wmplan demo --seeds 0,1,2`), runs/ and eval/ hold a seed<k>/
level under each encoder, and the gap and the landscape are measured on the first seed's models.

Example:
    >>> report = run_demo("results/demo", DemoScale(episodes=20))   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from wmplan.evaluation.door_path import door_path_costs
from wmplan.evaluation.eval_config import EvalConfig, MPCSettings, PlannerSettings
from wmplan.evaluation.gap import gap
from wmplan.evaluation.landscape import landscape
from wmplan.evaluation.protocols import MPC, MPC_BOUNDED, OPEN, Mode
from wmplan.evaluation.summary import pool_over_seeds
from wmplan.experiments.cells import Cell
from wmplan.experiments.demo_report import seed_folder, write_report
from wmplan.experiments.results import grid_document, write_document
from wmplan.experiments.resumable import reference_once
from wmplan.experiments.runner import EVAL, BaseRun, FinetunedRun, GridSpec, Run, make_dataset, run_folder, run_grid
from wmplan.experiments.sim_reference import plans_pushes
from wmplan.experiments.workers import check_workers
from wmplan.overrides import apply_dataclass_overrides
from wmplan.planning.objective import objective_mode
from wmplan.tasks import task_spec
from wmplan.training.finetune import length_overrides
from wmplan.training.trainer import config_differences

T = TypeVar("T")

MODELS = ("base", "online", "adversarial")
CELLS = tuple(
    (planner, mode.mpc, mode.bounded)
    for mode, planners in ((OPEN, ("gd", "adam", "cem")), (MPC, ("gd", "adam", "cem")), (MPC_BOUNDED, ("adam", "cem")))
    for planner in planners
)
"""(planner, mpc, bounded) of every model: every planner open loop and MPC, then Adam and CEM MPC with bounded
plans (DemoScale.cells, as demo.json records them)."""

OBJECTIVE_CHECK = (("adam", False), ("cem", False), ("adam", True), ("cem", True))


@dataclass
class DemoScale:
    """What the demo runs; the defaults are Wall's (wmplan.tasks: the NARROW predictor, 6 epochs, 10 epochs
    of adversarial and 200 steps of online finetuning; 90 minutes on one thread of a shared 2-core CPU
    under DINO-WM's Wall rules, CEM's cells most of it); every knob is a `--set` of the ordinary commands."""

    episodes: int = 20
    """Start/goal pairs per cell (the paper: 50, `wmplan demo --full`)."""
    collect_episodes: int = field(default_factory=lambda: task_spec("wall").demo.collect_episodes)
    preset: str = "small"
    train: dict[str, Any] = field(default_factory=lambda: dict(task_spec("wall").demo.train))
    adversarial: dict[str, Any] = field(
        default_factory=lambda: length_overrides("adversarial", task_spec("wall").demo.adversarial_epochs)
    )
    online: dict[str, Any] = field(
        default_factory=lambda: length_overrides("online", task_spec("wall").demo.online_steps)
    )
    planner: dict[str, Any] = field(default_factory=dict)
    """planner.<field> overrides for every cell (empty: the paper's budgets); tests shrink them."""
    mpc: dict[str, Any] = field(default_factory=dict)
    """mpc.<field> overrides (empty: the task's schedule in wmplan.tasks)."""
    gap_windows: int = 50
    """Held-out expert windows of the train-test gap (as many as `wmplan gap`'s default)."""
    landscape_grid: int = 41
    reference_candidates: int = 100
    """Rope, Granular: pushes the simulator reference tries per step (the others run the eval's CEM budget)."""
    encoders: tuple[str, ...] = field(default_factory=lambda: task_spec("wall").demo.encoders)
    cells: tuple[tuple[str, bool, bool], ...] = CELLS
    """(planner, mpc, bounded) cells evaluated for every model."""
    objective_check: tuple[tuple[str, bool], ...] = OBJECTIVE_CHECK
    """(planner, mpc) cells evaluated again on the base model with the other objective mode than the
    task's default (last <-> all), so the report shows what the default choice is worth."""
    paper_protocol: bool = True
    """Also plan every unbounded MPC cell under the paper protocol (DINO-WM's loop, evaluation.protocols)
    and run the simulator reference under both protocols, for the table beside the paper's."""


def demo_scale(env: str, **changes) -> DemoScale:
    """The demo's scale for a task (its recipe in wmplan.tasks), with fields replaced (e.g. episodes=50
    for --full)."""
    recipe = task_spec(env).demo
    scale = DemoScale(
        collect_episodes=recipe.collect_episodes,
        train=dict(recipe.train),
        encoders=recipe.encoders,
        adversarial=length_overrides("adversarial", recipe.adversarial_epochs),
        online=length_overrides("online", recipe.online_steps),
        cells=CELLS if recipe.bounded_cells else tuple(c for c in CELLS if not c[2]),
    )
    return dataclasses.replace(scale, **changes)


QUICK = {
    "episodes": 10,
    "collect_episodes": 200,
    "preset": "tiny",
    "train": {"train.epochs": 2},
    "adversarial": {"train.epochs": 1, "train.steps_per_epoch": 20},
    "online": {"train.epochs": 1, "train.steps_per_epoch": 20, "online.windows": 8},
    "planner": {"steps": 20, "samples": 60, "topk": 6, "iterations": 3},
    "gap_windows": 10,
    "landscape_grid": 11,
}
"""`wmplan demo --preset quick`: every stage of the demo at toy scale (the tiny predictor, 200 episodes, 10
pairs, small planner budgets), minutes on 2 cores. It checks an installation and shows the report's layout;
its numbers say nothing about the methods."""


def other_mode(env: str, mpc: bool) -> str:
    """The objective mode that is not the task's default for open loop (mpc False) or MPC."""
    return "all" if objective_mode(env, mpc) == "last" else "last"


def pool_grids(grids: list[dict], train_seeds: list[int]) -> dict:
    """One grid (any key -> EvalSummary) per training seed -> one grid of summaries pooled over seeds."""
    if len(grids) == 1:
        return grids[0]
    return {key: pool_over_seeds([g[key] for g in grids], train_seeds) for key in grids[0]}


def demo_cells(env: str, scale: DemoScale) -> dict[tuple, tuple[str, Cell]]:
    """(model, cell) of every eval of one model set, keyed as the report reads them: ("grid", model, planner,
    mpc, bounded) for scale.cells, ("other", planner, mpc) for the base model under the other objective mode
    (scale.objective_check) and, with paper_protocol, ("paper", model, planner) for every unbounded MPC cell
    under the paper protocol."""
    modes = [(planner, Mode(mpc, bounded)) for planner, mpc, bounded in scale.cells]
    cells: dict[tuple, tuple[str, Cell]] = {
        ("grid", m, p, mode.mpc, mode.bounded): (m, Cell(p, mode)) for m in MODELS for p, mode in modes
    }
    cells |= {
        ("other", p, mpc): ("base", Cell(p, Mode(mpc), objective=other_mode(env, mpc)))
        for p, mpc in scale.objective_check
    }
    if scale.paper_protocol:
        cells |= {("paper", m, p): (m, Cell(p, MPC, "paper")) for m in MODELS for p, mode in modes if mode == MPC}
    return cells


REFERENCE_FOLDERS = {"open loop": "reference", "fixed": "reference_mpc_fixed", "paper": "reference_mpc_paper"}
"""Where the demo writes the simulator reference of each mode (open loop, MPC under either protocol)."""


def reference_modes(env: str, both_protocols: bool) -> dict[str, str | None]:
    """The simulator references a demo runs: open loop always; MPC under both protocols where the task's
    reference is CEM (not the deformable tasks' greedy pushes) and the demo plans both."""
    if not both_protocols or plans_pushes(env):
        return {"open loop": None}
    return {"open loop": None, "fixed": "fixed", "paper": "paper"}


def run_demo(
    out: str | Path = "results/demo",
    scale: DemoScale | None = None,
    *,
    env: str = "wall",
    seed: int = 0,
    train_seeds: list[int] | None = None,
    progress: bool = True,
    device: str = "auto",
    resume: bool = False,
    workers: int = 1,
) -> str:
    """Run the whole job and return the report's Markdown (also written to out/report.md). Every stage
    runs on `device` (resolve_device: auto is CUDA when present). `seed` seeds the data and the gap's
    windows; `train_seeds` (default: [seed]) trains every model once per seed on that same data, plans
    each on the same pairs, and the report pools the cells over seeds (`pool_over_seeds`). `resume`:
    keep the data, models and eval cells that an earlier run with the same arguments finished in `out`.
    `workers` > 1: plan the eval cells of each encoder in that many one-thread processes at once
    (wmplan.experiments.workers), their files as `OMP_NUM_THREADS=1 wmplan eval` would write them."""
    scale = scale or demo_scale(env)
    train_seeds = list(train_seeds) if train_seeds else [seed]
    if len(set(train_seeds)) != len(train_seeds):
        raise ValueError(f"--seeds lists a seed twice: {train_seeds}")
    check_workers(workers)
    cells = demo_cells(env, scale)
    specs = {e: demo_spec(env, scale, e, seed, train_seeds, cells) for e in scale.encoders}  # checked: before any stage
    out = Path(out)
    asked = {"env": env, "seed": seed, "train_seeds": train_seeds, "scale": dataclasses.asdict(scale)}
    clock = StageClock(out, _start(out, json.loads(json.dumps(asked)), resume))
    job = DemoJob(out, env, scale, clock, device, progress)
    store = clock("collect", make_dataset, specs[scale.encoders[0]], out, progress)
    references = _references(job, resume)
    found: dict[str, dict[str, dict]] = {kind: {} for kind in ("grid", "other", "paper")}
    diagnostics: dict[str, dict] = {}
    folders: dict[str, dict[tuple, list[str]]] = {e: {} for e in scale.encoders}  # each cell's, for grid.json
    for encoder, spec in specs.items():
        done = run_grid(spec, out, workers=workers, device=device, progress=progress, clock=clock)
        per_seed: dict[str, list[dict]] = {kind: [] for kind in found}
        for train_seed in train_seeds:
            runs = {m: demo_run(encoder, m, train_seed, train_seeds) for m in MODELS}
            for kind, grids in per_seed.items():
                grids.append({key[1:]: done[(runs[m], c.name)] for key, (m, c) in cells.items() if key[0] == kind})
            for key, (model, cell) in cells.items():
                folders[encoder].setdefault(key, []).append(f"{EVAL}/{runs[model]}/{cell.name}")
        first = {m: run_folder(out, demo_run(encoder, m, train_seeds[0], train_seeds)) for m in MODELS}
        diagnostics[encoder] = _diagnose(job, encoder, first, seed)  # the gap and the landscape: the first seed's
        for kind, grids in per_seed.items():
            found[kind][encoder] = pool_grids(grids, train_seeds)
    seconds = clock.finish()
    base_runs = {e: run_folder(out, demo_run(e, "base", train_seeds[0], train_seeds)) for e in scale.encoders}
    write_document(
        out, grid_document(env, references, base_runs, found["grid"], found["other"], found["paper"], folders)
    )
    return write_report(
        out,
        env,
        store.summary(),
        found["grid"],
        diagnostics,
        seconds,
        dataclasses.asdict(scale),
        seed,
        references,
        found["other"],
        train_seeds,
        workers,
        found["paper"],
    )


def demo_run(encoder: str, model: str, train_seed: int, train_seeds: list[int]) -> str:
    """A demo run's name (its path under runs/ and eval/): <encoder>/<model>, with several training seeds
    <encoder>/seed<k>/<model>."""
    return seed_folder(Path(encoder), train_seed, train_seeds).joinpath(model).as_posix()


def demo_spec(
    env: str, scale: DemoScale, encoder: str, seed: int, train_seeds: list[int], cells: dict[tuple, tuple[str, Cell]]
) -> GridSpec:
    """The grid of one encoder: its base model per training seed, each finetuned both ways, every model
    planned in its demo_cells."""
    runs: list[Run] = []
    planned: dict[str, tuple[Cell, ...]] = {}
    for train_seed in train_seeds:
        base = demo_run(encoder, "base", train_seed, train_seeds)
        runs.append(BaseRun(base, encoder, train_seed, scale.preset, dict(scale.train)))
        runs += [
            FinetunedRun(demo_run(encoder, m, train_seed, train_seeds), base, m, dict(getattr(scale, m)))
            for m in MODELS[1:]
        ]
        for model in MODELS:
            own = tuple(cell for m, cell in cells.values() if m == model)
            planned[demo_run(encoder, model, train_seed, train_seeds)] = own
    return GridSpec(
        env, scale.collect_episodes, seed, tuple(runs), planned, scale.episodes, planner=scale.planner, mpc=scale.mpc
    )


class StageClock:
    """Seconds per stage of a demo, summed over the processes of a resumed run (`spent`: what earlier ones
    recorded), written to out/timings.json after every stage so that a killed run keeps its minutes."""

    def __init__(self, out: Path, spent: dict[str, float]):
        self.file = out / "timings.json"
        self.seconds = spent
        self.start = time.perf_counter() - spent.get("total", 0.0)

    def __call__(self, stage: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs), its seconds added to `stage`'s."""
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
        self.seconds["total"] = time.perf_counter() - self.start
        self.file.write_text(json.dumps(self.seconds, indent=2))
        return result

    def finish(self) -> dict[str, float]:
        """The seconds per stage with the total last (the last row of the report's timings)."""
        self.seconds.pop("total", None)
        self.seconds["total"] = time.perf_counter() - self.start
        self.file.write_text(json.dumps(self.seconds, indent=2))
        return self.seconds


@dataclass(frozen=True)
class DemoJob:
    """What every stage of one demo run shares: its folder, task, scale, clock, device and progress bars."""

    out: Path
    env: str
    scale: DemoScale
    clock: StageClock
    device: str
    progress: bool


def _references(job: DemoJob, resume: bool) -> dict[str, dict[str, Any]]:
    """The simulator planning for itself on the demo's pairs, per mode (reference_modes): the ceilings."""
    out, env, scale, clock, progress = job.out, job.env, job.scale, job.clock, job.progress
    schedule = MPCSettings()
    apply_dataclass_overrides(schedule, scale.mpc, "mpc")
    mpc = schedule.resolve(env, PlannerSettings().horizon)
    return {
        name: clock(
            "simulator reference",
            reference_once,
            resume,
            env,
            out / REFERENCE_FOLDERS[name],
            episodes=scale.episodes,
            seed=EvalConfig().seed,
            pushes=mpc.replans * mpc.execute,  # as many pushes as an MPC episode executes
            candidates=scale.reference_candidates,
            progress=progress,
            protocol=protocol,
            mpc=schedule,
        )
        for name, protocol in reference_modes(env, scale.paper_protocol).items()
    }


def _diagnose(job: DemoJob, encoder: str, runs: dict[str, Path], seed: int) -> dict[str, Any]:
    """The train-test gap and the cost landscape of one model set (and Wall's door path)."""
    out, scale, clock, device, progress = job.out, job.scale, job.clock, job.device, job.progress
    ordered = [runs[m] for m in MODELS]
    where = {kind: out / kind / encoder for kind in ("gap", "landscape", "door_path")}
    found = {
        "gap": clock(
            f"{encoder}: gap",
            gap,
            ordered,
            where["gap"],
            episodes=scale.gap_windows,
            seed=seed,
            progress=progress,
            device=device,
        ),
        "landscape": clock(
            f"{encoder}: landscape",
            landscape,
            ordered,
            where["landscape"],
            grid=scale.landscape_grid,
            seed=seed,
            progress=progress,
            device=device,
        ),
    }
    if job.env == "wall":  # where a distance-measuring cost traps local planners (evaluation.door_path)
        found["door_path"] = clock(
            f"{encoder}: door path",
            door_path_costs,
            {encoder: runs["base"]},
            where["door_path"],
            episodes=scale.episodes,
        )
    return found


def _start(out: Path, asked: dict[str, Any], resume: bool) -> dict[str, float]:
    """Prepare `out` for a run asking `asked`; returns the stage seconds already spent (resumed runs)."""
    spec = out / "demo.json"
    changed = config_differences(json.loads(spec.read_text()), asked) if resume and spec.exists() else []
    if changed:
        raise ValueError(
            f"--resume: {out} holds a demo run with other arguments ({spec}: {changed[0]} differs); rerun with "
            "those, or drop --resume to start it again"
        )
    # The demo owns its folder: fresh data, references and models each time, unless resuming (a 50-pair PointMaze
    # reference takes half an hour). The gap and the landscape are minutes at most and always made again.
    kept = ("data", "runs", "eval", *REFERENCE_FOLDERS.values()) if resume else ()
    for stale in ("data", "runs", "eval", "gap", "landscape", "door_path", *REFERENCE_FOLDERS.values()):
        if stale not in kept:
            shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps(asked, indent=2))
    timings = out / "timings.json"
    return json.loads(timings.read_text()) if resume and timings.exists() else {}
