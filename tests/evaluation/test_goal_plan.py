"""plan_to_goal: one open-loop plan from frames of one's own towards goal frames."""

from __future__ import annotations

import numpy as np
import pytest

from wmplan.envs import make_task
from wmplan.evaluation.goal_plan import plan_to_goal
from wmplan.models.world_model import WorldModel
from wmplan.planning import PlannerSettings


def frames(task, state: np.ndarray) -> dict[str, np.ndarray]:
    """A batch of frames as a simulator gives them: obs, state and proprio of each state."""
    return {"obs": task.render(state), "state": state, "proprio": task.proprio(state)}


def test_a_plan_towards_goal_frames_brings_the_simulator_closer_to_the_goals(tiny_run):
    model, task = WorldModel.load(tiny_run), make_task("wall")
    start, goal = task.sample_start_goal(np.random.default_rng(1), 8)
    actions = plan_to_goal(model, frames(task, start), frames(task, goal), "adam", PlannerSettings(steps=100))
    assert actions.shape == (8, 5 * model.cfg.data.frameskip, 2)  # horizon 5 model steps of frameskip env actions
    task.reset_to(start)
    for t in range(actions.shape[1]):
        task.step(actions[:, t])
    assert task.distance(task.get_state(), goal).mean() < 0.7 * task.distance(start, goal).mean()


def test_the_planner_and_its_settings_are_used_and_the_seed_fixes_the_plan(tiny_run):
    model, task = WorldModel.load(tiny_run), make_task("wall")
    start, goal = task.sample_start_goal(np.random.default_rng(2), 3)
    a, b = frames(task, start), frames(task, goal)
    cem = PlannerSettings(samples=16, topk=4, iterations=2)
    first = plan_to_goal(model, a, b, "cem", cem, seed=5)
    np.testing.assert_array_equal(first, plan_to_goal(model, a, b, "cem", cem, seed=5))
    assert not np.array_equal(first, plan_to_goal(model, a, b, "cem", cem, seed=6))
    assert plan_to_goal(model, a, b, "cem", PlannerSettings(samples=16, topk=4, iterations=2, horizon=2)).shape[1] == 10
    with pytest.raises(ValueError, match="planner.topk"):
        plan_to_goal(model, a, b, "cem", PlannerSettings(samples=4, topk=8))


def test_a_state_model_takes_frames_without_images_and_is_left_in_its_mode(tiny_run):
    model, task = WorldModel.load(tiny_run), make_task("wall")
    start, goal = task.sample_start_goal(np.random.default_rng(3), 2)
    without = {k: v for k, v in frames(task, start).items() if k != "obs"}
    model.train()
    settings = PlannerSettings(steps=5)
    assert plan_to_goal(model, without, frames(task, goal), "adam", settings).shape == (2, 25, 2)
    assert model.training and not model.plan_bf16


def test_frames_without_what_the_encoder_reads_or_of_the_wrong_shape_are_refused(tiny_run):
    model, task = WorldModel.load(tiny_run), make_task("wall")
    start, goal = task.sample_start_goal(np.random.default_rng(4), 2)
    a, b = frames(task, start), frames(task, goal)
    cases = [
        ({"obs": a["obs"], "proprio": a["proprio"]}, b, "start has no state: this model's state encoder reads state"),
        ({**a, "state": a["state"][0]}, b, r"start\['state'\] must have 2 axes.*\(2,\).*state\[None\]"),
        ({**a, "proprio": a["proprio"][:1]}, b, "start's arrays hold different numbers of frames"),
        (a, {k: v[:1] for k, v in b.items()}, "start holds 2 frames and goal 1"),
    ]
    for start_frames, goal_frames, words in cases:
        with pytest.raises(ValueError, match=words):
            plan_to_goal(model, start_frames, goal_frames, "adam", PlannerSettings(steps=2))
