"""Task names -> constructors, and gymnasium registration (`gymnasium.make("wmplan/Wall-v0")`,
wmplan/PointMaze-v0, wmplan/PushT-v0, wmplan/Rope-v0, wmplan/Granular-v0)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmplan.envs.base import Task
from wmplan.envs.granular import GranularSettings, GranularTask
from wmplan.envs.pointmaze import PointMazeSettings, PointMazeTask
from wmplan.envs.pusht import PushTSettings, PushTTask
from wmplan.envs.rope import RopeSettings, RopeTask
from wmplan.envs.wall import WallSettings, WallTask
from wmplan.tasks import TASKS, check_covers_every_task

_TASKS: dict[str, tuple[type, Callable[[dict], Any]]] = {
    "wall": (WallTask, WallSettings.from_dict),
    "pointmaze": (PointMazeTask, PointMazeSettings.from_dict),
    "pusht": (PushTTask, PushTSettings.from_dict),
    "rope": (RopeTask, RopeSettings.from_dict),
    "granular": (GranularTask, GranularSettings.from_dict),
}
check_covers_every_task(_TASKS, "envs.registry's simulators")


def task_names() -> list[str]:
    return sorted(_TASKS)


def task_type(name: str) -> type:
    """A task's class by name (for class-level facts such as `angle_dims`, without building a simulator)."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(task_names())}")
    return _TASKS[name][0]


def make_task(name: str, settings: dict[str, Any] | None = None) -> Task:
    """A task by name, with settings as stored in a dataset's attrs (unknown keys are an error)."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(task_names())}")
    factory, parse = _TASKS[name]
    return factory(parse(settings or {}))


def register_gymnasium() -> None:
    """Register every task with gymnasium under wmplan/<Name>-v0 (idempotent)."""
    import gymnasium

    for task, spec in TASKS.items():
        name = spec.gym_name
        if f"wmplan/{name}-v0" not in gymnasium.registry:
            gymnasium.register(id=f"wmplan/{name}-v0", entry_point="wmplan.envs.gym_env:TaskEnv", kwargs={"task": task})
