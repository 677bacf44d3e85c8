import json

import numpy as np

from wmplan.envs.wall import WallTask
from wmplan.evaluation.door_path import door_path_costs, door_paths, shape_of


def test_door_paths_go_through_the_door_and_never_into_the_wall():
    task = WallTask()
    c = task.config
    start, goal = np.array([[12.0, 50.0], [52.0, 10.0]]), np.array([[50.0, 12.0], [14.0, 52.0]])
    paths = door_paths(task, start, goal, 41)
    np.testing.assert_allclose(paths[:, -1], goal)
    # from the wall's face on the start's side, level with the goal: where a distance cost stops a planner
    faces = (c.wall_x - c.wall_half_width - 2 * c.dot_std, c.wall_x + c.wall_half_width + 2 * c.dot_std)
    np.testing.assert_allclose(paths[:, 0], [[faces[0], 12.0], [faces[1], 52.0]])
    assert not task.in_solid(paths.reshape(-1, 2)).any()
    crossing = np.abs(paths[..., 0] - c.wall_x) <= c.wall_half_width  # inside the wall's columns: only at the door
    assert crossing.any() and (np.abs(paths[..., 1][crossing] - c.door_y) < 1e-9).all()


def test_a_cost_that_rises_before_it_falls_is_told_from_one_that_only_falls():
    rising = np.array([[1.0, 1.5, 0.5, 0.0], [2.0, 2.5, 1.0, 0.1]])
    falling = np.array([[1.0, 0.8, 0.5, 0.0], [2.0, 1.0, 1.0, 0.1]])
    assert shape_of(rising)["rises"] == 1.0 and shape_of(rising)["mean_largest_rise"] > 0.2
    assert shape_of(falling)["rises"] == 0.0 and shape_of(falling)["mean_largest_rise"] == 0.0


def test_the_state_models_cost_rises_like_the_true_distance_on_detour_pairs(tiny_run, tmp_path):
    result = door_path_costs({"state": tiny_run}, tmp_path / "d", episodes=20, points=21)
    assert (
        result["pairs"] > 0 and json.loads((tmp_path / "d" / "door_path.json").read_text())["pairs"] == result["pairs"]
    )
    assert (tmp_path / "d" / "door_path.png").exists()
    # the state encoder is the true position: leaving the wall's face for the door moves away from the goal on
    # most detour pairs, for the true distance and for the latent cost alike
    assert result["true distance"]["rises"] > 0.5 and result["state"]["rises"] > 0.5
