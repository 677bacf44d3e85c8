"""`wmplan study`: does finetuning (Online / Adversarial World Modeling) help gradient planning across
training seeds, lengths and strengths? One dataset, base models of several seeds, each finetuned with
both methods at several lengths (and the adversarial radii at several strengths), every model planned on
the same pairs; resumable at every step.

    OUT/study.json                           the spec (a rerun with another spec is refused)
    OUT/data/                                one dataset (the demo's recipe for the task, seed 0)
    OUT/runs/seed<k>/base/                   a base model per training seed
    OUT/runs/seed<k>/<setting>/              a finetuned model: adversarial_e<epochs>_x<strength>, online_<steps>
    OUT/eval/seed<k>/<model>/<cell>/         one eval per model and cell: adam (open loop), and adam_mpc and
                                             cem_mpc under each protocol (the paper's with the suffix _paper)
    OUT/grid.json, OUT/report.md             the numbers (wmplan.experiments.results: one cell per seed, model
                                             and cell, each model's training side and diagnostics), the paired
                                             tests pooled over seeds, the verdicts
    OUT/effects.png, OUT/training.png        effect vs finetuning length; the training side vs length

A recipe on the grid engine (wmplan.experiments.runner: one GridSpec per seed, `study_grid`), so resumable at
every step: a rerun redoes only what a kill interrupted.

Defaults are chosen on the training side only (`choose_length`): the shortest length after which the next
length lowers the finetuning objective's final value by less than LENGTH_RULE_GAIN of itself. No
evaluation number enters the choice.

Example:
    >>> run_study(StudySpec(env="wall"), "results/study/wall")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.config import AdversarialConfig
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.evaluation.protocols import MPC, OPEN, PROTOCOLS, check_protocol
from wmplan.evaluation.summary import EvalSummary
from wmplan.experiments.adoption import adopt_grid
from wmplan.experiments.cells import Cell
from wmplan.experiments.demo import demo_scale
from wmplan.experiments.results import GridResults, study_document, write_document
from wmplan.experiments.results import cell as grid_cell
from wmplan.experiments.runner import DATA, EVAL, RUNS, BaseRun, FinetunedRun, GridSpec, Run, run_grid
from wmplan.experiments.workers import check_workers
from wmplan.tasks import task_spec
from wmplan.training.finetune import length_overrides
from wmplan.training.trainer import config_differences

CELLS = (("adam", MPC), ("adam", OPEN), ("cem", MPC))
"""(planner, mode) of every model: the finetuning targets Adam; CEM + MPC is the reference it chases. The
MPC cells are planned under each of the spec's protocols (study_cells)."""
LENGTH_RULE_GAIN = 0.05
"""choose_length: a longer finetuning must lower the objective's final value by at least this fraction."""


@dataclass
class StudySpec:
    env: str = "wall"
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Training seeds of the base models (and their finetunings); the data and the pairs are shared."""
    adversarial_epochs: list[int] = field(default_factory=lambda: [1, 3, 10])
    online_steps: list[int] = field(default_factory=lambda: [200, 1000, 3000])
    strengths: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    """Adversarial radii (every lambda) as multiples of the defaults, at the middle adversarial length."""
    episodes: int = 50
    pair_seed: int = REPORT_PAIR_SEED
    collect_episodes: int | None = None
    """Episodes of the dataset (default: the task's demo recipe)."""
    encoder: str = ""
    """The encoder of every model (default: the task's pixel encoder, the first of its demo's)."""
    base_overrides: dict[str, Any] = field(default_factory=dict)
    """Run overrides of the base models beyond the demo's recipe (tests shrink them)."""
    finetune_overrides: dict[str, Any] = field(default_factory=dict)
    """Finetuning overrides beyond each setting's own length and radii (which win)."""
    planner: dict[str, Any] = field(default_factory=dict)
    """planner.<field> of every cell (tests shrink them; empty: the paper's budgets)."""
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    """The MPC protocols (evaluation.protocols) every MPC cell is planned under; open loop is one plan."""

    def __post_init__(self) -> None:
        self.encoder = self.encoder or task_spec(self.env).demo.encoders[0]
        for name in self.protocols:
            check_protocol(name)
        # the length rule compares each length with the next, and the grid keys models by seed and length
        for name in ("seeds", "adversarial_epochs", "online_steps", "strengths", "protocols"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"study {name}: give at least one value and no repeats; got {values}")
        for name in ("adversarial_epochs", "online_steps"):
            values = getattr(self, name)
            if list(values) != sorted(values) or min(values) < 1:
                raise ValueError(f"study {name}: give lengths of at least 1 in increasing order; got {values}")

    def settings(self) -> list[str]:
        """Every finetuned model's name: each adversarial length at strength 1, the other strengths at
        the middle length, and each online length."""
        middle = self.adversarial_epochs[len(self.adversarial_epochs) // 2]
        names = [adversarial_name(e, 1.0) for e in self.adversarial_epochs]
        names += [adversarial_name(middle, x) for x in self.strengths if x != 1.0]
        return names + [online_name(n) for n in self.online_steps]


EXTENSIBLE = ("seeds", "adversarial_epochs", "online_steps", "strengths", "protocols")
"""StudySpec lists a study folder can grow in: rerunning with more of them keeps every finished model and cell."""


def extends(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether the spec `wanted` is the stored one, or it with values added to EXTENSIBLE lists."""
    return not spec_changes(stored, wanted)


def spec_changes(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The settings in which `wanted` is not the stored spec extended (trainer.config_differences on the
    settings that must stay; an EXTENSIBLE list that dropped a value)."""

    def fixed(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k not in EXTENSIBLE}

    # a study made before protocols were recorded planned its MPC cells under the fixed protocol only
    stored = {"protocols": ["fixed"], **stored}
    dropped = [k for k in EXTENSIBLE if not set(stored.get(k, [])) <= set(wanted[k])]
    return config_differences(fixed(stored), fixed(wanted)) + dropped


def adversarial_name(epochs: int, strength: float = 1.0) -> str:
    return f"adversarial_e{epochs}_x{strength:g}"


def online_name(steps: int) -> str:
    return f"online_{steps}"


def finetune_recipe(name: str) -> tuple[str, dict[str, Any]]:
    """(method, overrides) of a setting name."""
    if name.startswith("online_"):
        return "online", length_overrides("online", int(name.split("_")[1]))
    epochs, strength = name.removeprefix("adversarial_e").split("_x")
    defaults = AdversarialConfig()
    radii = {
        f"adversarial.{k}": getattr(defaults, k) * float(strength)
        for k in ("lambda_visual", "lambda_proprio", "lambda_action")
    }
    return "adversarial", {**length_overrides("adversarial", int(epochs)), **radii}


def run_study(
    spec: StudySpec,
    out: str | Path,
    *,
    progress: bool = True,
    device: str = "cpu",
    from_demo: str | Path | None = None,
    workers: int = 1,
) -> GridResults:
    """Run (or resume) the study in `out`; returns its results (also written, to grid.json, with the report). from_demo: a
    demo's folder whose data, models and cells the study adopts where they are what it would make
    (adopt_demo). workers > 1: each seed's eval cells planned by that many
    one-thread processes at once (wmplan.experiments.workers)."""
    from wmplan.experiments.study_report import write_study_report

    check_workers(workers)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_file = out / "study.json"
    wanted = dataclasses.asdict(spec)
    changes = spec_changes(json.loads(spec_file.read_text()), wanted) if spec_file.exists() else []
    if changes:
        raise ValueError(
            f"{out} holds a study with another spec ({spec_file}: {changes[0]} differs); choose another --out or "
            "remove that folder "
            f"(a study may be extended: more {', '.join(EXTENSIBLE)}, everything else the same)"
        )
    spec_file.write_text(json.dumps(wanted, indent=2))
    if from_demo is not None:
        adopt_demo(Path(from_demo), out, spec, device, study_cells(spec))
    cells: list[dict[str, Any]] = []
    models_side: dict[str, dict[str, dict[str, Any]]] = {}
    models = ["base", *spec.settings()]
    for seed in spec.seeds:
        done = run_grid(study_grid(spec, [seed], out), out, workers=workers, device=device, progress=progress)
        folders = {
            (name, cell): Path(EVAL) / f"seed{seed}" / name / cell.name for name in models for cell in study_cells(spec)
        }
        cells += [
            study_cell(spec, name, seed, cell, folder, done[(f"seed{seed}/{name}", cell.name)])
            for (name, cell), folder in folders.items()
        ]
        runs = out / RUNS / f"seed{seed}"
        found = diagnostics(runs, models, out / "diagnostics" / f"seed{seed}", out / DATA, progress, device)
        for name in models:
            models_side.setdefault(name, {})[str(seed)] = {
                "training": training_side(runs / name),
                "diagnostics": found[name],
            }
        # after every seed, so that a study of hours shows its finished seeds while the next one runs
        document = study_document(spec, spec.pair_seed, spec.protocols, cells, models_side)
        write_document(out, document)
        write_study_report(out, spec, GridResults.from_document(document))
    return GridResults.from_document(document)


def study_grid(spec: StudySpec, seeds: list[int], out: Path, cells: list[Cell] | None = None) -> GridSpec:
    """The study's grid for `seeds` in `out`: per seed a base model (the demo's recipe for the task, then
    spec.base_overrides) and each setting's finetuning of it, every model planned in `cells` (default
    study_cells) on the spec's pairs."""
    scale = demo_scale(spec.env)
    planned = tuple(study_cells(spec) if cells is None else cells)
    runs: list[Run] = []
    for seed in seeds:
        base = f"seed{seed}/base"
        runs.append(BaseRun(base, spec.encoder, seed, scale.preset, {**scale.train, **spec.base_overrides}))
        for name in spec.settings():
            method, recipe = finetune_recipe(name)
            # this study's data, also for a base adopted from a demo (whose config names the demo's copy)
            overrides = {"data.path": str(out / DATA), **spec.finetune_overrides, **recipe}
            runs.append(FinetunedRun(f"seed{seed}/{name}", base, method, overrides))
    return GridSpec(
        spec.env,
        spec.collect_episodes or scale.collect_episodes,
        0,
        tuple(runs),
        {run.name: planned for run in runs},
        spec.episodes,
        pair_seed=spec.pair_seed,
        planner=spec.planner,
    )


def adopt_demo(demo: Path, out: Path, spec: StudySpec, device: str, cells: list[Cell]) -> list[str]:
    """`--from-demo`: copy into `out` what the demo in `demo` made that the study `spec` (on `device`) would
    make too (experiments.adoption's rules: a demo's 3 adversarial epochs are the study's adversarial_e3_x1,
    its 200 online steps online_200); returns the copied paths, relative to `out`. cells: the study's cells
    (study_cells), which the demo names alike."""
    try:
        asked = json.loads((demo / "demo.json").read_text())
    except FileNotFoundError:
        raise ValueError(
            f"--from-demo: {demo} has no demo.json; give the --out folder of a finished `wmplan demo` run "
            "(demos older than `wmplan demo --resume` do not write one)"
        ) from None
    encoders = asked["scale"]["encoders"]
    if spec.encoder not in encoders:
        raise ValueError(f"--from-demo: {demo} has no {spec.encoder} models (it has {', '.join(encoders)})")
    return adopt_grid(demo, study_grid(spec, spec.seeds, out, cells), out, device)


def study_cells(spec: StudySpec) -> list[Cell]:
    """Every cell a model is planned in, on the spec's pairs: CELLS, each MPC cell once per protocol."""
    return [
        Cell(planner, mode, protocol, pair_seed=spec.pair_seed)
        for planner, mode in CELLS
        for protocol in (spec.protocols if mode.mpc else ["fixed"])  # open loop: one plan under either protocol
    ]


def study_cell(spec: StudySpec, model: str, seed: int, cell: Cell, folder: Path, s: EvalSummary) -> dict[str, Any]:
    """One grid.json cell of the study (experiments.results): results.cell of its summary, with its
    training seed and its folder relative to OUT."""
    found = grid_cell(spec.encoder, model, cell.planner, cell.mode.mpc, cell.mode.bounded, s)
    return {**found, "folder": folder.as_posix(), "train_seed": seed}


def diagnostics(runs: Path, models: list[str], where: Path, data: Path, progress: bool, device: str) -> dict[str, dict]:
    """Per model, the train-test gap (expert vs planner-trajectory error, evaluation/gap.py) and the cost
    landscape's roughness and basin width (evaluation/landscape.py) of one seed's models, measured together
    (the planner trajectories and the slices' centre are the base model's, models[0]); their JSON files
    are reused once there. `data`: the study's dataset (an adopted base's config names the demo's copy)."""
    from wmplan.evaluation.gap import gap
    from wmplan.evaluation.landscape import landscape

    found: dict[str, dict] = {name: {} for name in models}
    for kind, measure, keys in (
        ("gap", gap, ("expert_error", "planner_error", "ratio")),
        ("landscape", landscape, ("roughness", "basin_width")),
    ):
        done = where / kind / f"{kind}.json"
        result = json.loads(done.read_text()) if done.exists() else None
        if result is None or any(name not in result for name in models):
            shutil.rmtree(where / kind, ignore_errors=True)
            options: dict[str, Any] = {"data": data} if kind == "gap" else {}
            result = measure(
                [runs / name for name in models], where / kind, progress=progress, device=device, **options
            )
        for name in models:
            found[name] |= {key if kind == "landscape" else f"gap_{key}": result[name][key] for key in keys}
    return found


def training_side(run: Path) -> dict[str, float]:
    """What a user sees without a simulator: the last epoch's training objective and val loss, and for
    online finetuning the mean of its last buffer losses."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    side = {"train_loss": float(rows[-1]["train_loss"]), "val_loss": float(rows[-1]["val_loss"])}
    online = run / "online_metrics.csv"
    if online.exists():
        losses = [
            float(r["online_loss"]) for r in csv.DictReader(online.open()) if r.get("online_loss") not in ("", "nan")
        ]
        if losses:
            tail = losses[-max(1, len(losses) // 10) :]
            side["online_loss"] = sum(tail) / len(tail)
    return side


def choose_length(lengths: list[int], objective: list[float]) -> int | None:
    """The shortest length whose next length lowers the objective (mean over seeds) by less than
    LENGTH_RULE_GAIN of itself; the longest when every step still pays; None when a length has no
    objective (NaN: e.g. online finetuning that logged no buffer loss), rather than a silent choice."""
    if any(np.isnan(v) for v in objective):
        return None
    for i in range(len(lengths) - 1):
        if objective[i] - objective[i + 1] < LENGTH_RULE_GAIN * abs(objective[i]):
            return lengths[i]
    return lengths[-1]
