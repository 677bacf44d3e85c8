"""The planner registry: a planner defined and registered in this file alone plans `wmplan eval` open loop and
under MPC, is a choice of the CLI and of a sweep, reads the planner.<field> settings its stage config has (and
no other), and appears under its own name and colour in the reports; the built-in entries say what the code
used to list per planner."""

import json
from dataclasses import dataclass

import pytest
import torch

from wmplan.cli import main
from wmplan.cli.entry import build_parser
from wmplan.cli_types import CommandLineError
from wmplan.envs import make_task
from wmplan.evaluation.eval_config import EvalConfig, build_planner
from wmplan.evaluation.report import efficiency_legend
from wmplan.experiments.sweep_spec import spec_from_dict
from wmplan.models.world_model import Latent, WorldModel
from wmplan.planning import CEMConfig, GDConfig
from wmplan.planning.objective import randn, resolve_generators
from wmplan.planning.registry import (
    PlannerEntry,
    planner_colour,
    planner_entry,
    planner_names,
    planner_title,
    planners_taking,
    register_planner,
    unregister_planner,
)

TOY = "shooting"
BUILTIN = ("gd", "adam", "cem", "cem_best", "hybrid", "multistart")
PLANNED: list[int] = []
"""The episodes of each planning call the toy planner made (a planner's cfg is what summaries record)."""


@dataclass
class ShootingConfig:
    samples: int = 8
    """Random action sequences drawn per episode (planner.samples)."""
    horizon: int = 5
    """Model steps planned (planner.horizon)."""


class ShootingPlanner:
    """Random shooting: `samples` sequences from N(0, 1) per episode, the one the model scores lowest kept."""

    def __init__(self, cfg: ShootingConfig, objective):
        self.cfg, self.objective = cfg, objective
        self.last_costs: torch.Tensor | None = None
        self.on_step = None

    @torch.no_grad()
    def plan(self, model, z0: Latent, goal: Latent, init=None, generator=None) -> torch.Tensor:
        b, s, h, device = z0.visual.shape[0], self.cfg.samples, self.cfg.horizon, z0.visual.device
        candidates = randn((b, s, h, model.action_dim), resolve_generators(generator, b, device), device)
        costs = torch.stack([self.objective.cost(model.rollout(z0, candidates[:, i]), goal, h) for i in range(s)], 1)
        best = costs.argmin(1)
        self.last_costs = costs.gather(1, best[:, None])[:, 0]
        PLANNED.append(b)
        return candidates[torch.arange(b), best]


def build_shooting(s, setup) -> ShootingPlanner:
    return ShootingPlanner(ShootingConfig(samples=s.samples, horizon=s.horizon), setup.objective)


@pytest.fixture
def shooting():
    """The toy planner, registered for one test only (its one setting of its own: planner.samples)."""
    entry = register_planner(PlannerEntry(TOY, "random shooting", "tab:brown", (ShootingConfig,), build_shooting))
    PLANNED.clear()
    yield entry
    unregister_planner(TOY)


@pytest.mark.parametrize("mpc", [False, True], ids=["open_loop", "mpc"])
def test_a_planner_registered_in_one_file_plans_an_eval(shooting, tiny_run, tmp_path, mpc):
    out = tmp_path / "eval"
    argv = ["eval", "--run", str(tiny_run), "--planner", TOY, "--episodes", "3", "--set", "planner.samples=6"]
    assert main([*argv, *(["--mpc"] if mpc else []), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planner"] == TOY and summary["mpc"] is mpc
    assert summary["planner_config"] == {"samples": 6, "horizon": 5}  # the toy's own config, from the settings
    replans = 2 if mpc else 1  # Wall executes 5 model steps of each plan, 10 in all (wmplan.tasks)
    assert PLANNED == [3] * replans and summary["planning_calls"] == replans
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 3


def test_a_registered_planner_is_a_choice_of_the_cli_and_of_a_sweep(shooting, tiny_run):
    assert planner_names() == (*BUILTIN, TOY)
    assert build_parser().parse_args(["eval", "--run", "r", "--planner", TOY, "--out", "o"]).planner == TOY
    spec = spec_from_dict({"models": {"base": str(tiny_run)}, "planners": ["adam", TOY], "planner": {"samples": 6}})
    assert spec.planners == ["adam", TOY]
    with pytest.raises(ValueError, match=f"sweep planners \\['newton'\\] unknown .* multistart, {TOY}"):
        spec_from_dict({"models": {"base": str(tiny_run)}, "planners": ["newton"]})


def test_a_registered_planner_reads_the_settings_its_stage_config_has(shooting, tiny_run, tmp_path, capsys):
    assert planners_taking("samples", mpc=False) == ["cem", "cem_best", "hybrid", TOY]
    assert TOY not in planners_taking("lr", mpc=True) and TOY in planners_taking("precision", mpc=False)
    argv = ["eval", "--run", str(tiny_run), "--planner", TOY, "--set", "planner.lr=0.1", "--out", str(tmp_path / "e")]
    assert main(argv) == 2
    assert f"planner.lr does not apply to --planner {TOY}: only gd, adam, multistart, hybrid read it" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "e").exists()
    with pytest.raises(
        ValueError, match=f"planner.samples does not apply to the sweep's planners adam: .*, {TOY} read"
    ):
        spec_from_dict({"models": {"base": str(tiny_run)}, "planners": ["adam"], "planner": {"samples": 6}})


def test_the_reports_name_and_colour_a_registered_planner(shooting):
    grid = {("base", TOY, True, False): None, ("base", "adam", True, False): None}
    legend = efficiency_legend({"conv": grid})  # type: ignore[dict-item]
    assert legend == [
        dict(color="tab:orange", marker="o", label="Adam"),
        dict(color="tab:brown", marker="o", label="random shooting"),
    ]
    unregister_planner(TOY)
    try:  # results of a planner this installation lacks: its name, in grey
        assert (planner_title(TOY), planner_colour(TOY)) == (TOY, "grey")
        assert efficiency_legend({"conv": grid}) == [dict(color="tab:orange", marker="o", label="Adam")]  # type: ignore[dict-item]
    finally:
        register_planner(shooting)


def test_registering_refuses_a_taken_name_or_colour_a_folder_unfit_name_and_stages_of_no_dataclass(shooting):
    with pytest.raises(ValueError, match="a planner named 'cem' is already registered"):
        register_planner(PlannerEntry("cem", "again", "tab:cyan", (CEMConfig,), build_shooting))
    with pytest.raises(ValueError, match="planner name 'Shoot/2' cannot name a result folder"):
        register_planner(PlannerEntry("Shoot/2", "other", "tab:cyan", (ShootingConfig,), build_shooting))
    with pytest.raises(ValueError, match="planner 'other' must give the dataclass configs of its stages"):
        register_planner(PlannerEntry("other", "other", "tab:cyan", (dict,), build_shooting))
    with pytest.raises(ValueError, match="planner 'other' takes the colour 'tab:brown' of planner 'shooting'"):
        register_planner(PlannerEntry("other", "other", "tab:brown", (ShootingConfig,), build_shooting))
    assert "other" not in planner_names()


def test_an_entry_that_builds_no_planner_is_refused_naming_it(tiny_run):
    register_planner(PlannerEntry("plain", "plain", "tab:cyan", (ShootingConfig,), lambda s, setup: object()))
    try:
        model = WorldModel.load(tiny_run)
        with pytest.raises(TypeError, match="the plain planner's entry built 'object', which is no Planner"):
            build_planner(EvalConfig(planner="plain"), model, make_task("wall"))
    finally:
        unregister_planner("plain")


def test_the_builtin_entries_say_what_the_code_used_to_list():
    assert planner_names() == BUILTIN  # nothing registered by an earlier test is left
    entries = [planner_entry(n) for n in BUILTIN]
    assert {e.name: e.stages for e in entries} == {
        "gd": (GDConfig,),
        "adam": (GDConfig,),
        "cem": (CEMConfig,),
        "cem_best": (CEMConfig,),
        "hybrid": (CEMConfig, GDConfig),
        "multistart": (GDConfig,),
    }
    assert [e.title for e in entries] == ["GD", "Adam", "CEM", "CEM, best kept", "CEM then Adam", "Adam, 8 starts"]
    assert [e.colour for e in entries] == ["tab:blue", "tab:orange", "tab:green", "tab:olive", "tab:purple", "tab:red"]
    assert planners_taking("warm_steps", mpc=False) == ["hybrid"]  # open loop, only a stage after the first
    assert planners_taking("warm_steps", mpc=True) == ["gd", "adam", "multistart", "hybrid"]
    with pytest.raises(CommandLineError, match=f"invalid choice: '{TOY}'"):
        build_parser().parse_args(["eval", "--run", "r", "--planner", TOY, "--out", "o"])
