"""The gymnasium ids wmplan/<Name>-v0 of every registered task (wmplan.tasks), registered by `import wmplan`
(when gymnasium is installed) and by `register_task` for a task registered later.

Registration names lazy entry points, so it imports no simulator (MuJoCo, pymunk) and no torch: those load
on the first `gymnasium.make`. Each id declares its evaluation budget as `max_episode_steps`: the env steps
an MPC episode of `wmplan eval` executes (MPC_MODEL_STEPS model steps of the task's frameskip). Each id also
names a `vector_entry_point`, the batched TaskVectorEnv (wmplan.envs.gym_vector_env), so
`gymnasium.make_vec(id, num_envs=N)` steps N copies in one simulator, truncated at the same budget.
"""

from __future__ import annotations

from wmplan.config import DataConfig
from wmplan.defaults import MPC_MODEL_STEPS
from wmplan.tasks import task_names, task_spec


def gym_id(task: str) -> str:
    return f"wmplan/{task_spec(task).gym_name}-v0"


def episode_budget(task: str) -> int:
    """Env steps of an MPC evaluation episode: MPC_MODEL_STEPS x the task's frameskip."""
    frameskip = task_spec(task).run_defaults.get("data.frameskip", DataConfig().frameskip)
    return MPC_MODEL_STEPS * int(frameskip)


def register_gym_id(task: str) -> None:
    """Register one task with gymnasium under wmplan/<Name>-v0 (idempotent; nothing without gymnasium)."""
    try:
        import gymnasium
    except ImportError:  # gymnasium is a dependency; without it there is nothing to register with
        return
    if gym_id(task) not in gymnasium.registry:
        gymnasium.register(
            id=gym_id(task),
            entry_point="wmplan.envs.gym_env:TaskEnv",
            vector_entry_point="wmplan.envs.gym_vector_env:TaskVectorEnv",
            kwargs={"task": task},
            max_episode_steps=episode_budget(task),
        )


def unregister_gym_id(task: str) -> None:
    try:
        import gymnasium
    except ImportError:
        return
    gymnasium.registry.pop(gym_id(task), None)


def register_gymnasium() -> None:
    """Register every task with gymnasium under wmplan/<Name>-v0 (idempotent)."""
    for task in task_names():
        register_gym_id(task)
