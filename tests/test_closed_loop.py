import numpy as np
import torch

from wmplan.closed_loop import SimulatedEpisodes, action_bounds, encode_states, execute, reset
from wmplan.envs import make_task
from wmplan.models.world_model import WorldModel

START = np.array([[10.0, 20.0], [12.0, 40.0]])
LAYOUT = np.array([[24.0, 20.0], [40.0, 44.0]])  # [wall_x, door_y] per episode, both off the default


def test_execute_records_every_model_step_in_each_episodes_own_arena(tiny_run):
    model = WorldModel.load(tiny_run)
    actions = torch.randn(2, 3, model.action_dim, generator=torch.Generator().manual_seed(0))
    frames = execute(make_task("wall"), model, START, actions, LAYOUT)
    assert frames["obs"].shape[:2] == (2, 4) and frames["state"].shape == (2, 4, 2)
    by_hand = make_task("wall")
    by_hand.reset_to(START, LAYOUT)
    env, fs = model.env_actions(actions), model.cfg.data.frameskip
    for k in range(3):  # frame k + 1 is the state after k + 1 model steps of fs env steps each
        for t in range(fs):
            by_hand.step(env[:, k * fs + t])
        np.testing.assert_array_equal(frames["state"][:, k + 1], by_hand.get_state().astype(np.float32))
        np.testing.assert_array_equal(frames["obs"][:, k + 1], by_hand.render())
    default_arena = make_task("wall")
    default_arena.reset_to(START)
    assert not np.array_equal(frames["obs"][:, 0], default_arena.render())  # the layouts were applied
    np.testing.assert_array_equal(frames["proprio"][:, 0], START.astype(np.float32))


def test_episodes_and_online_finetuning_encode_a_state_the_same_way(tiny_run):
    model = WorldModel.load(tiny_run)
    task = make_task("wall")
    reset(task, START)  # online finetuning's path: reset, then encode
    online = encode_states(model, task, START)
    episodes = SimulatedEpisodes(make_task("wall"), model, START, START).observe()  # evaluation's path
    torch.testing.assert_close(online.visual, episodes.visual, rtol=0, atol=0)
    torch.testing.assert_close(online.proprio, episodes.proprio, rtol=0, atol=0)


def test_action_bounds_are_the_env_box_in_normalised_model_actions(tiny_run):
    model = WorldModel.load(tiny_run)
    task = make_task("wall")
    low, high = action_bounds(model, task)
    assert low.shape == (model.action_dim,) and bool((low < high).all())
    for bound, env in ((low, task.action_low), (high, task.action_high)):
        back = model.env_actions(bound[None, None])[0]  # (fs, A) env actions
        np.testing.assert_allclose(back, np.tile(env, (model.cfg.data.frameskip, 1)), rtol=1e-5, atol=1e-5)
