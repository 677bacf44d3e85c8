import os
import subprocess
import sys
import warnings

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from wmplan.gymnasium_ids import episode_budget, gym_id
from wmplan.tasks import task_names, task_spec


def test_import_wmplan_alone_registers_every_id_lazily():
    """In a fresh interpreter: `import wmplan` then gymnasium.make and make_vec (the batched env, each id's
    vector entry point) for every id, and the import itself loads no simulator and no torch."""
    code = (
        "import sys, gymnasium, wmplan\n"
        "lazy = [m for m in ('mujoco', 'pymunk', 'torch', 'wmplan.envs') if m in sys.modules]\n"
        "assert not lazy, lazy\n"
        "for name in ('Wall', 'PointMaze', 'PushT', 'Rope', 'Granular'):\n"
        "    env = gymnasium.make(f'wmplan/{name}-v0')\n"
        "    obs, info = env.reset(seed=0)\n"
        "    assert obs.dtype.name == 'uint8' and 'state' in info\n"
        "    vec = gymnasium.make_vec(f'wmplan/{name}-v0', num_envs=2)\n"
        "    obs, info = vec.reset(seed=0)\n"
        "    assert type(vec).__name__ == 'TaskVectorEnv' and obs.shape[0] == 2 and info['state'].shape[0] == 2\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "egl"}
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_each_id_declares_its_evaluation_budget():
    budgets = {task: gymnasium.spec(gym_id(task)).max_episode_steps for task in task_names()}
    # 10 model steps of the task's frameskip (5 env steps; 1 on the deformable tasks, whose step is a push)
    assert budgets == {"wall": 50, "pointmaze": 50, "pusht": 50, "rope": 10, "granular": 10}
    assert all(budgets[task] == episode_budget(task) for task in task_names())
    env = gymnasium.make(gym_id("wall"))
    env.reset(seed=0)
    for _step in range(50):
        *_, terminated, truncated, _ = env.step(env.action_space.sample() * 0)
    assert truncated and not terminated  # the budget ends the episode


@pytest.mark.parametrize("task", task_names())
def test_check_env_passes_without_a_warning(task):
    env = gymnasium.make(gym_id(task))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []
    assert env.metadata["render_fps"] == task_spec(task).render_fps > 0
