"""summary.json of `wmplan eval`, typed: what `evaluate` returns and what the CLI and the reports read.

A TypedDict rather than a class: the summary is a JSON document first (users' own scripts read the
file), and the reports index it by these names; this declaration is the one place the keys are listed.
"""

from __future__ import annotations

from typing import Any, TypedDict


class EvalSummary(TypedDict):
    run: str
    """The run folder, or "(in memory)" for a model passed as an object."""
    task: str
    planner: str
    """gd, adam or cem."""
    mpc: bool
    episodes: int
    seed: int
    """Seed of the start/goal pairs and of the planners' random streams."""
    success_rate: float
    """Share of episodes that meet the task's success criterion at the end of the budget."""
    ci95: list[float]
    """95% Wilson interval of success_rate."""
    reached_rate: float
    """Share that met it at any env step on the way (DINO-WM's evaluation stops there)."""
    mean_initial_distance: float
    mean_final_distance: float
    final_distance_ci95: list[float]
    distance: str
    """What the distance measures (px, position error, Chamfer distance)."""
    seconds_per_plan: float
    """Wall-clock of one batched planning call for all episodes, simulator excluded."""
    planning_calls: int
    planning_seconds_total: float
    seconds_per_plan_note: str
    planner_config: dict[str, Any]
    mpc_config: dict[str, Any]
    """{"replans", "execute"}: open loop is one plan executed whole."""
    objective: dict[str, Any]
    """{"alpha", "mode" (last | all), "base"}."""
    simulator_early_stop: bool
    """Always false: no planner asks the simulator whether a plan succeeds."""
    encoder: str
    episode_success: list[bool]
    """Per episode, in the order of the pairs (episodes.jsonl has the states): for paired tests."""
    episode_final_distance: list[float]
