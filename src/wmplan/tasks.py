"""Everything wmplan knows about a task, registered in one call per task (`register_task`): its facts as data
(a `TaskSpec`: its gymnasium name, its run defaults, its planning defaults, how its demo runs and how its
reports read, and the paper's numbers) and its code (the simulator class, its settings parser, the collector
and its settings class). Every per-task table of wmplan (simulators, collectors, gymnasium ids, presets,
planning defaults, the CLI's --env) reads this registry; wmplan's own five tasks register in
builtin_tasks.py. Adding a task: one module that defines its simulator and collector and calls
`register_task`.

Example:
    >>> task_spec("pusht").planning.cem_iterations
    30
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wmplan.defaults import MPC_MODEL_STEPS, PLAN_HORIZON
from wmplan.registry import Registry


@dataclass(frozen=True)
class TaskPlanning:
    """A task's planner defaults, one setting for every model and planner, chosen on the tuning pairs
    (defaults.TUNING_PAIR_SEED), which no report evaluates on (the comments in builtin_tasks.py give each
    built-in task's evidence). The fixed protocol's schedule is chosen where the simulator reference, a perfect
    model, succeeds most (docs/results/ceilings). Checked against the planners' budget when the task is
    registered (`check`)."""

    alpha: float
    """Weight of the proprio term of the cost (PAPER.md: Wall 1, PushT 1, PointMaze 0)."""
    cem_iterations: int
    """CEM refits per plan (PAPER.md: PushT 30, PointMaze and Wall 10)."""
    open_loop_objective: str
    """Frames the cost scores open loop: last (the paper's equation) or all (the authors' code)."""
    mpc_objective: str
    """The same under MPC."""
    mpc_execute: int
    """Model steps executed from each MPC plan before replanning: 1 (the paper's text) up to the horizon
    (DINO-WM's code executes the whole plan); replans default to MPC_MODEL_STEPS // mpc_execute."""

    chosen_on: str = "tuning"
    """Where these defaults were chosen, as the reports say: "tuning" (the tuning pairs, seed
    defaults.TUNING_PAIR_SEED), "report" (the report pairs themselves, before tuning pairs existed) or "unsearched"
    (set without a search over start/goal pairs)."""

    def objective_mode(self, mpc: bool) -> str:
        return self.mpc_objective if mpc else self.open_loop_objective

    def check(self, task: str) -> None:
        """ValueError naming the task and field when these defaults cannot be planned with."""
        for field, mode in (("open_loop_objective", self.open_loop_objective), ("mpc_objective", self.mpc_objective)):
            if mode not in ("last", "all"):
                raise ValueError(f"{task}: unknown objective mode {mode!r} in {field}; choose last or all")
        if not 1 <= self.mpc_execute <= PLAN_HORIZON or MPC_MODEL_STEPS % self.mpc_execute:
            raise ValueError(
                f"{task}: mpc_execute must divide {MPC_MODEL_STEPS} and lie in [1, {PLAN_HORIZON}], "
                f"got {self.mpc_execute}"
            )
        if self.cem_iterations < 1:
            raise ValueError(f"{task}: cem_iterations must be at least 1, got {self.cem_iterations}")
        if self.chosen_on not in ("tuning", "report", "unsearched"):
            raise ValueError(f"{task}: chosen_on must be tuning, report or unsearched, got {self.chosen_on!r}")


@dataclass(frozen=True)
class DemoRecipe:
    """What `wmplan demo --env <task>` runs beyond the shared defaults (experiments/demo.py, DemoScale)."""

    collect_episodes: int
    train: dict[str, Any]
    """Run overrides of the `small` preset for the base models."""
    encoders: tuple[str, ...]
    """The pixel encoder first, then the privileged controls."""
    bounded_cells: bool
    """Also plan Adam and CEM MPC with bounded plans (the Wall demo only: the others' time is spent elsewhere)."""
    adversarial_epochs: int = 1
    """Adversarial finetuning length, in epochs. Where a study ran (docs/results/study/<task>), its
    training-side rule sets it: the shortest length after which the next one lowers the finetuning
    objective by less than 5% (experiments/study_report.py, rule_lengths; the study of the task's pixel
    model, the demo's first encoder); a task without a study keeps 1 epoch and 200 online steps, untested
    (the paper gives no lengths)."""
    online_steps: int = 200
    """Online finetuning length, in steps (a buffer refresh every online.every steps), by the same rule."""


@dataclass(frozen=True)
class TaskSpec:
    gym_name: str
    """gymnasium id wmplan/<gym_name>-v0."""
    run_defaults: dict[str, Any]
    """Run overrides every preset gets for this task (config.preset)."""
    planning: TaskPlanning
    demo: DemoRecipe
    reports_distance: bool
    """Reports lead with the mean final distance (Chamfer): the deformable tasks, which no planner solves."""
    paper_success: dict[str, dict[str, tuple[int, int]]] | None
    """The paper's Table 1, success % over 50 episodes (DINO-WM on DINOv2 tokens): model -> planner ->
    (open loop, MPC); None where the paper has no row."""
    render_fps: int
    """Frames per second of the gymnasium env's renders (videos): the rate of its env steps."""
    paper_note: str = ""
    """What else the paper's authors report for a cell of paper_success, shown under the report's table."""


Code = Any
"""A task's piece of code: the object itself, or a "module:attribute" reference imported on first use (which
keeps reading a task's facts free of its simulator's imports)."""


def load_code(code: Code) -> Any:
    """The object a `Code` names ("wmplan.envs.wall:WallSettings.from_dict" -> that method)."""
    if not isinstance(code, str):
        return code
    module, _, attribute = code.partition(":")
    found: Any = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


@dataclass(frozen=True)
class TaskEntry:
    """One registered task: its facts and its code (each a `Code`)."""

    name: str
    spec: TaskSpec
    simulator: Code
    """The Task class (wmplan.envs.base.Task), built from its parsed settings."""
    settings: Code
    """Stored or command-line settings (a dict) -> the simulator's settings; unknown keys are a ValueError."""
    collector: Code
    """(task, rng, n episodes, collector settings) -> arrays (n, steps + 1, ...), as data/collect.py calls it."""
    collector_config: Code
    """The collector's settings dataclass: a `steps` field and a `check()` that refuses bad settings."""

    @property
    def build(self) -> Code:
        return self.simulator


TASK_REGISTRY: Registry[TaskEntry] = Registry("task", builtin_modules=("wmplan.builtin_tasks",))


def register_task(
    name: str,
    spec: TaskSpec,
    *,
    simulator: Code,
    settings: Callable[[dict[str, Any]], Any] | str,
    collector: Callable[..., Any] | str,
    collector_config: type | str,
) -> TaskEntry:
    """Make task `name` known to every part of wmplan (make_task, collect, presets, planning defaults,
    gymnasium.make, the CLI's --env); a ValueError refuses a name or a gymnasium name already taken, or
    planning defaults that cannot be planned with."""
    TASK_REGISTRY.load_builtins()  # first: a name taken by a built-in task is refused here, not when they load
    spec.planning.check(name)
    clash = next((e.name for e in TASK_REGISTRY.registered() if e.spec.gym_name == spec.gym_name), None)
    if clash is not None and TASK_REGISTRY.find(name) is None:  # a taken name: add says so
        raise ValueError(f"task {clash!r} already has the gymnasium name {spec.gym_name!r}; choose another")
    entry = TASK_REGISTRY.add(TaskEntry(name, spec, simulator, settings, collector, collector_config))
    from wmplan.gymnasium_ids import register_gym_id  # here, not at the top: gymnasium_ids imports this module

    register_gym_id(name)
    return entry


def unregister_task(name: str) -> None:
    """Forget task `name` and its gymnasium id (a ValueError if none is registered under it)."""
    from wmplan.gymnasium_ids import unregister_gym_id

    unregister_gym_id(name)
    TASK_REGISTRY.remove(name)


def task_names() -> list[str]:
    """Every registered task, sorted."""
    return sorted(TASK_REGISTRY.names())


def task_entry(name: str) -> TaskEntry:
    entry = TASK_REGISTRY.find(name)
    if entry is None:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(task_names())}")
    return entry


def task_spec(name: str) -> TaskSpec:
    return task_entry(name).spec
