"""The spec of `wmplan sweep` (wmplan.experiments.sweep): its settings, read from a YAML or JSON file and
`--set key=value`, checked, and unrolled into cells, each an ordinary eval with its own EvalConfig.

    models: {base: runs/wall, online: runs/wall-online}   # name: run folder (or a list of folders)
    planners: [gd, adam, cem]          modes: [open, mpc]   # or mpc_bounded
    seeds: [99]                        episodes: 50         batch: null         protocol: fixed  # or paper
    planner: {steps: 300}              mpc: {replans: 10}   # planner.<field> / mpc.<field> of every cell
    slurm: {partition: gpu, gpus_per_job: 1}                # --launcher submitit's jobs (submitit_launcher)
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmplan.evaluation.eval_config import EvalConfig, MPCSettings, PlannerSettings, check_applicable
from wmplan.evaluation.protocols import MODES, check_protocol, mode_named
from wmplan.experiments.cell_folder import cell_record
from wmplan.experiments.cells import Cell
from wmplan.experiments.submitit_launcher import slurm_settings
from wmplan.overrides import apply_dataclass_overrides, cast_value, parse_set_args
from wmplan.planning.registry import planner_names
from wmplan.settings_file import read_settings_file

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
GROUPS = {"planner": "steps=100", "mpc": "replans=5", "slurm": "partition=gpu"}
"""The spec's tables of <group>.<field> settings, each with an example setting."""


@dataclass
class SweepSpec:
    models: dict[str, str] = field(default_factory=dict)
    """Name -> run folder (or Hub id). Names base, online and adversarial get the paper's numbers beside."""
    planners: list[str] = field(default_factory=lambda: ["gd", "adam", "cem"])
    modes: list[str] = field(default_factory=lambda: ["open", "mpc"])
    """open, mpc, mpc_bounded (MPC with --set planner.bounded=true)."""
    seeds: list[int] = field(default_factory=lambda: [EvalConfig().seed])
    """Seeds of the start/goal pairs (and the planners' streams): eval's --seed."""
    episodes: int = 50
    batch: int | None = None
    """Episodes planned at once (eval's --batch; default all)."""
    planner: dict[str, Any] = field(default_factory=dict)
    """planner.<field> settings of every cell."""
    mpc: dict[str, Any] = field(default_factory=dict)
    """mpc.<field> settings of every cell (open-loop cells ignore them)."""
    protocol: str = "fixed"
    """MPC protocol of every MPC cell: fixed or paper (evaluation.protocols; open-loop cells are the same under
    both)."""
    slurm: dict[str, Any] = field(default_factory=dict)
    """slurm.<field> settings of the jobs of `--launcher submitit` (submitit_launcher.SlurmSettings): how the
    cells run, not what they are, so grid.json leaves them out."""


@dataclass(frozen=True)
class SweepCell:
    model: str
    run: str
    cell: Cell
    """The planner, mode, protocol and pair seed (in its name) of the model's cell."""

    @property
    def folder(self) -> str:
        """The cell's folder under the sweep's OUT."""
        return f"{self.model}/{self.cell.name}"


def load_spec(path: str | Path | None, sets: Iterable[str] = ()) -> SweepSpec:
    """The spec from a YAML or JSON file (optional) with `sets` ("key=value": models, planners, modes,
    seeds, episodes, batch, planner.<field>, mpc.<field>, slurm.<field>; lists comma-separated, models as
    name:path)."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_settings_file(path, "sweep settings", ", or the grid as --set lists")
    for key, value in parse_set_args(list(sets)).items():
        group, _, name = key.partition(".")
        if name and group in GROUPS:
            values.setdefault(group, {})[name] = value
        elif key in ("models", "planners", "modes", "seeds"):
            text = value.strip()
            values[key] = json.loads(text) if text.startswith(("[", "{")) else [v.strip() for v in text.split(",") if v]
        else:
            values[key] = value
    return spec_from_dict(values)


def spec_from_dict(values: dict[str, Any]) -> SweepSpec:
    """A checked SweepSpec from loosely typed values (a file's, or strings from --set)."""
    known = [f.name for f in dataclasses.fields(SweepSpec)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown sweep settings {unknown}; valid: {', '.join(known)}")
    models = values.get("models") or {}
    if isinstance(models, list):
        pairs = [str(m).split(":", 1) if ":" in str(m) else [Path(str(m)).name, str(m)] for m in models]
        names = [name for name, _ in pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"models {twice} appear twice; name them, e.g. --set models=base:runs/a,online:runs/b")
        models = dict(pairs)
    for group, example in GROUPS.items():
        if not isinstance(values.get(group) or {}, dict):
            raise ValueError(
                f"sweep {group} must map {group}.<field> settings to values, e.g. --set {group}.{example}; "
                f"got {values[group]!r}"
            )
    if not isinstance(models, dict) or not models:
        raise ValueError(
            "a sweep needs models: --set models=base:runs/wall,online:runs/wall-online (or a list of runs)"
        )
    spec = SweepSpec(
        models={str(k): str(v) for k, v in models.items()},
        planners=[str(p) for p in _as_list(values.get("planners", SweepSpec().planners), "planners")],
        modes=[str(m) for m in _as_list(values.get("modes", SweepSpec().modes), "modes")],
        seeds=[cast_value(s, int, "seeds") for s in _as_list(values.get("seeds", SweepSpec().seeds), "seeds")],
        episodes=cast_value(values.get("episodes", SweepSpec.episodes), int, "episodes"),
        batch=cast_value(values.get("batch"), int | None, "batch"),
        planner=dict(values.get("planner") or {}),
        mpc=dict(values.get("mpc") or {}),
        protocol=check_protocol(str(values.get("protocol", SweepSpec.protocol))),
        slurm=dict(values.get("slurm") or {}),
    )
    for key, low in (("episodes", spec.episodes), ("batch", spec.batch)):
        if low is not None and low < 1:
            raise ValueError(f"sweep {key} must be at least 1, got {low}")
    for name in spec.models:
        if not NAME.match(name):
            raise ValueError(f"model name {name!r} cannot name a folder; use letters, digits, '_', '-' and '.'")
    modes = tuple(mode.name for mode in MODES)
    for key, given, allowed in (("planners", spec.planners, planner_names()), ("modes", spec.modes, modes)):
        bad = [v for v in given if v not in allowed]
        if bad or not given:
            raise ValueError(f"sweep {key} {bad or given} unknown or empty; choose from {', '.join(allowed)}")
    for key in ("planners", "modes", "seeds"):
        values_ = getattr(spec, key)
        if len(set(values_)) != len(values_):
            raise ValueError(f"sweep {key} {values_} repeat a value; list each once")
    apply_dataclass_overrides(PlannerSettings(), spec.planner, "planner")  # unknown keys and types, before any cell
    apply_dataclass_overrides(MPCSettings(), spec.mpc, "mpc")
    slurm_settings(spec.slurm)  # unknown keys, types and ranges
    mpc_modes = [mode_named(m).mpc for m in spec.modes]
    check_applicable(spec.planner, spec.mpc, spec.planners, mpc_modes, spec.protocol, grid=True)
    if spec.protocol != "fixed" and not any(mpc_modes):
        raise ValueError(
            f"sweep protocol {spec.protocol} applies to MPC cells, and the modes {', '.join(spec.modes)} have none; "
            "add an mpc mode or remove the protocol"
        )
    return spec


def _as_list(value: Any, key: str) -> list:
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, list):
        raise ValueError(f"sweep {key} must be a list, got {value!r}")
    return value


def cells_of(spec: SweepSpec) -> list[SweepCell]:
    """Every cell, model-major (a model's cells together), in the spec's orders; MPC cells under the spec's
    protocol (open loop is one plan under either)."""
    modes = [mode_named(m) for m in spec.modes]
    return [
        SweepCell(
            model, run, Cell(planner, mode, spec.protocol if mode.mpc else "fixed", pair_seed=seed, seed_in_name=True)
        )
        for model, run in spec.models.items()
        for seed in spec.seeds
        for planner in spec.planners
        for mode in modes
    ]


def eval_config(spec: SweepSpec, c: SweepCell) -> EvalConfig:
    """The cell's EvalConfig: its planner, mode, protocol and seed, and the spec's shared settings (checked)."""
    cell = c.cell
    cfg = EvalConfig(
        planner=cell.planner,
        mpc=cell.mode.mpc,
        protocol=cell.protocol,
        episodes=spec.episodes,
        seed=cell.pair_seed,
        batch=spec.batch,
    )
    apply_dataclass_overrides(cfg.settings, spec.planner, "planner")
    apply_dataclass_overrides(cfg.mpc_settings, spec.mpc, "mpc")
    if cell.mode.bounded:
        cfg.settings.bounded = True
    return cfg.check()


def sweep_cell_record(spec: SweepSpec, c: SweepCell) -> dict[str, Any]:
    """The cell's cell.json (experiments.cell_folder): its model, run, planner, mode and seed, and its eval."""
    return cell_record(
        eval_config(spec, c),
        model=c.model,
        run=str(Path(c.run).resolve()),
        planner=c.cell.planner,
        mode=c.cell.mode.name,
        seed=c.cell.pair_seed,
    )
