"""The Task protocol: the seam between simulators and the rest of wmplan.

A task simulates N independent copies of one environment at once (batched in numpy where the
simulator allows it). Shapes: N copies, S state dims, P proprio dims, A action dims.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from wmplan.overrides import typed_dataclass


@runtime_checkable
class Task(Protocol):
    """What every simulator offers to collectors, planners' evaluation and the gymnasium wrapper."""

    name: str
    distance_name: str  # what `distance` measures, e.g. "Chamfer distance", for reports
    image_size: int
    state_dim: int
    # Optional `pose_dims`: the state indices an image shows (default all); latent/true-distance checks use them.
    proprio_dim: int
    action_dim: int
    action_low: np.ndarray  # (A,) bounds a planner may respect (planner.bounded=true)
    action_high: np.ndarray  # (A,)
    config: Any  # the task's settings dataclass (success thresholds, rendering, dynamics)

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-serialisable settings that define this task's dynamics and rendering."""

    @property
    def num_envs(self) -> int:
        """N, the number of copies currently simulated."""

    def reset_to(self, state: np.ndarray) -> None:
        """Put the N copies in `state` (N, S); N may differ from the previous call."""

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply one env action (N, A) to every copy; returns the new state (N, S)."""

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        """uint8 images (N, H, W, 3) of the current states, or of `state` (N, S) in the copies' arenas."""

    def get_state(self) -> np.ndarray:
        """The current state (N, S), a copy."""

    def proprio(self, state: np.ndarray) -> np.ndarray:
        """Proprioceptive part (N, P) of states (N, S)."""

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The task's distance (N,) between states and goals, the quantity its success threshold applies to."""

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """bool (N,): whether each state satisfies the task's success criterion for its goal."""

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n start states and n goal states (each (n, S)) by the task's evaluation protocol."""


def settings_from_dict(cls, values: dict[str, Any], label: str):
    """A settings dataclass from stored values (a dataset's attrs) or command-line strings, each cast
    to its declared type (`--task-set random_layout=false` is False); an unknown key or a bad value is a
    ValueError that names it (wmplan.overrides.typed_dataclass)."""
    return typed_dataclass(cls, values, label)


def as_batch(array: np.ndarray, width: int, what: str) -> np.ndarray:
    """Check and return `array` as float64 (N, width); a single (width,) vector becomes (1, width)."""
    out = np.asarray(array, dtype=np.float64)
    if out.ndim == 1:
        out = out[None]
    if out.ndim != 2 or out.shape[1] != width:
        raise ValueError(f"{what} must have shape (N, {width}) or ({width},), got {np.shape(array)}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} contains NaN or Inf values: {out}")
    return out
