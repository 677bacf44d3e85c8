import json

import numpy as np
import pytest

from wmplan.cli import main
from wmplan.envs import make_task
from wmplan.evaluation.sim_reference import greedy_reference


def test_greedy_reference_never_moves_away_and_gets_closer_on_rope(tmp_path):
    summary = greedy_reference("rope", tmp_path / "ref", episodes=4, pushes=3, candidates=20, progress=False)
    after = np.array(summary["mean_distance_after"])
    # the pairs are eval's: the distance before any push is the start's
    start, goal = make_task("rope").sample_start_goal(np.random.default_rng(99), 4)
    assert after[0] == pytest.approx(make_task("rope").distance(start, goal).mean())
    assert np.all(np.diff(after) <= 1e-12)  # a greedy step keeps the state when no candidate gets closer
    assert after[-1] < 0.8 * after[0]  # three aimed pushes out of 20 candidates do bring a rope closer
    assert json.loads((tmp_path / "ref" / "summary.json").read_text())["mean_distance_after"] == summary["mean_distance_after"]


def test_reference_cli_rejects_tasks_without_particles(tmp_path, capsys):
    assert main(["reference", "--env", "wall", "--out", str(tmp_path / "r"), "--episodes", "1", "--pushes", "1"]) == 2
    assert "rope, granular" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["reference", "--env", "granular", "--out", str(tmp_path / "g"), "--episodes", "2", "--pushes", "1", "--candidates", "4"]) == 0
    assert "greedy planning in the simulator" in capsys.readouterr().out
