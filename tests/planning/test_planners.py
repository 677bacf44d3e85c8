"""Planners on hand-written differentiable "models" (no trained world model): a linear and a nonlinear
system whose goals are reachable by construction, so a good planner drives the cost to ~0; and the
planners beyond the paper's three (multi-start Adam keeps its lowest start, CEM with its best sample kept
escapes the averaged mean of two solutions, the hybrid is exactly CEM followed by Adam from CEM's mean)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wmplan.models.world_model import Latent
from wmplan.planning import (
    CEMConfig,
    CEMPlanner,
    GDConfig,
    GDPlanner,
    HybridConfig,
    HybridPlanner,
    Objective,
    Planner,
    objective_for,
)
from wmplan.planning.objective import randn

torch.set_num_threads(1)
S, A, H = 4, 6, 5  # state dim (one visual token of 4 dims; proprio = its first 2 dims), action dim, horizon


def latent(states: torch.Tensor) -> Latent:
    """States (B, T, S) -> visual (B, T, 1, S), proprio (B, T, 2)."""
    return Latent(states[:, :, None], states[:, :, :2])


def orthonormal_rows(seed: int) -> torch.Tensor:
    """(S, A) with orthonormal rows: a well-conditioned map from actions to states, so plain GD with a
    fixed step converges at a predictable rate."""
    q, _ = torch.linalg.qr(torch.randn(A, A, generator=torch.Generator().manual_seed(seed)))
    return q[:S]


class LinearModel:
    """s' = s + B a: the cost is a convex quadratic in the actions."""

    action_dim = A

    def __init__(self) -> None:
        self.b = 0.3 * orthonormal_rows(seed=1)

    def step(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s + a @ self.b.T

    def rollout(self, z0: Latent, actions: torch.Tensor) -> Latent:
        s, frames = z0.visual[:, -1, 0], []
        for t in range(actions.shape[1]):
            s = self.step(s, actions[:, t])
            frames.append(s)
        return Latent.cat([z0, latent(torch.stack(frames, 1))])


class TanhModel(nn.Module, LinearModel):
    """s' = s + tanh(W a): nonlinear, each step moves each coordinate by less than 1. W is a parameter,
    so planning must not leave a .grad on it."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.w = nn.Parameter(0.5 * orthonormal_rows(seed=2))

    def step(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s + torch.tanh(a @ self.w.T)


def problem(model, batch: int = 3, seed: int = 0, scale: float = 0.5) -> tuple[Latent, Latent]:
    """Context (B, 1, ...) and a goal (B, 1, ...) reached by rolling out known actions."""
    g = torch.Generator().manual_seed(seed)
    z0 = latent(torch.randn(batch, 1, S, generator=g))
    with torch.no_grad():
        goal = model.rollout(z0, scale * torch.randn(batch, H, A, generator=g)).frames(-1)
    return z0, goal


def make(kind: str, bounded: bool = False, low: float = -1.0, high: float = 1.0, **cfg):
    bounds = dict(action_low=torch.full((A,), low), action_high=torch.full((A,), high))
    if kind == "cem":
        return CEMPlanner(CEMConfig(horizon=H, bounded=bounded, **cfg), Objective(), **bounds)
    return GDPlanner(
        GDConfig(optimizer=kind, horizon=H, bounded=bounded, **{"lr": 0.3 if kind == "adam" else 1.0, **cfg}),
        Objective(),
        **bounds,
    )


def row(z: Latent, i: int) -> Latent:
    """Episode i of a batch, keeping the batch axis."""
    return Latent(z.visual[i : i + 1], z.proprio[i : i + 1])


def per_episode(seeds: list[int]) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


# ----- objective ---------------------------------------------------------------------------------------
def test_objective_last_and_all_hand_computed():
    # One episode, context frame 0 then H = 2 predicted frames; goal 0. Per frame: visual MSE over
    # P * D = 2 values, proprio MSE over Ep = 1 value.
    visual = torch.tensor([[[[9.0], [9.0]], [[1.0], [3.0]], [[2.0], [2.0]]]])  # (1, 3, 2, 1)
    proprio = torch.tensor([[[9.0], [2.0], [1.0]]])  # (1, 3, 1)
    z, goal = Latent(visual, proprio), Latent(torch.zeros(1, 1, 2, 1), torch.zeros(1, 1, 1))
    # frame 1: (1 + 9) / 2 + 0.5 * 4 = 7; frame 2: (4 + 4) / 2 + 0.5 * 1 = 4.5; frame 0 (context) is ignored
    assert Objective(alpha=0.5, mode="last").cost(z, goal).item() == pytest.approx(4.5)
    assert Objective(alpha=0.5, mode="all", base=2.0).cost(z, goal).item() == pytest.approx((2 * 7 + 4 * 4.5) / 6)
    assert Objective(alpha=0.5, mode="all", base=0.5).cost(z, goal).item() == pytest.approx(
        (0.5 * 7 + 0.25 * 4.5) / 0.75
    )
    # horizon=1 keeps only the last frame in "all" mode (the rest is context).
    assert Objective(alpha=0.5, mode="all").cost(z, goal, horizon=1).item() == pytest.approx(4.5)
    assert Objective(alpha=0.0).cost(z, goal).item() == pytest.approx(4.0)


def test_objective_for_defaults_and_overrides():
    assert objective_for("pointmaze").alpha == 0.0 and objective_for("wall").alpha == 1.0
    assert objective_for("pusht", mode="all", base=0.5) == Objective(alpha=1.0, mode="all", base=0.5)
    with pytest.raises(ValueError):
        objective_for("nope")


# ----- reaching reachable goals ------------------------------------------------------------------------
@pytest.mark.parametrize("model_cls", [LinearModel, TanhModel])
@pytest.mark.parametrize(
    "kind, noise, tol",
    [
        ("sgd", 0.0, 1e-8),  # without noise both optimisers converge to ~1e-13
        ("adam", 0.0, 1e-8),
        ("sgd", 0.003, 1e-4),  # the paper's noise sets a floor; Adam's normalised steps amplify it
        ("adam", 0.003, 2e-3),
        ("cem", None, 2e-2),  # CEM only samples: ~1e-3 to 1e-2 here, from costs of 0.05 to 3.6 at zero actions
    ],
)
def test_planner_reaches_goal(kind, noise, tol, model_cls):
    model = model_cls()
    z0, goal = problem(model, scale=1.0)
    planner = make(kind, iterations=15) if kind == "cem" else make(kind, steps=300, noise=noise)
    actions = planner.plan(model, z0, goal)
    assert actions.shape == (3, H, A) and not actions.requires_grad
    assert planner.last_costs.shape == (3,) and (planner.last_costs < tol).all(), planner.last_costs
    with torch.no_grad():
        final = model.rollout(z0, actions)
    assert torch.allclose(final.frames(-1).visual, goal.visual, atol=0.3 if kind == "cem" else 0.05)
    assert torch.allclose(planner.last_costs, Objective().cost(final, goal), atol=1e-6)
    if kind != "cem":
        assert planner.history.shape == (300,) and planner.history[-1] < 1e-2 * planner.history[0]


# ----- batching and seeding ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sgd", "adam", "cem"])
def test_batch_equals_each_episode_alone(kind):
    # With one generator per episode, every random draw of an episode (GD: randn init and the noise
    # after each step; CEM: all its samples) comes from its own generator, and the summed cost gives each
    # episode its own gradient. So planning N episodes in one batch must give, row by row, what planning
    # each alone gives: nothing (noise, optimiser state, elite selection) leaks between episodes.
    model, seeds = TanhModel(), [11, 12, 13]
    z0, goal = problem(model, batch=3)
    cfg = dict(iterations=3, samples=50, topk=5) if kind == "cem" else dict(steps=40, noise=0.01)
    batched = make(kind, **cfg).plan(model, z0, goal, generator=per_episode(seeds))
    for i, seed in enumerate(seeds):
        alone = make(kind, **cfg).plan(model, row(z0, i), row(goal, i), generator=per_episode([seed]))
        assert torch.allclose(batched[i : i + 1], alone, atol=1e-5), (kind, i)


@pytest.mark.parametrize("kind", ["adam", "cem"])
def test_same_seed_same_plan(kind):
    model = TanhModel()
    z0, goal = problem(model)
    cfg = dict(iterations=2, samples=40, topk=4) if kind == "cem" else dict(steps=20)

    def plan(seed: int) -> torch.Tensor:
        return make(kind, **cfg).plan(model, z0, goal, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(plan(5), plan(5))
    assert not torch.equal(plan(5), plan(6))
    assert torch.equal(make(kind, **cfg).plan(model, z0, goal), plan(0))  # the default generator is seeded 0
    state = torch.get_rng_state()
    plan(5)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never used


def test_cem_chunks_do_not_change_the_result():
    model = LinearModel()
    z0, goal = problem(model)
    cfg = dict(iterations=3, samples=40, topk=4)
    big = make("cem", chunk=4096, **cfg).plan(model, z0, goal)
    small = make("cem", chunk=7, **cfg).plan(model, z0, goal)  # chunks straddle episode boundaries
    assert torch.allclose(big, small, atol=1e-6)


# ----- bounds, warm starts, the model's parameters -----------------------------------------------------
@pytest.mark.parametrize("kind", ["sgd", "adam", "cem"])
def test_bounded_actions_stay_within_bounds(kind):
    model = LinearModel()
    z0, goal = problem(model, scale=2.0)  # the unbounded solution needs actions outside [-0.2, 0.3]
    cfg = dict(iterations=3, samples=50, topk=5) if kind == "cem" else dict(steps=50, noise=0.05)
    planner = make(kind, bounded=True, low=-0.2, high=0.3, **cfg)
    actions = planner.plan(model, z0, goal)
    assert actions.min() >= -0.2 and actions.max() <= 0.3
    assert (actions == 0.3).any() or (actions == -0.2).any()  # the bounds were active
    with pytest.raises(ValueError):
        GDPlanner(GDConfig(bounded=True), Objective())


def test_gd_warm_start_is_padded_per_init():
    model = LinearModel()
    z0, goal = problem(model, batch=2)
    warm = torch.randn(2, H - 2, A)
    planner = GDPlanner(GDConfig(steps=0, noise=0.0, horizon=H, init="zero"), Objective())
    actions = planner.plan(model, z0, goal, init=warm)
    assert torch.equal(actions[:, : H - 2], warm) and torch.equal(actions[:, H - 2 :], torch.zeros(2, 2, A))
    cem = CEMPlanner(CEMConfig(iterations=0, horizon=H), Objective())
    assert torch.equal(cem.plan(model, z0, goal, init=warm)[:, : H - 2], warm)


def test_warm_started_plans_take_warm_steps_and_a_plateau_stops_early_at_the_same_result():
    model = LinearModel()
    z0, goal = problem(model)
    planner = make("adam", steps=200, warm_steps=30, noise=0.0)
    cold = planner.plan(model, z0, goal)
    assert planner.history.shape == (200,)
    planner.plan(model, z0, goal, init=cold[:, 1:])
    assert planner.history.shape == (30,)
    # A plateau test: the run stops once the cost stalls, and its actions are those of a run whose fixed
    # step count ends at the same step (early stopping changes nothing but the count).
    stopping = make("adam", steps=400, plateau=1e-3, noise=0.0)
    early = stopping.plan(model, z0, goal)
    taken = len(stopping.history)
    assert 10 < taken < 400 and stopping.history[-1] < 1e-2 * stopping.history[0]
    fixed = make("adam", steps=taken - 1, noise=0.0).plan(model, z0, goal)
    assert torch.equal(early, fixed)


def test_eval_passes_warm_steps_and_plateau_to_the_gradient_planner(tiny_run):
    from wmplan.envs import make_task
    from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings, build_planner
    from wmplan.models.world_model import WorldModel

    model = WorldModel.load(tiny_run)
    settings = PlannerSettings(warm_steps=20, plateau=0.01)
    planner = build_planner(EvalConfig(planner="adam", mpc=True, settings=settings), model, make_task("wall"))
    assert planner.cfg.warm_steps == 20 and planner.cfg.plateau == 0.01 and planner.cfg.steps == 100
    with pytest.raises(ValueError, match="planner.warm_steps"):
        EvalConfig(settings=PlannerSettings(warm_steps=0)).check()


def test_gd_leaves_model_parameters_and_mode_alone():
    model = TanhModel().train()
    z0, goal = problem(model)
    with torch.no_grad():  # planning works even when called under no_grad
        make("adam", steps=10).plan(model, z0, goal)
    assert model.w.grad is None and model.w.requires_grad and model.training


def test_objective_modes_are_per_task_and_mode_and_eval_uses_them(tiny_run):
    from wmplan.evaluation.episodes import evaluate
    from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
    from wmplan.planning.objective import objective_mode

    modes = [(t, mpc, objective_mode(t, mpc)) for t in ("wall", "pusht", "pointmaze", "rope") for mpc in (False, True)]
    assert [m for _, _, m in modes] == ["last"] * 8, modes
    small = PlannerSettings(steps=2)
    assert (
        evaluate(tiny_run, EvalConfig(planner="adam", episodes=1, settings=small), progress=False)["objective"]["mode"]
        == "last"
    )
    forced = PlannerSettings(steps=2, objective="all")
    assert (
        evaluate(tiny_run, EvalConfig(planner="adam", episodes=1, settings=forced), progress=False)["objective"]["mode"]
        == "all"
    )


def test_every_task_has_planning_defaults_and_a_bad_entry_is_refused():
    from wmplan.planning.task_defaults import task_planning
    from wmplan.tasks import TaskPlanning

    assert (task_planning("pusht").cem_iterations, task_planning("wall").cem_iterations) == (30, 10)
    with pytest.raises(ValueError, match="unknown task 'nope'; available: granular, pointmaze"):
        task_planning("nope")
    good = dict(alpha=1.0, cem_iterations=10, open_loop_objective="last", mpc_objective="last", mpc_execute=1)
    TaskPlanning(**good).check("x")
    with pytest.raises(ValueError, match="x: mpc_execute must divide 10"):  # 3 model steps never add up to 10
        TaskPlanning(**{**good, "mpc_execute": 3}).check("x")
    with pytest.raises(ValueError, match="unknown objective mode 'first' in open_loop_objective"):
        TaskPlanning(**{**good, "open_loop_objective": "first"}).check("x")


def test_the_planners_and_the_world_model_meet_the_protocols(tiny_run):
    from wmplan.models.world_model import WorldModel
    from wmplan.planning import Dynamics

    objective = Objective()
    assert isinstance(GDPlanner(GDConfig(), objective), Planner) and isinstance(
        CEMPlanner(CEMConfig(), objective), Planner
    )
    assert isinstance(WorldModel.load(tiny_run), Dynamics)
    assert not isinstance(object(), Dynamics) and not isinstance(objective, Planner)


# ----- planners beyond the paper's three: multi-start Adam, CEM keeping its best sample, the hybrid ------
class SquareModel(LinearModel):
    """s' = s + (B a)^2 elementwise: a goal reached by actions a is reached by -a too, so a problem has
    two distinct solutions and their average (near 0) solves neither."""

    def step(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return s + (a @ self.b.T) ** 2


def test_multistart_returns_the_lowest_of_its_starts_each_run_alone():
    model = TanhModel()
    z0, goal = problem(model, batch=2, scale=1.5)
    k, cfg = 4, dict(optimizer="adam", lr=0.3, steps=25, noise=0.0, horizon=H)
    multi = GDPlanner(GDConfig(restarts=k, **cfg), Objective())
    actions = multi.plan(model, z0, goal, generator=torch.Generator().manual_seed(3))
    # the same starts, drawn as the planner draws them (the first per episode, then the K - 1 others)
    g = torch.Generator().manual_seed(3)
    first = randn((2, H, A), g, torch.device("cpu"))
    starts = torch.cat([first[:, None], randn((2, k - 1, H, A), g, torch.device("cpu"))], 1)
    for i in range(2):
        ends = []
        for j in range(k):
            single = GDPlanner(GDConfig(**cfg), Objective())
            ends.append((single.plan(model, row(z0, i), row(goal, i), init=starts[i, j : j + 1]), single.last_costs))
        costs = torch.cat([c for _, c in ends])
        best = int(costs.argmin())
        assert torch.allclose(actions[i], ends[best][0][0], atol=1e-5)
        assert torch.isclose(multi.last_costs[i], costs.min(), atol=1e-6)
        assert len(set(costs.tolist())) > 1  # the starts did end apart, so the choice mattered


def test_multistart_batch_equals_each_episode_alone():
    model, seeds = TanhModel(), [5, 6, 7]
    z0, goal = problem(model, batch=3)
    cfg = GDConfig(restarts=3, steps=15, noise=0.01, horizon=H)
    batched = GDPlanner(cfg, Objective()).plan(model, z0, goal, generator=per_episode(seeds))
    for i, seed in enumerate(seeds):
        alone = GDPlanner(cfg, Objective()).plan(model, row(z0, i), row(goal, i), generator=per_episode([seed]))
        assert torch.allclose(batched[i : i + 1], alone, atol=1e-5)


def test_cem_that_keeps_its_best_sample_beats_the_mean_of_two_solutions():
    model = SquareModel()
    z0, goal = problem(model, batch=4, scale=1.5)
    cfg = dict(samples=200, topk=20, iterations=4, horizon=H)
    plain, best = CEMPlanner(CEMConfig(**cfg), Objective()), CEMPlanner(CEMConfig(keep_best=True, **cfg), Objective())
    plain.plan(model, z0, goal)
    actions = best.plan(model, z0, goal)
    assert (best.last_costs < plain.last_costs).all(), (best.last_costs, plain.last_costs)
    with torch.no_grad():  # last_costs are the returned plan's own cost
        assert torch.allclose(best.last_costs, Objective().cost(model.rollout(z0, actions), goal), atol=1e-6)


def test_hybrid_is_cem_then_adam_from_its_mean():
    model = TanhModel()
    z0, goal = problem(model, scale=1.0)
    cem, gd = CEMConfig(iterations=2, samples=60, topk=6, horizon=H), GDConfig(steps=20, horizon=H)
    hybrid = HybridPlanner(HybridConfig(cem=cem, gd=gd), Objective())
    assert isinstance(hybrid, Planner) and hybrid.cfg.horizon == H
    actions = hybrid.plan(model, z0, goal, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    mean = CEMPlanner(cem, Objective()).plan(model, z0, goal, generator=g)
    expected = GDPlanner(gd, Objective()).plan(model, z0, goal, init=mean, generator=g)
    assert torch.equal(actions, expected)
    with pytest.raises(ValueError, match="different horizons"):
        HybridConfig(cem=CEMConfig(horizon=3), gd=GDConfig(horizon=5))


def test_restarts_below_one_are_refused():
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        GDPlanner(GDConfig(restarts=0), Objective())


@pytest.mark.parametrize("name", ["cem_best", "hybrid", "multistart"])
def test_eval_plans_with_each_planner_beyond_the_paper(tiny_run, name):
    from wmplan.evaluation.episodes import evaluate
    from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings

    small = PlannerSettings(steps=3, samples=8, topk=2, iterations=1, restarts=2)
    summary = evaluate(tiny_run, EvalConfig(planner=name, episodes=2, settings=small), progress=False)
    config = summary["planner_config"]
    assert summary["planner"] == name and summary["episodes"] == 2
    if name == "cem_best":
        assert config["keep_best"] is True and config["iterations"] == 1
    elif name == "hybrid":
        assert config["cem"]["iterations"] == 1 and config["gd"]["steps"] == 3 and config["gd"]["optimizer"] == "adam"
    else:
        assert config["restarts"] == 2 and config["optimizer"] == "adam"


def test_the_planner_defaults_beyond_the_paper(tiny_run):
    from wmplan.envs import make_task
    from wmplan.evaluation.eval_config import EvalConfig, build_planner
    from wmplan.models.world_model import WorldModel

    model = WorldModel.load(tiny_run)
    task = make_task("wall")
    assert build_planner(EvalConfig(planner="multistart"), model, task).cfg.restarts == 8
    assert build_planner(EvalConfig(planner="adam"), model, task).cfg.restarts == 1
    hybrid = build_planner(EvalConfig(planner="hybrid"), model, task).cfg
    assert (hybrid.cem.iterations, hybrid.gd.steps) == (3, 30)
    with pytest.raises(ValueError, match="unknown planner 'newton'; choose one of gd, adam, cem, cem_best"):
        build_planner(EvalConfig(planner="newton"), model, task)


@pytest.mark.parametrize("kind", ["adam", "cem"])
def test_planners_tell_their_progress_after_each_step(kind):
    model = LinearModel()
    z0, goal = problem(model)
    planner = make(kind, iterations=3, samples=20, topk=4) if kind == "cem" else make(kind, steps=4)
    told: list[str] = []
    planner.on_step = told.append
    planner.plan(model, z0, goal)
    assert told == ([f"cem {i}/3" for i in (1, 2, 3)] if kind == "cem" else [f"adam {i}/4" for i in (1, 2, 3, 4)])
