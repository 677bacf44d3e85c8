"""Simulators behind the Task protocol, one file per task."""

from wmplan.envs.base import Task
from wmplan.envs.registry import make_task, task_names
from wmplan.gymnasium_ids import register_gymnasium

__all__ = ["Task", "make_task", "register_gymnasium", "task_names"]
