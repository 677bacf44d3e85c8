"""Task names -> constructors (the gymnasium ids are registered by wmplan.gymnasium_ids)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wmplan.envs.base import Task
from wmplan.envs.granular import GranularSettings, GranularTask
from wmplan.envs.pointmaze import PointMazeSettings, PointMazeTask
from wmplan.envs.pusht import PushTSettings, PushTTask
from wmplan.envs.rope import RopeSettings, RopeTask
from wmplan.envs.wall import WallSettings, WallTask
from wmplan.tasks import check_covers_every_task

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
