"""A cell of an experiment grid, named once: the planner, its mode (evaluation.protocols: open loop, MPC, MPC
with bounded plans), the MPC protocol, the objective mode where the cell overrides it, and the seed of its
start/goal pairs; `name` is the name of the folder its eval is written to.

The names are read back from disk (committed results under docs/results/, `wmplan demo --resume`, a sweep's
rerun and `wmplan study --from-demo` find finished cells by name), so they stay as each runner first wrote
them, in two layouts:
- one pair seed per folder tree (the demo's and the study's cells): the planner, then `_mpc` or
  `_mpc_bounded` (nothing for open loop), `_paper` under the paper protocol, and `_<objective>` where the
  cell overrides the objective mode: adam, cem_mpc_bounded, adam_mpc_paper, adam_mpc_all;
- the pair seed in the name (`seed_in_name`: the sweep's cells, several seeds side by side): the planner,
  the mode's name and the seed: adam_open_seed99, cem_mpc_bounded_seed0. The protocol is not in these
  names: the sweep records it in each cell.json and refuses a folder planned with other settings.

Example:
    >>> from wmplan.evaluation.protocols import MPC, OPEN
    >>> Cell("adam", MPC, "paper").name
    'adam_mpc_paper'
    >>> Cell("adam", OPEN, pair_seed=99, seed_in_name=True).name
    'adam_open_seed99'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
from wmplan.evaluation.protocols import OPEN, Mode, check_protocol
from wmplan.overrides import apply_dataclass_overrides


@dataclass(frozen=True)
class Cell:
    planner: str
    mode: Mode
    protocol: str = "fixed"
    """fixed or paper (evaluation.protocols); open loop is one plan, fixed under either."""
    objective: str | None = None
    """The objective mode where the cell overrides the task's default (last or all), else None."""
    pair_seed: int = REPORT_PAIR_SEED
    """The seed of the start/goal pairs (eval's --seed)."""
    seed_in_name: bool = False
    """The sweep's layout: the name carries the pair seed (see the module's docstring)."""

    def __post_init__(self) -> None:
        check_protocol(self.protocol, self.mode.mpc)

    @property
    def name(self) -> str:
        """The cell's folder name (the module's docstring lists both layouts)."""
        if self.seed_in_name:
            return f"{self.planner}_{self.mode.name}_seed{self.pair_seed}"
        return (
            self.planner
            + ("" if self.mode == OPEN else f"_{self.mode.name}")
            + ("_paper" if self.protocol == "paper" else "")
            + (f"_{self.objective}" if self.objective else "")
        )

    def eval_config(self, episodes: int, planner: Mapping[str, Any] = {}, mpc: Mapping[str, Any] = {}) -> EvalConfig:
        """The cell's eval: its planner, mode (bounded plans), protocol, objective mode and pairs, on `episodes`
        pairs, with a grid's planner.<field> and mpc.<field> settings."""
        cfg = EvalConfig(
            planner=self.planner,
            mpc=self.mode.mpc,
            protocol=self.protocol,
            episodes=episodes,
            seed=self.pair_seed,
            settings=PlannerSettings(bounded=self.mode.bounded, objective=self.objective),
        )
        apply_dataclass_overrides(cfg.settings, dict(planner or {}), "planner")
        apply_dataclass_overrides(cfg.mpc_settings, dict(mpc or {}), "mpc")
        return cfg
