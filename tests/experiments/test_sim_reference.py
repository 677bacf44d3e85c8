import json

import numpy as np
import pytest

from wmplan.cli import main
from wmplan.envs import make_task
from wmplan.experiments.sim_reference import cem_reference, greedy_reference, success_margin


def test_greedy_reference_never_moves_away_and_gets_closer_on_rope(tmp_path):
    summary = greedy_reference("rope", tmp_path / "ref", episodes=4, pushes=3, candidates=20, progress=False)
    after = np.array(summary["mean_distance_after"])
    # the pairs are eval's: the distance before any push is the start's
    start, goal = make_task("rope").sample_start_goal(np.random.default_rng(99), 4)
    assert after[0] == pytest.approx(make_task("rope").distance(start, goal).mean())
    assert np.all(np.diff(after) <= 1e-12)  # a greedy step keeps the state when no candidate gets closer
    assert after[-1] < 0.8 * after[0]  # three aimed pushes out of 20 candidates do bring a rope closer
    assert (
        json.loads((tmp_path / "ref" / "summary.json").read_text())["mean_distance_after"]
        == summary["mean_distance_after"]
    )


def test_cem_in_the_simulator_reaches_wall_goals_on_evals_pairs(tmp_path):
    summary = cem_reference("wall", tmp_path / "ref", episodes=6, progress=False)
    start, goal = make_task("wall").sample_start_goal(np.random.default_rng(99), 6)
    assert summary["mean_initial_distance"] == pytest.approx(make_task("wall").distance(start, goal).mean())
    # the pairs lie on opposite sides of the wall, ~27 px apart: only a plan through the door gets there
    assert summary["mean_final_distance"] < 0.2 * summary["mean_initial_distance"] and summary["success_rate"] >= 5 / 6
    assert summary["iterations"] == 10 and summary["samples"] == 300 and summary["horizon"] * summary["frameskip"] == 25
    assert (
        cem_reference("wall", episodes=6, progress=False)["mean_final_distance"] == summary["mean_final_distance"]
    )  # seeded
    assert json.loads((tmp_path / "ref" / "summary.json").read_text())["success_rate"] == summary["success_rate"]


def test_success_margin_is_below_one_exactly_on_success():
    task = make_task("pusht")
    goal = np.array([[200.0, 200.0, 300.0, 300.0, 1.0, 0.0, 0.0]] * 3)
    state = goal.copy()
    state[1, 0] += 25.0  # position error 25 > 20
    state[2, 4] += 0.5  # angle error 0.5 > pi / 9
    margin = success_margin(task, state, goal)
    assert margin[0] == 0.0 and margin[1] == pytest.approx(25 / 20) and margin[2] == pytest.approx(0.5 / (np.pi / 9))
    assert list(task.is_success(state, goal)) == [True, False, False]


def test_reference_cli_picks_cem_or_greedy_pushes_by_task(tmp_path, capsys):
    assert main(["reference", "--env", "wall", "--out", str(tmp_path / "r"), "--episodes", "2"]) == 0
    assert "CEM in the simulator" in capsys.readouterr().out and (tmp_path / "r" / "summary.json").exists()
    assert main(["reference", "--env", "nope", "--out", str(tmp_path / "n"), "--episodes", "2"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert (
        main(
            [
                "reference",
                "--env",
                "granular",
                "--out",
                str(tmp_path / "g"),
                "--episodes",
                "2",
                "--pushes",
                "1",
                "--candidates",
                "4",
            ]
        )
        == 0
    )
    assert "greedy planning in the simulator" in capsys.readouterr().out


def test_the_simulator_reference_under_both_mpc_protocols(tmp_path, capsys):
    from wmplan.evaluation.eval_config import MPCSettings
    from wmplan.experiments.sim_cem import SimBudget

    small = SimBudget.of("wall", samples=60, topk=6, iterations=3)
    paper = cem_reference(
        "wall", episodes=8, protocol="paper", mpc=MPCSettings(max_replans=4), budget=small, progress=False
    )
    replans, success = np.array(paper["episode_replans"]), np.array(paper["episode_success"])
    assert paper["mpc_config"] == {"replans": 4, "execute": 5} and ((1 <= replans) & (replans <= 4)).all()
    assert success[replans < 4].all()  # an episode leaves the loop early only where the simulator says reached
    assert paper["success_rate"] >= cem_reference("wall", episodes=8, budget=small, progress=False)["success_rate"]
    fixed = cem_reference(
        "wall", episodes=8, protocol="fixed", mpc=MPCSettings(replans=3), budget=small, progress=False
    )
    assert fixed["mpc_config"] == {"replans": 3, "execute": 5} and set(fixed["episode_replans"]) == {3}
    assert main(["reference", "--env", "wall", "--protocol", "paper", "--out", str(tmp_path / "r")]) == 2
    assert "add --mpc" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_candidates_simulated_in_chunks_give_the_states_of_one_batch(monkeypatch):
    """PointMaze holds one MjData per candidate copy: the reference simulates them a chunk at a time,
    which must not change a single plan."""
    from wmplan.experiments import sim_cem

    small = sim_cem.SimBudget.of("pointmaze", samples=12, topk=3, iterations=2, horizon=2)
    whole = cem_reference("pointmaze", episodes=3, budget=small, progress=False)
    monkeypatch.setattr(sim_cem, "SIM_CHUNK", 5)  # 36 copies per iteration, in 8 chunks, the last one short
    chunked = cem_reference("pointmaze", episodes=3, budget=small, progress=False)
    assert chunked["episode_final_distance"] == whole["episode_final_distance"]


def test_a_smaller_pointmaze_batch_after_a_larger_one_steps_only_its_own_copies():
    """The copies beyond a batch are kept for reuse (freeing and making them again fragmented the heap):
    they must never leak into a smaller batch's states."""
    from wmplan.envs import make_task

    task = make_task("pointmaze")
    start, _ = task.sample_start_goal(np.random.default_rng(0), 5)
    task.reset_to(start)
    task.step(np.ones((5, 2)))
    task.reset_to(start[:2])
    assert task.num_envs == 2 and task.get_state().shape == (2, 4)
    moved = task.step(np.full((2, 2), -1.0))
    fresh = make_task("pointmaze")
    fresh.reset_to(start[:2])
    np.testing.assert_array_equal(moved, fresh.step(np.full((2, 2), -1.0)))
