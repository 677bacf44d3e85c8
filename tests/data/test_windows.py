import numpy as np
import pytest
import torch

from wmplan.data.store import DatasetError
from wmplan.data.windows import Normalizer, TrajectoryWindows, WindowSpec, split_episodes, window_starts


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_episodes(50, 0.1, seed=0)
    again, _ = split_episodes(50, 0.1, seed=0)
    np.testing.assert_array_equal(train, again)
    assert len(val) == 5 and not set(train) & set(val) and set(train) | set(val) == set(range(50))
    with pytest.raises(DatasetError):
        split_episodes(1, 0.1, seed=0)


def test_normalizer_uses_the_train_split_only(wall_store):
    train, val = split_episodes(wall_store.n_episodes, 0.25, seed=1)
    norm = Normalizer.fit(wall_store, train)
    action = np.concatenate([wall_store.episode(int(i))["action"][:-1] for i in train])  # without the padding
    np.testing.assert_allclose(norm.action_mean, action.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.proprio_std, wall_store.read("proprio", train).std(0), rtol=1e-5)
    z = norm.normalize_action(torch.tensor(action))
    np.testing.assert_allclose(norm.denormalize_action(z).numpy(), action, atol=1e-5)
    assert Normalizer.from_dict(norm.to_dict()).to_dict() == norm.to_dict()


def test_windows_match_the_raw_arrays_index_by_index(wall_store):
    spec = WindowSpec(num_hist=3, num_pred=1, frameskip=5)
    episodes = np.array([4, 1, 7])
    norm = Normalizer.fit(wall_store, episodes)
    windows = TrajectoryWindows(wall_store, episodes, spec, norm)
    # 51 frames per episode, a window spans 15 env steps and its last action must exist: 51 - 15 = 36 starts.
    assert len(windows) == 3 * 36
    raw = {k: [wall_store.episode(int(e))[k] for e in episodes] for k in ("obs", "state", "proprio", "action")}
    for i in (0, 35, 36, 80, len(windows) - 1):
        ep, t = divmod(i, 36)
        item = windows[i]
        for k in range(4):
            frame = t + 5 * k
            np.testing.assert_array_equal(item["obs"][k].numpy(), raw["obs"][ep][frame])
            np.testing.assert_array_equal(item["state"][k].numpy(), raw["state"][ep][frame])
            np.testing.assert_allclose(
                item["proprio"][k].numpy(), norm.normalize_proprio(raw["proprio"][ep][frame]), rtol=1e-6
            )
        assert item["action"].shape == (3, 10)
        for k in range(3):
            for j in range(5):  # env action t + 5k + j sits at columns 2j..2j+1 of model action k
                expected = norm.normalize_action(raw["action"][ep][t + 5 * k + j])
                np.testing.assert_allclose(item["action"][k, 2 * j : 2 * j + 2].numpy(), expected, rtol=1e-6)
        assert torch.isfinite(item["action"]).all()


def test_window_starts_never_need_the_last_frames_action():
    spec = WindowSpec(num_hist=1, num_pred=1, frameskip=5)
    starts = window_starts([(0, 11), (11, 14)], spec)
    np.testing.assert_array_equal(starts, np.arange(0, 6))  # the short episode holds no window
    assert (starts + spec.span - 1).max() <= 9  # last action index used < last frame (10)


def test_a_window_longer_than_every_episode_is_a_clear_error(wall_store):
    norm = Normalizer.fit(wall_store, np.array([0]))
    with pytest.raises(DatasetError, match="no window"):
        TrajectoryWindows(wall_store, np.array([0]), WindowSpec(num_hist=10, num_pred=1, frameskip=6), norm)


def test_frames_read_per_batch_equal_the_frames_held_and_only_the_batch_is_read(wall_store):
    spec = WindowSpec(num_hist=3, num_pred=1, frameskip=5)
    episodes = np.array([4, 1, 7])  # out of order: the selection's order, as the held frames
    norm = Normalizer.fit(wall_store, episodes)
    held = TrajectoryWindows(wall_store, episodes, spec, norm)
    lazy = TrajectoryWindows(wall_store, episodes, spec, norm, lazy_frames=True)
    picked = torch.tensor([80, 0, 35, 80])  # a repeat too
    for key, value in held.batch(picked).items():
        torch.testing.assert_close(lazy.batch(picked)[key], value, rtol=0, atol=0)
    frame_bytes = wall_store.read("obs")[0].nbytes
    assert lazy.obs.largest_read_bytes == len(picked) * spec.frames * frame_bytes
    assert lazy.held_bytes() + lazy.obs.largest_read_bytes < held.held_bytes() / 5  # 16 of 153 frames
    np.testing.assert_array_equal(lazy.obs.numpy(), held.obs.numpy())
