"""`wmplan study --from-demo DIR`: start a study with what a demo (`wmplan demo --seeds ... --episodes N`)
already made, rather than making it again: its dataset, the base model of each training seed the two
share, the finetuned models whose recipe is one of the study's settings (a demo's 3 adversarial epochs
are the study's adversarial_e3_x1, its 200 online steps online_200) and their Adam and CEM cells.

Nothing is taken on trust: a model is adopted only when its stored config equals, key for key, the one
the study would train (the device, the dataset's path and the parent's path aside), and its cells only
when the demo finished the very eval the study asks (the one rule of wmplan.experiments.cell_folder). What is adopted is copied into
the study's folder, listed in OUT/adopted.json and named in the report; the rest the study makes itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wmplan.config import RunConfig, stored_settings
from wmplan.experiments.cell_folder import cell_record, finished_cell
from wmplan.experiments.demo_report import seed_folder
from wmplan.models.run_folder import RunFolder
from wmplan.training.finetune import finetune_config
from wmplan.training.trainer import config_differences

if TYPE_CHECKING:
    from wmplan.experiments.cells import Cell
    from wmplan.experiments.study import StudySpec

MAY_DIFFER = ("train.device", "data.path", "finetune.parent")
"""Config keys that name where a run was made, not what it is."""


def adopt_demo(demo: Path, out: Path, spec: StudySpec, device: str, cells: list[Cell]) -> list[str]:
    """Copy into `out` what the demo in `demo` made that the study `spec` (on `device`) would make too;
    returns the copied paths, relative to `out`. cells: the study's cells (study.study_cells), which the demo
    names alike."""
    from wmplan.experiments.demo import demo_scale
    from wmplan.experiments.study import base_config, finetune_recipe

    asked = _demo_arguments(demo)
    scale, task_scale = asked["scale"], demo_scale(spec.env)
    wanted_data = {"env": spec.env, "seed": 0, "collect_episodes": spec.collect_episodes or task_scale.collect_episodes}
    found_data = {"env": asked["env"], "seed": asked["seed"], "collect_episodes": scale["collect_episodes"]}
    if found_data != wanted_data:
        raise ValueError(f"--from-demo: {demo} was made on other data ({found_data}; the study needs {wanted_data})")
    if spec.encoder not in scale["encoders"]:
        raise ValueError(f"--from-demo: {demo} has no {spec.encoder} models (it has {', '.join(scale['encoders'])})")
    listing = out / "adopted.json"
    before = json.loads(listing.read_text())["adopted"] if listing.exists() else []
    adopted: list[str] = []

    def record() -> None:
        listing.write_text(json.dumps({"demo": str(demo.resolve()), "adopted": sorted({*before, *adopted})}, indent=2))

    if not (out / "data").exists():
        shutil.copytree(demo / "data", out / "data")
        adopted.append("data")
    seeds = asked["train_seeds"]
    for seed in (s for s in spec.seeds if s in seeds):
        runs = seed_folder(demo / "runs" / spec.encoder, seed, seeds)
        evals = seed_folder(demo / "eval" / spec.encoder, seed, seeds)
        base_cfg = base_config(spec, seed, out / "data", device)
        if config_differences_of(runs / "base", base_cfg):
            continue  # another recipe: the study trains its own
        own_base = Path("runs") / f"seed{seed}" / "base"
        if (out / own_base).exists() and str(own_base) not in before:
            continue  # the study trained this seed's base itself: the demo's finetunings and cells are of another model
        names = {"base": "base"}
        for name in spec.settings():
            method, recipe = finetune_recipe(name)
            overrides = {**spec.finetune_overrides, **recipe}
            expected = finetune_config(base_cfg, runs / "base", method, overrides, preset=None)
            if (runs / method).exists() and not config_differences_of(runs / method, expected):
                names[name] = method
        for name, source in names.items():
            adopted += _copy(runs / source, out, Path("runs") / f"seed{seed}" / name)
            fingerprint = RunFolder(runs / source).state().fingerprint
            for cell in cells:
                wanted = cell_record(cell.eval_config(spec.episodes, spec.planner))
                if _finished_alike(evals / source / cell.name, wanted, fingerprint):
                    adopted += _copy(evals / source / cell.name, out, Path("eval") / f"seed{seed}" / name / cell.name)
            record()  # after every model: a kill between copies must not leave an adopted base looking like the study's own
    record()
    return adopted


def config_differences_of(run: Path, asked: RunConfig) -> list[str]:
    """Keys in which the run's stored config differs from `asked` (MAY_DIFFER aside); a missing run differs."""
    if not (run / "config.json").exists():
        return ["(no run)"]
    stored = json.loads((run / "config.json").read_text())["config"]
    return [k for k in config_differences(stored_settings(stored), asked.to_dict()) if k not in MAY_DIFFER]


def _finished_alike(folder: Path, wanted: dict[str, Any], fingerprint: str) -> bool:
    """Whether the demo finished in `folder` the cell the study wants (experiments.cell_folder's rule: the
    same eval, planned by the run as it is); a cell of other settings is the study's to plan."""
    try:
        return finished_cell(folder, wanted, fingerprint, say=False) is not None
    except ValueError:
        return False


def _demo_arguments(demo: Path) -> dict[str, Any]:
    try:
        return json.loads((demo / "demo.json").read_text())
    except FileNotFoundError:
        raise ValueError(
            f"--from-demo: {demo} has no demo.json; give the --out folder of a finished `wmplan demo` run "
            "(demos older than `wmplan demo --resume` do not write one)"
        ) from None


def _copy(source: Path, out: Path, target: Path) -> list[str]:
    if (out / target).exists():
        return []
    partial = out / target.with_name(target.name + ".partial")  # a kill mid-copy leaves no half folder
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    partial.rename(out / target)
    return [str(target)]
