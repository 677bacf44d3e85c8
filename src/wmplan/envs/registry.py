"""Task names -> simulators, read from the task registry (wmplan.tasks.register_task)."""

from __future__ import annotations

from typing import Any

from wmplan.envs.base import Task
from wmplan.tasks import load_code, task_entry, task_names

__all__ = ["make_task", "task_names", "task_type"]


def task_type(name: str) -> type:
    """A task's class by name (for class-level facts such as `angle_dims`, without building a simulator)."""
    return load_code(task_entry(name).simulator)


def make_task(name: str, settings: dict[str, Any] | None = None) -> Task:
    """A task by name, with settings as stored in a dataset's attrs (unknown keys are an error)."""
    entry = task_entry(name)
    return load_code(entry.simulator)(load_code(entry.settings)(settings or {}))
