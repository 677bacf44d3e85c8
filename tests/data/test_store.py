import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from wmplan.data.collect import collect
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.envs.wall import WallSettings, WallTask

SIZE = WallTask().image_size


def _episode(rng, length):
    return {
        "obs": rng.integers(0, 255, (length, SIZE, SIZE, 3), dtype=np.uint8),
        "state": rng.normal(size=(length, 2)).astype(np.float32),
        "proprio": rng.normal(size=(length, 2)).astype(np.float32),
        "action": rng.normal(size=(length, 2)).astype(np.float32),
    }


def test_round_trip_of_episodes(tmp_path, rng):
    store = TrajectoryStore.create(tmp_path / "s", WallTask(), frames_per_episode=7)
    episodes = [_episode(rng, n) for n in (7, 5, 9)]
    store.append_episode(episodes[0])
    store.append_episodes(episodes[1:])
    again = TrajectoryStore.open(tmp_path / "s", task="wall")
    assert again.n_episodes == 3 and again.n_frames == 21
    np.testing.assert_array_equal(again.episode_ends, [7, 12, 21])
    for i, ep in enumerate(episodes):
        got = again.episode(i)
        for key in ep:
            last = -1 if key == "action" else None  # the last action is padding, stored as zeros
            np.testing.assert_array_equal(got[key][:last], ep[key][:last])
        np.testing.assert_array_equal(got["action"][-1], 0)
    np.testing.assert_array_equal(
        again.read("state", np.array([2, 0])), np.concatenate([episodes[2]["state"], episodes[0]["state"]])
    )
    assert WallSettings.from_dict(again.task_settings) == WallTask().config


def test_written_as_zarr_format_2_with_zero_padding_and_a_mask_for_the_last_actions(tmp_path, rng):
    store = TrajectoryStore.create(tmp_path / "s", WallTask(), frames_per_episode=7)
    episodes = [_episode(rng, n) for n in (4, 3)]
    episodes[0]["action"][-1] = np.nan  # collectors pass NaN there: never applied, stored as zeros
    store.append_episodes(episodes)
    assert (tmp_path / "s" / ".zgroup").is_file() and not (tmp_path / "s" / "zarr.json").exists()
    raw = zarr.open_group(str(tmp_path / "s"), mode="r", zarr_format=2)["data/action"][:]
    np.testing.assert_array_equal(raw[[3, 6]], 0)
    np.testing.assert_array_equal(raw[:3], episodes[0]["action"][:3])
    applied = store.action_applied()
    np.testing.assert_array_equal(applied, [True, True, True, False, True, True, False])
    assert np.isfinite(store.read("action")).all()
    applied_actions = np.concatenate([ep["action"][:-1] for ep in episodes])
    assert store.summary()["action_range"]["min"] == applied_actions.min(axis=0).round(4).tolist()


def test_datasets_of_the_first_format_still_open_and_keep_their_fingerprint(tmp_path, rng):
    episodes = [_episode(rng, n) for n in (4, 3)]
    new = TrajectoryStore.create(tmp_path / "new", WallTask(), frames_per_episode=7)
    new.append_episodes(episodes)
    # The first format: zarr format 3, NaN as each episode's last action, format attribute /1.
    old = zarr.open_group(str(tmp_path / "old"), mode="w", zarr_format=3)
    for key in ("obs", "state", "proprio", "action"):
        values = np.concatenate([ep[key] for ep in episodes])
        if key == "action":
            values[[3, 6]] = np.nan
        old.create_array(f"data/{key}", data=values)
    old.create_array("meta/episode_ends", data=np.array([4, 7], dtype=np.int64))
    old.attrs.update({**new.attrs, "format": "wmplan.trajectories/1", "every_chunk_written": False})
    again = TrajectoryStore.open(tmp_path / "old", task="wall")
    np.testing.assert_array_equal(again.read("action"), new.read("action"))
    np.testing.assert_array_equal(again.episode(1)["action"], new.episode(1)["action"])
    assert again.fingerprint() == new.fingerprint()  # runs trained on the old copy still recognise it
    assert again.chunk_problems() == []


def test_collect_is_seeded_and_deterministic(tmp_path):
    a = collect("wall", tmp_path / "a", episodes=5, seed=11, progress=False, batch=2)
    b = collect("wall", tmp_path / "b", episodes=5, seed=11, progress=False, batch=2)
    c = collect("wall", tmp_path / "c", episodes=5, seed=12, progress=False, batch=2)
    for key in ("obs", "state", "action"):
        np.testing.assert_array_equal(a.read(key), b.read(key))
    assert not np.array_equal(a.read("state"), c.read("state"))


def test_collected_wall_data_follows_the_dynamics(wall_store):
    task = WallTask()
    ep = wall_store.episode(0)
    assert ep["obs"].shape == (51, SIZE, SIZE, 3) and (ep["action"][-1] == 0).all()
    task.reset_to(ep["state"][:1].astype(float))
    for t in range(50):
        task.step(ep["action"][t : t + 1].astype(float))
        np.testing.assert_allclose(task.get_state()[0], ep["state"][t + 1], atol=1e-4)
    np.testing.assert_array_equal(task.render(ep["state"][-1:].astype(float))[0], ep["obs"][-1])
    steps = np.linalg.norm(2 * ep["action"][:-1], axis=1)
    assert steps.min() >= 0.2 - 1e-5 and steps.max() <= 1.8 + 1e-5


def test_collect_refuses_a_non_empty_path_and_appends_on_request(tmp_path):
    path = tmp_path / "d"
    collect("wall", path, episodes=2, progress=False)
    with pytest.raises(DatasetError, match="--overwrite"):
        collect("wall", path, episodes=2, progress=False)
    store = collect("wall", path, episodes=3, append=True, progress=False)
    assert store.n_episodes == 5
    store = collect("wall", path, episodes=1, overwrite=True, progress=False)
    assert store.n_episodes == 1


def test_an_interrupted_append_leaves_finished_episodes_readable(tmp_path, rng, monkeypatch):
    store = TrajectoryStore.create(tmp_path / "s", WallTask(), frames_per_episode=6)
    first = _episode(rng, 6)
    store.append_episode(first)
    ends = store.group["meta/episode_ends"]

    original = type(ends).resize

    def resize_or_die(array, *args, **kwargs):  # the process dies after the data arrays were written
        if array.path.endswith("episode_ends"):
            raise KeyboardInterrupt
        return original(array, *args, **kwargs)

    monkeypatch.setattr(type(ends), "resize", resize_or_die)
    with pytest.raises(KeyboardInterrupt):
        store.append_episode(_episode(rng, 6))
    monkeypatch.undo()
    reopened = TrajectoryStore.open(tmp_path / "s", mode="r+")
    assert reopened.n_episodes == 1 and reopened.unfinished_frames == 6
    np.testing.assert_array_equal(reopened.episode(0)["obs"], first["obs"])
    second = _episode(rng, 4)
    reopened.append_episode(second)  # drops the unfinished frames
    again = TrajectoryStore.open(tmp_path / "s")
    assert again.n_episodes == 2 and again.unfinished_frames == 0
    np.testing.assert_array_equal(again.episode(1)["state"], second["state"])


def finished_episodes(path) -> int:
    """Episodes a running collection has committed: the store's own count of finished episodes (its
    meta/episode_ends values, written after the episode's data; the array's shape grows first, so it
    is not the commit). 0 while the store is still being created."""
    try:
        return TrajectoryStore.open(path).n_episodes
    except (DatasetError, KeyError, ValueError, OSError):  # not created yet, or caught mid-creation
        return 0


def test_a_killed_collection_stays_readable(tmp_path):
    path = tmp_path / "killed"
    cmd = [sys.executable, "-m", "wmplan.cli", "collect", "--env", "wall", "--episodes", "100000", "--out", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait on the event itself (48 finished episodes on disk), however long a busy machine takes;
        # the collection of 100,000 episodes cannot end first, and if it dies the test says so.
        while finished_episodes(path) < 48:
            assert proc.poll() is None, f"the collection exited with code {proc.returncode} before 48 episodes"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = TrajectoryStore.open(path, task="wall")
    assert store.n_episodes >= 48
    for key in store.keys:  # every finished episode reads back in full
        assert len(store.read(key)) == store.n_frames == 51 * store.n_episodes
    out = subprocess.run(
        [sys.executable, "-m", "wmplan.cli", "info", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert f"{store.n_episodes} finished" in out


def test_open_reports_a_missing_path_a_missing_array_bad_lengths_and_another_task(tmp_path, rng):
    with pytest.raises(DatasetError, match="no dataset at"):
        TrajectoryStore.open(tmp_path / "nothing")
    store = TrajectoryStore.create(tmp_path / "s", WallTask(), frames_per_episode=5)
    store.append_episode(_episode(rng, 5))
    with pytest.raises(DatasetError, match="task 'wall', not 'pusht'"):
        TrajectoryStore.open(tmp_path / "s", task="pusht")
    group = zarr.open_group(str(tmp_path / "s"), mode="r+")
    group["data/state"].resize((3, 2))
    with pytest.raises(DatasetError, match="data/state has 3 frames"):
        TrajectoryStore.open(tmp_path / "s")
    del group["data/proprio"]
    with pytest.raises(DatasetError, match="lacks the array data/proprio"):
        TrajectoryStore.open(tmp_path / "s")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a"):
        TrajectoryStore.open(tmp_path / "plain")
    (tmp_path / "s" / ".zattrs").write_text('{"task": "wall"')  # cut short: the file is named, not just the error
    with pytest.raises(DatasetError, match=r"s/\.zattrs is damaged \(Expecting"):
        TrajectoryStore.open(tmp_path / "s")


def test_summary_counts_and_ranges(wall_store):
    summary = wall_store.summary()
    assert summary["episodes"] == 48 and summary["frames"] == 48 * 51
    assert summary["arrays"]["obs"] == {"shape": [48 * 51, SIZE, SIZE, 3], "dtype": "uint8"}
    assert -0.9 <= min(summary["action_range"]["min"]) and max(summary["action_range"]["max"]) <= 0.9
