"""The task registry: a task defined and registered in this file alone (its simulator, its collector and one
`register_task` call) is collected, trained on and evaluated through the CLI, is a choice of --env and a
gymnasium id; a name or a gymnasium name already taken is refused.

Adding a task touches one file: its own module. Everything else (make_task, collect, presets, planning
defaults, gymnasium ids, the CLI's --env) reads the registry; a task of wmplan's own also adds its
`register_task` call to src/wmplan/builtin_tasks.py (and its page in docs/tasks.md)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import gymnasium
import numpy as np
import pytest

from wmplan.cli import main
from wmplan.cli.entry import build_parser
from wmplan.data.episode_arrays import episode_arrays
from wmplan.envs.base import as_batch, settings_from_dict
from wmplan.tasks import DemoRecipe, TaskPlanning, TaskSpec, register_task, task_names, unregister_task

TOY = "dot"


@dataclass(frozen=True)
class DotSettings:
    image_size: int = 16
    speed: float = 0.1
    """How far a unit action moves the dot, in arena widths."""
    success_distance: float = 0.15


class DotTask:
    """A dot in the unit square, moved by its (clipped) action; its image is a bright square on black."""

    name, distance_name = TOY, "distance"
    state_dim = proprio_dim = action_dim = 2
    action_low, action_high = -np.ones(2), np.ones(2)

    def __init__(self, config: DotSettings):
        self.config, self.image_size = config, config.image_size
        self._state = np.full((1, 2), 0.5)

    @property
    def settings(self) -> dict:
        return asdict(self.config)

    @property
    def num_envs(self) -> int:
        return len(self._state)

    def reset_to(self, state: np.ndarray) -> None:
        self._state = as_batch(state, 2, "state").copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        move = np.clip(as_batch(action, 2, "action"), -1, 1) * self.config.speed
        self._state = np.clip(self._state + move, 0, 1)
        return self.get_state()

    def render(self, state: np.ndarray | None = None) -> np.ndarray:
        state = self._state if state is None else as_batch(state, 2, "state")
        size = self.image_size
        images = np.zeros((len(state), size, size, 3), np.uint8)
        cells = np.clip((state * (size - 2)).astype(int), 0, size - 2)
        for image, (x, y) in zip(images, cells, strict=True):
            image[y : y + 2, x : x + 2] = 255
        return images

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def proprio(self, state: np.ndarray) -> np.ndarray:
        return np.asarray(state)[..., :2]

    def distance(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(state) - np.asarray(goal), axis=-1)

    def is_success(self, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
        return self.distance(state, goal) < self.config.success_distance

    def sample_start_goal(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        start = rng.uniform(0.2, 0.8, (n, 2))
        return start, np.clip(start + rng.uniform(-0.3, 0.3, (n, 2)), 0, 1)


@dataclass(frozen=True)
class DotWalkConfig:
    steps: int = 12

    def check(self) -> None:
        if self.steps < 1:
            raise ValueError(f"collector setting steps must be at least 1, got {self.steps}")


def random_dot_walk(task: DotTask, rng: np.random.Generator, n: int, cfg: DotWalkConfig) -> dict[str, np.ndarray]:
    task.reset_to(rng.uniform(0, 1, (n, 2)))
    states, images, actions = [task.get_state()], [task.render()], []
    for _ in range(cfg.steps):
        actions.append(rng.uniform(-1, 1, (n, 2)))
        states.append(task.step(actions[-1]))
        images.append(task.render())
    return episode_arrays(task, states, images, actions)


DOT_SPEC = TaskSpec(
    gym_name="Dot",
    run_defaults={"data.num_hist": 1, "data.frameskip": 1},
    planning=TaskPlanning(
        alpha=1.0,
        cem_iterations=2,
        open_loop_objective="last",
        mpc_objective="last",
        mpc_execute=5,
        chosen_on="unsearched",
    ),
    demo=DemoRecipe(collect_episodes=20, train={}, encoders=("state",), bounded_cells=False),
    reports_distance=False,
    paper_success=None,
    render_fps=10,
)


def register_dot(name: str = TOY, spec: TaskSpec = DOT_SPEC):
    return register_task(
        name,
        spec,
        simulator=DotTask,
        settings=lambda values: settings_from_dict(DotSettings, values, "dot settings"),
        collector=random_dot_walk,
        collector_config=DotWalkConfig,
    )


@pytest.fixture
def dot():
    """The toy task, registered for one test only."""
    entry = register_dot()
    yield entry
    unregister_task(TOY)


def test_a_task_registered_in_one_file_is_collected_trained_and_evaluated(dot, tmp_path):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    assert main(["collect", "--env", TOY, "--episodes", "6", "--out", str(data), "--collector-set", "steps=8"]) == 0
    settings = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=2"]
    assert (
        main(["train", "--data", str(data), "--out", str(run), "--preset", "tiny", "--encoder", "state", *settings])
        == 0
    )
    assert json.loads((run / "config.json").read_text())["dims"]["task"] == TOY
    assert main(["eval", "--run", str(run), "--planner", "cem", "--episodes", "2", "--mpc", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == TOY and summary["planning_calls"] == 2  # 10 model steps, 5 executed per plan
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 2


def test_a_registered_task_is_a_choice_of_env_and_a_gymnasium_id(dot, capsys):
    assert TOY in task_names()
    assert build_parser().parse_args(["collect", "--env", TOY, "--episodes", "1", "--out", "o"]).env == TOY
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    assert TOY in capsys.readouterr().out
    env = gymnasium.make("wmplan/Dot-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (16, 16, 3) and info["state"].shape == (2,)


def test_a_name_or_a_gymnasium_name_already_taken_is_refused(dot, capsys):
    with pytest.raises(ValueError, match="a task named 'wall' is already registered"):
        register_dot("wall")
    with pytest.raises(ValueError, match="task 'dot' already has the gymnasium name 'Dot'; choose another"):
        register_dot("dot2")
    assert main(["collect", "--env", "dot2", "--episodes", "1", "--out", "o"]) == 2
    assert "unknown task 'dot2'; available: dot, granular" in capsys.readouterr().err
