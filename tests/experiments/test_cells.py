"""Cell folder names are read back from disk (committed results under docs/results/, `demo --resume`, a
sweep's rerun, `study --from-demo`), so every name each runner makes is pinned here, spelled as the result
folders on disk spell them; and the one vocabulary of modes behind them."""

import pytest

from wmplan.evaluation.protocols import MODES, MPC, MPC_BOUNDED, OPEN, Mode, mode_named
from wmplan.experiments.cells import Cell
from wmplan.experiments.demo import DemoScale, demo_cells, demo_scale
from wmplan.experiments.study import StudySpec, study_cells
from wmplan.experiments.sweep_spec import cells_of, spec_from_dict, sweep_cell_record
from wmplan.planning.registry import planner_names
from wmplan.tasks import task_names

MODELS = ("base", "online", "adversarial")
OPEN_AND_MPC = "gd adam cem gd_mpc adam_mpc cem_mpc"
OTHER_OBJECTIVE = "adam_all cem_all adam_mpc_all cem_mpc_all"
PAPER = "gd_mpc_paper adam_mpc_paper cem_mpc_paper"
DEMO = {  # per task: (each model's cells, the base model's under the other objective, each model's paper cells)
    "wall": (OPEN_AND_MPC + " adam_mpc_bounded cem_mpc_bounded", OTHER_OBJECTIVE, PAPER),
    "pointmaze": (OPEN_AND_MPC, OTHER_OBJECTIVE, PAPER),
    "pusht": (OPEN_AND_MPC, OTHER_OBJECTIVE, PAPER),
    "rope": (OPEN_AND_MPC, OTHER_OBJECTIVE, PAPER),
    "granular": (OPEN_AND_MPC, OTHER_OBJECTIVE, PAPER),
}
SWEEP = (
    "gd_open_seed99 gd_mpc_seed99 gd_mpc_bounded_seed99 adam_open_seed99 adam_mpc_seed99 adam_mpc_bounded_seed99 "
    "cem_open_seed99 cem_mpc_seed99 cem_mpc_bounded_seed99 cem_best_open_seed99 cem_best_mpc_seed99 "
    "cem_best_mpc_bounded_seed99 hybrid_open_seed99 hybrid_mpc_seed99 hybrid_mpc_bounded_seed99 "
    "multistart_open_seed99 multistart_mpc_seed99 multistart_mpc_bounded_seed99 "
    "gd_open_seed0 gd_mpc_seed0 gd_mpc_bounded_seed0 adam_open_seed0 adam_mpc_seed0 adam_mpc_bounded_seed0 "
    "cem_open_seed0 cem_mpc_seed0 cem_mpc_bounded_seed0 cem_best_open_seed0 cem_best_mpc_seed0 "
    "cem_best_mpc_bounded_seed0 hybrid_open_seed0 hybrid_mpc_seed0 hybrid_mpc_bounded_seed0 "
    "multistart_open_seed0 multistart_mpc_seed0 multistart_mpc_bounded_seed0"
)
"""A sweep's cells of one model: planners x modes, pair seeds 99 then 0 (the protocol is not in the name)."""


def folders(each_model: str, base_only: str, paper: str) -> list[str]:
    return (
        [f"{m}/{n}" for m in MODELS for n in each_model.split()]
        + [f"base/{n}" for n in base_only.split()]
        + [f"{m}/{n}" for m in MODELS for n in paper.split()]
    )


def demo_folders(env: str, scale: DemoScale) -> list[str]:
    return [f"{model}/{cell.name}" for model, cell in demo_cells(env, scale).values()]


@pytest.mark.parametrize("env", task_names())
def test_the_demo_names_its_cells_as_its_results_on_disk(env):
    assert sorted(DEMO) == task_names()
    assert demo_folders(env, demo_scale(env)) == folders(*DEMO[env])


def test_the_demo_names_the_cells_of_any_planner_and_a_demo_without_the_paper_protocol():
    scale = DemoScale(
        cells=(("cem_best", False, False), ("cem_best", True, False), ("cem_best", True, True)),
        objective_check=(("cem_best", False), ("cem_best", True)),
    )
    assert demo_folders("wall", scale) == folders(
        "cem_best cem_best_mpc cem_best_mpc_bounded", "cem_best_all cem_best_mpc_all", "cem_best_mpc_paper"
    )
    assert demo_folders("pusht", DemoScale(paper_protocol=False)) == folders(
        OPEN_AND_MPC + " adam_mpc_bounded cem_mpc_bounded", OTHER_OBJECTIVE, ""
    )


def test_a_demo_scale_with_a_bounded_open_loop_cell_fails_before_any_stage():
    with pytest.raises(ValueError, match="open loop has no bounded mode"):
        demo_cells("wall", DemoScale(cells=(("adam", False, True),)))


@pytest.mark.parametrize(
    "protocols, names",
    [
        (["fixed"], "adam_mpc adam cem_mpc"),
        (["paper"], "adam_mpc_paper adam cem_mpc_paper"),
        (["fixed", "paper"], "adam_mpc adam_mpc_paper adam cem_mpc cem_mpc_paper"),
    ],
)
def test_the_study_names_its_cells_as_the_demo_does(protocols, names):
    assert [c.name for c in study_cells(StudySpec(protocols=protocols))] == names.split()


@pytest.mark.parametrize("protocol", ["fixed", "paper"])
def test_the_sweep_names_its_cells_by_planner_mode_and_pair_seed(protocol):
    spec = spec_from_dict(
        {
            "models": {"base": "runs/a", "online": "runs/b"},
            "planners": list(planner_names()),
            "modes": ["open", "mpc", "mpc_bounded"],
            "seeds": [99, 0],
            "protocol": protocol,
        }
    )
    cells = cells_of(spec)
    assert [c.folder for c in cells] == [f"{m}/{n}" for m in ("base", "online") for n in SWEEP.split()]
    record = sweep_cell_record(spec, next(c for c in cells if c.folder == "online/adam_mpc_bounded_seed0"))
    assert {k: record[k] for k in ("model", "planner", "mode", "seed")} == {
        "model": "online",
        "planner": "adam",
        "mode": "mpc_bounded",
        "seed": 0,
    }
    assert record["eval"]["protocol"] == protocol and record["eval"]["settings"]["bounded"] is True
    assert sweep_cell_record(spec, cells[0])["eval"]["protocol"] == "fixed"  # open loop: one plan under either


def test_the_modes_are_three_and_named_once():
    assert MODES == (OPEN, MPC, MPC_BOUNDED) == (Mode(False), Mode(True), Mode(True, True))
    assert [m.name for m in MODES] == ["open", "mpc", "mpc_bounded"]
    assert [m.label for m in MODES] == ["open loop", "MPC", "MPC, bounded"]
    assert [mode_named(m.name) for m in MODES] == list(MODES)
    with pytest.raises(ValueError, match="unknown mode 'closed'; choose from open, mpc, mpc_bounded"):
        mode_named("closed")
    with pytest.raises(ValueError, match="--protocol paper is a replanning loop"):
        Cell("adam", OPEN, "paper")
