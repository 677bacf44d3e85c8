"""The batched gymnasium vector env: N copies in one simulator behave as N TaskEnv copies stepped one by one,
with gymnasium's next-step autoreset and the ids' evaluation budget as truncation."""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import wmplan  # noqa: F401  (registers the gymnasium ids)
from wmplan.envs.gym_vector_env import TaskVectorEnv
from wmplan.gymnasium_ids import episode_budget, gym_id
from wmplan.tasks import task_names


def _vector(task: str, n: int, **kwargs) -> TaskVectorEnv:
    env = gymnasium.make_vec(gym_id(task), num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(env, TaskVectorEnv)
    return env


def _pairs(env: TaskVectorEnv, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return env.task.sample_start_goal(np.random.default_rng(seed), env.num_envs)


def test_make_vec_gives_the_batched_env_with_batched_spaces_and_the_ids_budget():
    env = _vector("wall", 3)
    single = gymnasium.make(gym_id("wall"))
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (3, 65, 65, 3), np.uint8)
    assert env.action_space.shape == (3, 2) and env.single_action_space == single.action_space
    assert env.single_observation_space == single.observation_space
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.max_episode_steps == episode_budget("wall") == single.spec.max_episode_steps
    assert isinstance(gymnasium.make_vec(gym_id("wall"), num_envs=2), TaskVectorEnv)  # the default mode too
    assert not isinstance(gymnasium.make_vec(gym_id("wall"), num_envs=2, vectorization_mode="sync"), TaskVectorEnv)


@pytest.mark.parametrize("task", task_names())
def test_n_copies_step_as_n_single_envs_stepped_one_by_one(task):
    env = _vector(task, 3)
    singles = [gymnasium.make(gym_id(task)) for _ in range(3)]
    start, goal = _pairs(env)
    obs, info = env.reset(options={"state": start, "goal": goal})
    for i, single in enumerate(singles):
        single_obs, single_info = single.reset(options={"state": start[i], "goal": goal[i]})
        np.testing.assert_array_equal(obs[i], single_obs)
        np.testing.assert_array_equal(info["goal_image"][i], single_info["goal_image"])
    rng = np.random.default_rng(1)
    for _ in range(4):
        actions = rng.uniform(-1.5, 1.5, env.action_space.shape)  # some outside the bounds: clipped alike
        obs, rewards, terminations, truncations, info = env.step(actions)
        for i, single in enumerate(singles):
            single_obs, reward, terminated, truncated, single_info = single.step(actions[i])
            np.testing.assert_array_equal(obs[i], single_obs)
            assert (rewards[i], terminations[i], truncations[i]) == (reward, terminated, truncated)
            for key in ("state", "proprio", "goal", "goal_image"):
                np.testing.assert_array_equal(info[key][i], single_info[key])
    assert rewards.dtype == np.float64 and rewards.shape == terminations.shape == truncations.shape == (3,)


def test_a_copy_that_succeeds_is_reset_on_the_next_step_and_the_others_step_on():
    env = _vector("wall", 3)
    start, goal = _pairs(env)
    goal[1] = start[1]  # copy 1 stands at its goal: any step that keeps it there succeeds
    env.reset(seed=5, options={"state": start, "goal": goal})
    _, rewards, terminations, truncations, _ = env.step(np.zeros((3, 2)))
    assert terminations.tolist() == [False, True, False] and not truncations.any() and rewards[1] == 0

    actions = np.full((3, 2), 0.5)
    obs, rewards, terminations, truncations, info = env.step(actions)
    assert not terminations.any() and not truncations.any() and rewards[1] == 0.0
    new_start, new_goal = info["state"][1], info["goal"][1]
    assert not np.array_equal(new_start, start[1]) and not np.array_equal(new_goal, goal[1])  # a fresh pair
    assert env.task.sample_start_goal(np.random.default_rng(5), 1)[0][0].tolist() == new_start.tolist()  # seeded
    np.testing.assert_array_equal(obs[1], env.task.render(info["state"])[1])  # its reset observation
    at_new_goal = gymnasium.make(gym_id("wall")).reset(options={"state": new_goal})[0]
    np.testing.assert_array_equal(info["goal_image"][1], at_new_goal)
    np.testing.assert_allclose(info["state"][[0, 2]], start[[0, 2]] + 1.0)  # a still step, then 2 px/unit x 0.5
    np.testing.assert_array_equal(info["goal"][[0, 2]], goal[[0, 2]])

    _, _, _, _, info = env.step(actions)  # copy 1's new episode steps as any other
    np.testing.assert_allclose(info["state"][1], new_start + 1.0)


def test_the_budget_truncates_each_copy_and_the_next_step_starts_it_again():
    env = _vector("wall", 2)
    start, goal = _pairs(env)
    env.reset(seed=7, options={"state": start, "goal": goal})
    budget, still = episode_budget("wall"), np.zeros((2, 2))
    for _ in range(budget - 1):
        assert not any(env.step(still)[3])
    _, _, terminations, truncations, info = env.step(still)
    assert truncations.tolist() == [True, True] and not terminations.any()
    np.testing.assert_array_equal(info["state"], start)  # truncated where it stood
    _, _, _, truncations, info = env.step(still)
    assert not truncations.any() and not np.array_equal(info["state"], start)  # both started again


def test_reset_mask_restarts_only_the_masked_copies():
    env = _vector("wall", 3)
    start, goal = _pairs(env)
    env.reset(options={"state": start, "goal": goal})
    env.step(np.full((3, 2), 0.5))
    moved = env.task.get_state()
    other_start, other_goal = _pairs(env, seed=1)
    obs, info = env.reset(
        options={"reset_mask": np.array([False, True, False]), "state": other_start, "goal": other_goal}
    )
    np.testing.assert_array_equal(info["state"], [moved[0], other_start[1], moved[2]])
    np.testing.assert_array_equal(info["goal"], [goal[0], other_goal[1], goal[2]])
    np.testing.assert_array_equal(obs, env.task.render(info["state"]))
    with pytest.raises(ValueError, match=r"reset_mask'\] must be a bool array of shape \(3,\)"):
        env.reset(options={"reset_mask": np.array([1, 0, 0])})


def test_copies_without_a_goal_have_no_reward_no_end_and_a_masked_goal_image():
    env = _vector("wall", 2)
    start, _ = _pairs(env)
    _, info = env.reset(options={"state": start})
    assert "goal" not in info and "goal_image" not in info
    _, rewards, terminations, _, _ = env.step(np.zeros((2, 2)))
    assert rewards.tolist() == [0.0, 0.0] and not terminations.any()
    # copy 0 alone gets a sampled goal: gymnasium's "_key" masks say which copies have one
    _, info = env.reset(options={"reset_mask": np.array([True, False])})
    assert info["_goal"].tolist() == info["_goal_image"].tolist() == [True, False]
    assert info["goal_image"][0].any() and not info["goal_image"][1].any()


def test_bad_input_is_refused_with_the_space_it_must_lie_in():
    env = _vector("wall", 2)
    with pytest.raises(gymnasium.error.ResetNeeded, match="call reset"):
        env.step(np.zeros((2, 2)))
    start, goal = _pairs(env)
    with pytest.raises(ValueError, match=r"state .* has shape \(2,\); it must lie in Box\(-inf, inf, \(2, 2\)"):
        env.reset(options={"state": start[0]})
    env.reset(options={"state": start, "goal": goal})
    bad = np.zeros((2, 2))
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"actions .* not finite \(at index \(1, 0\)\)"):
        env.step(bad)
    np.testing.assert_array_equal(env.task.get_state(), start)  # nothing stepped


def test_a_seed_fixes_the_sampled_pairs_and_every_autoreset():
    def run(seed: int) -> list[np.ndarray]:
        env = _vector("wall", 2, max_episode_steps=2)
        states = [env.reset(seed=seed)[1]["state"]]
        for _ in range(5):  # truncated at steps 2 and 5, restarted at 3
            states.append(env.step(np.full((2, 2), 0.25))[4]["state"])
        return states

    first, again, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[3], first[2] + 0.5)  # step 3 was a restart, not a move
    assert not np.array_equal(first, other)
