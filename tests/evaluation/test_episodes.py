import dataclasses
import json

import numpy as np
import pytest
import torch

from wmplan import precision
from wmplan.cli import main
from wmplan.envs import make_task
from wmplan.evaluation.episodes import evaluate
from wmplan.evaluation.eval_config import EvalConfig, PlannerSettings
from wmplan.models.world_model import Latent, WorldModel
from wmplan.planning.mpc import MPC, MPCConfig, shift_plan


def test_mpc_warm_start_shifts_the_plan_by_the_executed_steps():
    class RecordingPlanner:
        cfg = type("C", (), {"horizon": 5})()

        def __init__(self):
            self.inits, self.calls = [], 0

        def plan(self, model, z0, goal, init=None, generator=None):
            self.inits.append(init)
            self.calls += 1
            return torch.arange(5.0)[None, :, None].repeat(2, 1, 3) + 10 * self.calls  # (B=2, H=5, A=3)

    planner = RecordingPlanner()
    executed = []
    latent = Latent(torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1))
    MPC(planner, MPCConfig(replans=3, execute=2)).run(None, lambda: latent, lambda a, i: executed.append(a), latent)
    assert planner.inits[0] is None
    for call in (1, 2):  # the warm start is the previous plan without its first 2 steps
        previous = torch.arange(5.0)[None, :, None].repeat(2, 1, 3) + 10 * call
        torch.testing.assert_close(planner.inits[call], previous[:, 2:])
    assert [e.shape for e in executed] == [(2, 2, 3)] * 3
    torch.testing.assert_close(shift_plan(torch.ones(1, 5, 2), 1), torch.ones(1, 4, 2))


def test_paper_protocol_plans_only_the_episodes_not_yet_done_and_stops_when_all_are():
    class Planner:
        cfg = type("C", (), {"horizon": 3})()

        def __init__(self):
            self.batches = []

        def plan(self, model, z0, goal, init=None, generator=None):
            self.batches.append((z0.visual[:, 0, 0, 0].tolist(), init.shape[0] if init is not None else None))
            return torch.ones(z0.visual.shape[0], 3, 1)

    latent = Latent(torch.arange(3.0).reshape(3, 1, 1, 1), torch.zeros(3, 1, 1))
    calls, stepped = [], []
    done_after = {0: 1, 1: 3, 2: 2}  # episode -> the boundary at which it is reached

    def done():
        calls.append(None)
        return torch.tensor([len(calls) >= done_after[i] for i in range(3)])

    planner = Planner()
    result = MPC(planner, MPCConfig(replans=10, execute=3)).run(
        None, lambda: latent, lambda a, active: stepped.append(active.tolist()), latent, done=done
    )
    assert [b[0] for b in planner.batches] == [[0.0, 1.0, 2.0], [1.0, 2.0], [1.0]]  # frozen episodes not replanned
    assert [b[1] for b in planner.batches] == [None, 2, 1]  # the warm starts follow the active episodes
    assert stepped == [[0, 1, 2], [1, 2], [1]]
    assert result.replans.tolist() == [1, 3, 2] and len(result.plan_seconds) == 3  # stopped before the cap of 10


def test_hold_keeps_an_episode_whose_current_frame_the_model_scores_at_least_as_close_as_its_plan():
    from wmplan.planning.objective import Objective

    class Planner:
        cfg = type("C", (), {"horizon": 3})()
        objective = Objective(alpha=0.0)

        def __init__(self):
            self.inits = []
            self.last_costs = None

        def plan(self, model, z0, goal, init=None, generator=None):
            self.inits.append(init)
            self.last_costs = torch.full((z0.visual.shape[0],), 0.5)  # both plans end 0.5 from the goal
            return torch.arange(3.0)[None, :, None].repeat(z0.visual.shape[0], 1, 1)

    # episode 0 sits on its goal (cost 0 <= 0.5: it holds), episode 1 is 2 away (cost 4 > 0.5: it moves)
    goal = Latent(torch.zeros(2, 1, 1, 1), torch.zeros(2, 1, 1))
    now = Latent(torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1), torch.zeros(2, 1, 1))
    planner, moved = Planner(), []
    result = MPC(planner, MPCConfig(replans=3, execute=1, hold=True)).run(
        None, lambda: now, lambda a, active: moved.append((a.shape[0], active.tolist())), goal
    )
    assert moved == [(1, [1])] * 3 and result.held.tolist() == [3, 0] and result.replans.tolist() == [3, 3]
    # the held episode's warm start is its plan's head (nothing of it was executed), the other's the shifted tail
    torch.testing.assert_close(planner.inits[1], torch.tensor([[0.0, 1.0], [1.0, 2.0]])[:, :, None])
    off = MPC(planner, MPCConfig(replans=2, execute=1)).run(
        None, lambda: now, lambda a, active: moved.append(active.tolist()), goal
    )
    assert moved[-2:] == [[0, 1], [0, 1]] and off.held.tolist() == [0, 0]  # without hold every episode moves


def test_paper_protocol_scores_each_episode_where_it_succeeded(tiny_run):
    cfg = EvalConfig(planner="adam", mpc=True, protocol="paper", episodes=8, seed=3, settings=PlannerSettings(steps=30))
    cfg.mpc_settings.max_replans = 4
    s = evaluate(tiny_run, cfg, None, progress=False)
    assert (
        s["protocol"] == "paper"
        and s["simulator_early_stop"]
        and s["mpc_config"] == {"replans": 4, "execute": 5, "hold": False}
    )
    replans, success = np.array(s["episode_replans"]), np.array(s["episode_success"])
    assert ((1 <= replans) & (replans <= 4)).all()
    assert success[replans < 4].all()  # the loop ends an episode early only where the simulator says it is reached
    assert 0 < success.mean() and s["mean_replans"] == replans.mean()
    assert (np.array(s["episode_final_distance"])[success] < make_task("wall").config.success_threshold).all()
    fixed = evaluate(tiny_run, dataclasses.replace(cfg, protocol="fixed"), None, progress=False)
    assert (
        fixed["protocol"] == "fixed" and not fixed["simulator_early_stop"] and set(fixed["episode_replans"]) == {2}
    )  # 2 whole plans


def test_same_seed_gives_the_same_pairs_and_summary(tiny_run, tmp_path):
    cfg = EvalConfig(planner="adam", episodes=6, seed=5, settings=PlannerSettings(steps=20))
    a = evaluate(tiny_run, cfg, tmp_path / "a", progress=False)
    b = evaluate(tiny_run, cfg, tmp_path / "b", progress=False)
    drop = lambda s: {k: v for k, v in s.items() if "seconds" not in k}
    assert drop(a) == drop(b)
    rows_a = [json.loads(line) for line in (tmp_path / "a" / "episodes.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (tmp_path / "b" / "episodes.jsonl").read_text().splitlines()]
    assert [(r["start"], r["goal"], r["final"]) for r in rows_a] == [
        (r["start"], r["goal"], r["final"]) for r in rows_b
    ]
    c = evaluate(
        tiny_run,
        EvalConfig(planner="cem", episodes=6, seed=5, settings=PlannerSettings(samples=20, topk=4, iterations=2)),
        None,
        progress=False,
    )
    rows_c_starts = make_task("wall").sample_start_goal(np.random.default_rng(5), 6)[0]
    np.testing.assert_allclose([r["start"] for r in rows_a], rows_c_starts)  # every planner sees the same pairs
    assert set(a) <= set(c) | {"run"}


def test_adam_on_a_tiny_wall_model_beats_random_actions(tiny_run):
    cfg = EvalConfig(planner="adam", episodes=24, seed=1, settings=PlannerSettings(steps=100))
    planned = evaluate(tiny_run, cfg, None, progress=False)
    task = make_task("wall")
    start, goal = task.sample_start_goal(np.random.default_rng(1), 24)
    task.reset_to(start)
    rng = np.random.default_rng(0)
    for _ in range(25):
        task.step(rng.uniform(-1, 1, (24, 2)))
    random_distance = task.distance(task.get_state(), goal).mean()
    initial_distance = task.distance(start, goal).mean()
    assert planned["mean_final_distance"] < 0.7 * min(random_distance, initial_distance)


def test_cli_eval_bounded_cem_mpc_writes_summary_and_gif(tiny_run, tmp_path, capsys):
    code = main(
        [
            "eval",
            "--run",
            str(tiny_run),
            "--planner",
            "cem",
            "--mpc",
            "--episodes",
            "4",
            "--out",
            str(tmp_path / "e"),
            "--set",
            "planner.bounded=true",
            "--set",
            "planner.samples=30",
            "--set",
            "planner.topk=5",
            "--set",
            "mpc.replans=2",
            "--video",
            "1",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["mpc"] and summary["planning_calls"] == 2 and summary["planner_config"]["bounded"]
    assert {"success_rate", "ci95", "seconds_per_plan", "episodes", "planner", "run"} <= set(summary)
    assert (tmp_path / "e" / "episode_00.gif").exists()
    assert (
        main(
            [
                "eval",
                "--run",
                str(tiny_run),
                "--planner",
                "adam",
                "--out",
                str(tmp_path / "x"),
                "--set",
                "planner.lrr=1",
            ]
        )
        == 2
    )
    assert "planner.lr" in capsys.readouterr().err


def test_cli_eval_objective_setting_reaches_the_planner(tiny_run, tmp_path, capsys):
    args = [
        "eval",
        "--run",
        str(tiny_run),
        "--planner",
        "adam",
        "--mpc",
        "--episodes",
        "2",
        "--set",
        "planner.steps=2",
        "--set",
        "mpc.replans=1",
    ]
    assert main([*args, "--out", str(tmp_path / "all"), "--set", "planner.objective=all"]) == 0
    assert json.loads((tmp_path / "all" / "summary.json").read_text())["objective"]["mode"] == "all"
    assert main([*args, "--out", str(tmp_path / "default")]) == 0  # Wall's MPC default
    assert json.loads((tmp_path / "default" / "summary.json").read_text())["objective"]["mode"] == "last"
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "planner.objective=first"]) == 2
    assert "planner.objective 'first'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_mpc_schedule_is_per_task_and_executes_the_same_model_steps(tiny_run):
    from wmplan.defaults import MPC_MODEL_STEPS
    from wmplan.evaluation.eval_config import MPCSettings

    default = MPCSettings()
    # Wall, PushT and PointMaze execute each whole plan; Rope one step (one push) of each (wmplan.tasks).
    assert default.resolve("pusht", 5) == MPCConfig(replans=2, execute=5)
    assert default.resolve("pointmaze", 5) == MPCConfig(replans=2, execute=5)
    assert default.resolve("wall", 5) == MPCConfig(replans=2, execute=5)
    assert default.resolve("rope", 5) == MPCConfig(replans=10, execute=1)
    assert default.resolve("rope", 5, "paper") == MPCConfig(replans=20, execute=5)  # whole plans, up to the cap
    for task in ("wall", "pusht", "pointmaze", "rope", "granular"):
        m = default.resolve(task, 5)
        assert m.replans * m.execute == MPC_MODEL_STEPS
    assert default.resolve("pusht", 3) == MPCConfig(replans=3, execute=3)  # never more than the plan holds
    assert MPCSettings(execute=2).resolve("pusht", 5) == MPCConfig(replans=5, execute=2)
    assert MPCSettings(replans=4).resolve("pusht", 5) == MPCConfig(replans=4, execute=5)
    cfg = EvalConfig(planner="adam", mpc=True, episodes=2, settings=PlannerSettings(steps=2))
    summary = evaluate(tiny_run, cfg, None, progress=False)
    assert summary["mpc_config"] == {"replans": 2, "execute": 5, "hold": False} and summary["planning_calls"] == 2


def test_the_summary_holds_exactly_the_declared_keys(tiny_run):
    from wmplan.evaluation.summary import EvalSummary

    summary = evaluate(
        tiny_run, EvalConfig(planner="adam", episodes=1, settings=PlannerSettings(steps=1)), None, progress=False
    )
    assert set(summary) == set(EvalSummary.__annotations__)


def _untimed(folder):
    return [
        {k: v for k, v in json.loads(line).items() if "seconds" not in k}
        for line in (folder / "episodes.jsonl").read_text().splitlines()
    ]


def test_auto_precision_on_a_cpu_without_bf16_instructions_is_fp32(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())
    settings = dict(planner="adam", mpc=True, episodes=3, seed=2)
    plain = evaluate(
        tiny_run,
        EvalConfig(**settings, settings=PlannerSettings(steps=5, precision="fp32")),
        tmp_path / "a",
        progress=False,
    )
    auto = evaluate(
        tiny_run,
        EvalConfig(**settings, settings=PlannerSettings(steps=5, precision="auto")),
        tmp_path / "b",
        progress=False,
    )
    assert plain["precision"] == auto["precision"] == "fp32"
    assert _untimed(tmp_path / "a") == _untimed(tmp_path / "b")
    with pytest.raises(ValueError, match="lacks the amx_bf16 or avx512_bf16 instructions"):
        evaluate(tiny_run, EvalConfig(**settings, settings=PlannerSettings(steps=5, precision="bf16")), progress=False)


def test_bf16_planning_runs_the_predictor_in_bf16_and_keeps_actions_and_costs_fp32(tiny_run, tmp_path, monkeypatch):
    # autocast itself runs on any CPU (slowly without the instructions): pretend they are there
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("avx512_bf16",))
    model = WorldModel.load(tiny_run, device="cpu")
    seen = []  # dtypes of the predictor's first linear layer's outputs while planning
    first_linear = next(m for m in model.predictor.modules() if isinstance(m, torch.nn.Linear))
    first_linear.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    cfg = EvalConfig(planner="adam", mpc=False, episodes=3, seed=2, settings=PlannerSettings(steps=5, precision="bf16"))
    summary = evaluate(model, cfg, tmp_path / "bf16", progress=False)
    assert summary["precision"] == "bf16" and set(seen) == {torch.bfloat16}
    assert all(np.isfinite(summary["episode_final_distance"]))
    # the predictor's output is cast back: the latents, and so the cost and the actions' gradients, are fp32
    task = make_task("wall")
    start, _ = task.sample_start_goal(np.random.default_rng(0), 2)
    z0 = model.encode(
        None, torch.as_tensor(task.proprio(start))[:, None].float(), torch.as_tensor(start)[:, None].float()
    )
    actions = torch.zeros(2, 2, model.action_dim, requires_grad=True)
    z = model.rollout(z0, actions)
    assert z.visual.dtype == torch.float32 and model.plan_bf16
    z.visual.sum().backward()
    assert actions.grad is not None and actions.grad.dtype == torch.float32
