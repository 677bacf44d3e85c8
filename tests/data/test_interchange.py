"""Dataset interchange: wmplan -> LeRobot / Hugging Face and back, DINO-WM and diffusion policy in."""

import json
import pickle
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import zarr

from wmplan.cli import main
from wmplan.data.interchange import export_dataset, import_dataset
from wmplan.data.interchange.common import png_frame
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.envs import make_task

LENGTHS = (5, 3, 6)


def make_store(path, rng, name="wall", settings=None, lengths=LENGTHS, nan_last=False):
    """A tiny store written by hand: random frames, the last action zeros (or NaN, as older stores)."""
    task = make_task(name, settings or {})
    layout = getattr(task.config, "random_layout", False)
    extra = {"layout": ((2,), "float32")} if layout else None
    store = TrajectoryStore.create(path, task, frames_per_episode=max(lengths), extra_keys=extra)
    episodes = []
    for n in lengths:
        size = task.image_size
        ep = {
            "obs": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            "state": rng.normal(size=(n, task.state_dim)).astype(np.float32),
            "proprio": rng.normal(size=(n, task.proprio_dim)).astype(np.float32),
            "action": rng.normal(size=(n, task.action_dim)).astype(np.float32),
        }
        ep["action"][-1] = np.nan if nan_last else 0.0
        if layout:
            ep["layout"] = np.repeat(rng.integers(24, 40, (1, 2)).astype(np.float32), n, axis=0)
        episodes.append(ep)
    store.append_episodes(episodes)
    return store


def assert_same_dataset(a: TrajectoryStore, b: TrajectoryStore):
    as_stored = lambda settings: json.loads(json.dumps(settings))  # noqa: E731  (zarr attrs are JSON)
    assert a.task_name == b.task_name and as_stored(a.task_settings) == as_stored(b.task_settings)
    np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
    assert a.keys == b.keys
    for key in a.keys:
        expected = a.read(key)
        if key == "action":
            expected = expected.copy()
            expected[a.episode_ends - 1] = 0.0  # the padding action reads back as zeros
        np.testing.assert_array_equal(b.read(key), expected, err_msg=key)
        assert b.read(key).dtype == expected.dtype


# ----- LeRobot ---------------------------------------------------------------------------------------
def test_lerobot_export_has_the_v3_layout_and_imports_back_exactly(tmp_path, rng):
    store = make_store(tmp_path / "src", rng, settings={"random_layout": True})
    out = tmp_path / "lerobot"
    assert main(["export", str(store.path), "--to", "lerobot", "--out", str(out), "--fps", "5"]) == 0

    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 5
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 14, 1)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    features = info["features"]
    assert features["observation.image"] == {
        "dtype": "image",
        "shape": [65, 65, 3],
        "names": ["height", "width", "channels"],
    }
    assert features["observation.environment_state"]["shape"] == [2] and features["next.done"]["dtype"] == "bool"

    frames = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet").to_pydict()
    obs = np.stack([png_frame(image["bytes"], "test") for image in frames["observation.image"]])
    np.testing.assert_array_equal(obs, store.read("obs"))
    np.testing.assert_array_equal(np.array(frames["observation.environment_state"], np.float32), store.read("state"))
    np.testing.assert_array_equal(np.array(frames["observation.state"], np.float32), store.read("proprio"))
    np.testing.assert_array_equal(np.array(frames["action"], np.float32), store.read("action"))
    ends = store.episode_ends
    assert np.flatnonzero(frames["next.done"]).tolist() == (ends - 1).tolist()
    assert frames["index"] == list(range(14)) and frames["frame_index"][:6] == [0, 1, 2, 3, 4, 0]
    np.testing.assert_allclose(frames["timestamp"][:3], [0.0, 0.2, 0.4])

    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()
    bounds = store.episode_bounds()
    assert list(zip(episodes["dataset_from_index"], episodes["dataset_to_index"])) == bounds
    assert episodes["length"] == list(LENGTHS) and episodes["tasks"][0] == ["wmplan wall"]
    assert episodes["stats/observation.image/count"] == [[n] for n in LENGTHS]  # each episode's own stats
    np.testing.assert_allclose(episodes["stats/observation.state/min"][2], store.episode(2)["proprio"].min(axis=0))
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    assert tasks.to_pydict() == {"task_index": [0], "task": ["wmplan wall"]}
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # what LeRobot's pandas reads
    stats = json.loads((out / "meta" / "stats.json").read_text())
    np.testing.assert_allclose(stats["action"]["max"], store.read("action").max(axis=0), rtol=1e-6)
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1)

    assert main(["import", str(out), "--from", "lerobot", "--out", str(tmp_path / "back")]) == 0
    back = TrajectoryStore.open(tmp_path / "back", task="wall")
    assert_same_dataset(store, back)
    assert back.attrs["collector"] == {"imported_from": "lerobot", "source": str(out.resolve())}


def test_a_nan_padding_action_is_exported_as_zeros_and_marked(tmp_path, rng):
    store = make_store(tmp_path / "src", rng, nan_last=True)
    export_dataset(store.path, tmp_path / "lr", "lerobot")
    frames = pq.read_table(tmp_path / "lr" / "data" / "chunk-000" / "file-000.parquet").to_pydict()
    action = np.array(frames["action"])
    assert np.isfinite(action).all() and not action[store.episode_ends - 1].any()
    np.testing.assert_array_equal(action[:4], store.read("action")[:4])
    back = import_dataset(tmp_path / "lr", tmp_path / "back", "lerobot")
    assert_same_dataset(store, back)


# ----- Hugging Face ----------------------------------------------------------------------------------
def test_hf_export_is_a_datasets_folder_and_imports_back_exactly(tmp_path, rng):
    store = make_store(tmp_path / "src", rng, settings={"random_layout": True})
    out = tmp_path / "hf"
    assert main(["export", str(store.path), "--to", "hf", "--out", str(out)]) == 0

    card = (out / "README.md").read_text()
    front = dict(line.split(": ", 1) for line in card.split("---")[1].strip().splitlines())
    assert json.loads(front["configs"])[0]["data_files"] == [{"split": "train", "path": "data/train-*.parquet"}]
    assert json.loads(front["wmplan"])["task_settings"]["random_layout"] is True
    table = pq.read_table(out / "data" / "train-00000-of-00001.parquet")
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["obs"] == {"_type": "Image"}
    assert features["state"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 2, "_type": "Sequence"}
    columns = table.to_pydict()
    obs = np.stack([png_frame(image["bytes"], "test") for image in columns["obs"]])
    np.testing.assert_array_equal(obs, store.read("obs"))
    np.testing.assert_array_equal(np.array(columns["layout"], np.float32), store.read("layout"))
    assert np.flatnonzero(columns["action_is_pad"]).tolist() == (store.episode_ends - 1).tolist()

    assert main(["import", str(out), "--from", "hf", "--out", str(tmp_path / "back")]) == 0
    assert_same_dataset(store, TrajectoryStore.open(tmp_path / "back"))


def test_hf_round_trip_of_a_task_without_proprio(tmp_path, rng):
    store = make_store(tmp_path / "src", rng, name="rope", settings={"image_size": 8})
    export_dataset(store.path, tmp_path / "hf", "hf")
    assert "proprio" not in pq.read_schema(tmp_path / "hf" / "data" / "train-00000-of-00001.parquet").names
    assert_same_dataset(store, import_dataset(tmp_path / "hf", tmp_path / "back", "hf"))


def test_export_overwrite_replaces_an_export_only(tmp_path, rng, capsys):
    store = make_store(tmp_path / "src", rng, lengths=(3, 2))
    out = tmp_path / "lr"
    export_dataset(store.path, out, "lerobot")
    assert main(["export", str(store.path), "--to", "lerobot", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    export_dataset(store.path, out, "lerobot", overwrite=True)
    assert json.loads((out / "meta" / "info.json").read_text())["total_frames"] == 5
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["export", str(store.path), "--to", "hf", "--out", str(other), "--overwrite"]) == 2
    assert "not a Hugging Face export" in capsys.readouterr().err and (other / "keep.txt").read_text() == "mine"
    assert not list(tmp_path.glob(".*tmp-*"))  # no staging folder left behind


# ----- diffusion policy ------------------------------------------------------------------------------
def write_replay_buffer(path, rng, lengths, state_dim=2, size=65, image_key="img"):
    """A replay buffer in diffusion policy's layout, zarr format 2 as its own code writes it."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    total = sum(lengths)
    arrays = {
        image_key: rng.integers(0, 256, (total, size, size, 3)).astype(np.float32),  # 0-255 floats, as its PushT data
        "state": rng.normal(size=(total, state_dim)).astype(np.float32),
        "action": rng.normal(size=(total, 2)).astype(np.float32),
        "keypoint": rng.normal(size=(total, 9, 2)).astype(np.float32),
    }
    for key, value in arrays.items():
        root.create_array(f"data/{key}", data=value, chunks=(4, *value.shape[1:]))
    root.create_array("meta/episode_ends", data=np.cumsum(lengths).astype(np.int64))
    return arrays


def test_diffusion_policy_replay_buffer_imports_with_a_key_map(tmp_path, rng):
    arrays = write_replay_buffer(tmp_path / "buffer.zarr", rng, LENGTHS, image_key="image")
    assert (tmp_path / "buffer.zarr" / ".zgroup").is_file()  # really zarr format 2
    args = ["import", str(tmp_path / "buffer.zarr"), "--from", "diffusion-policy", "--env", "wall"]
    assert main([*args, "--out", str(tmp_path / "w"), "--map", "obs=image"]) == 0
    store = TrajectoryStore.open(tmp_path / "w", task="wall")
    np.testing.assert_array_equal(store.episode_ends, np.cumsum(LENGTHS))
    np.testing.assert_array_equal(store.read("obs"), arrays["image"].astype(np.uint8))
    np.testing.assert_array_equal(store.read("state"), arrays["state"])
    np.testing.assert_array_equal(store.read("proprio"), arrays["state"])  # Wall's proprio is its state
    expected = arrays["action"].copy()
    expected[store.episode_ends - 1] = 0.0
    np.testing.assert_array_equal(store.read("action"), expected)
    assert store.attrs["collector"]["imported_from"] == "diffusion-policy"


def test_diffusion_policy_pusht_data_is_refused_for_its_missing_velocity(tmp_path, rng, capsys):
    write_replay_buffer(tmp_path / "pusht.zarr", rng, (3, 3), state_dim=5, size=8)
    args = ["import", str(tmp_path / "pusht.zarr"), "--from", "diffusion-policy", "--env", "pusht"]
    assert main([*args, "--out", str(tmp_path / "p")]) == 2
    assert "velocity" in capsys.readouterr().err and not (tmp_path / "p").exists()
    assert main([*args, "--out", str(tmp_path / "p"), "--map", "obs=nothing"]) == 2
    assert "--map" in capsys.readouterr().err


# ----- DINO-WM ---------------------------------------------------------------------------------------
def write_dinowm(folder, rng, lengths, state_dim, size, channels_first=False, actions="actions.pth"):
    """DINO-WM's layout: tensors padded to the longest episode (with junk past each length), lengths,
    one image tensor per episode."""
    n, longest = len(lengths), max(lengths) + 2
    (folder / "obses").mkdir(parents=True)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    states = torch.randn(n, longest, state_dim, generator=gen) * 50 + 200
    acts = torch.randn(n, longest, 2, generator=gen) * 30
    torch.save(states, folder / "states.pth")
    torch.save(acts, folder / actions)
    images = []
    for i in range(n):
        frames = torch.randint(0, 256, (longest, size, size, 3), dtype=torch.uint8, generator=gen)
        if channels_first:
            frames = frames.permute(0, 3, 1, 2).float()  # (T, 3, H, W) 0-255 floats, as Wall's
        torch.save(frames, folder / "obses" / f"episode_{i:03d}.pth")
        images.append(frames)
    return states.numpy(), acts.numpy(), images


def test_dinowm_point_maze_imports_with_the_true_episode_lengths(tmp_path, rng):
    states, actions, images = write_dinowm(tmp_path / "pm", rng, (4, 2, 6), state_dim=4, size=8)
    torch.save(torch.tensor([4, 2, 6]), tmp_path / "pm" / "seq_lengths.pth")
    args = ["import", str(tmp_path / "pm"), "--from", "dinowm", "--env", "pointmaze", "--task-set", "image_size=8"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    store = TrajectoryStore.open(tmp_path / "out", task="pointmaze")
    np.testing.assert_array_equal(store.episode_ends, [4, 6, 12])
    ep = store.episode(2)
    np.testing.assert_array_equal(ep["state"], states[2, :6])
    np.testing.assert_array_equal(ep["proprio"], states[2, :6])  # DINO-WM's point maze proprio is its state
    np.testing.assert_array_equal(ep["action"][:-1], actions[2, :5])
    assert not ep["action"][-1].any()
    np.testing.assert_array_equal(ep["obs"], images[2][:6].numpy())


def test_dinowm_pusht_joins_velocity_scales_actions_and_resizes(tmp_path, rng):
    folder = tmp_path / "pusht"
    states, rel, images = write_dinowm(folder, rng, (3, 5), 5, size=16, channels_first=True, actions="rel_actions.pth")
    velocities = torch.from_numpy(rng.normal(size=(2, states.shape[1], 2)).astype(np.float32))
    torch.save(velocities, folder / "velocities.pth")
    (folder / "seq_lengths.pkl").write_bytes(pickle.dumps([3, 5]))
    (folder / "shapes.pkl").write_bytes(pickle.dumps(["T", "T"]))
    with pytest.raises(DatasetError, match="--resize"):
        import_dataset(folder, tmp_path / "x", "dinowm", env="pusht", task_settings={"image_size": 8})
    store = import_dataset(folder, tmp_path / "p", "dinowm", env="pusht", task_settings={"image_size": 8}, resize=True)
    ep = store.episode(1)
    np.testing.assert_allclose(ep["state"], np.concatenate([states[1, :5], velocities[1, :5].numpy()], axis=1))
    np.testing.assert_allclose(ep["proprio"], ep["state"][:, [0, 1, 5, 6]])  # agent xy + velocity, as DINO-WM
    np.testing.assert_allclose(ep["action"][:-1], rel[1, :4] / 100.0, rtol=1e-6)  # offsets / action_scale
    assert ep["obs"].shape == (5, 8, 8, 3) and ep["obs"].dtype == np.uint8
    (folder / "shapes.pkl").write_bytes(pickle.dumps(["T", "L"]))
    with pytest.raises(DatasetError, match="other than the T"):
        import_dataset(folder, tmp_path / "q", "dinowm", env="pusht", task_settings={"image_size": 8}, resize=True)


def test_dinowm_wall_layouts_are_checked_or_stored(tmp_path, rng):
    folder = tmp_path / "wall"
    write_dinowm(folder, rng, (3, 3), state_dim=2, size=65)
    longest = 5
    torch.save(torch.tensor([[30] * longest, [36] * longest]), folder / "wall_locations.pth")
    torch.save(torch.tensor([[30] * longest, [20] * longest]), folder / "door_locations.pth")
    with pytest.raises(DatasetError, match="random_layout=true"):  # episode 1's wall is not the task's (32, 30)
        import_dataset(folder, tmp_path / "a", "dinowm", env="wall")
    store = import_dataset(folder, tmp_path / "b", "dinowm", env="wall", task_settings={"random_layout": True})
    np.testing.assert_array_equal(store.episode(1)["layout"], np.tile([36.0, 20.0], (longest, 1)))
    np.testing.assert_array_equal(store.episode(0)["layout"][0], [30.0, 30.0])


def test_lerobot_import_of_a_foreign_dataset_takes_env_and_its_columns(tmp_path, rng):
    store = make_store(tmp_path / "src", rng)
    export_dataset(store.path, tmp_path / "lr", "lerobot")
    (tmp_path / "lr" / "meta" / "wmplan.json").unlink()  # as a dataset LeRobot itself wrote
    with pytest.raises(DatasetError, match="--env"):
        import_dataset(tmp_path / "lr", tmp_path / "a", "lerobot")
    back = import_dataset(tmp_path / "lr", tmp_path / "b", "lerobot", env="wall")
    assert_same_dataset(store, back)  # environment_state -> state, observation.state -> proprio


# ----- errors ----------------------------------------------------------------------------------------
def test_import_errors_name_the_problem_and_the_fix(tmp_path, rng, capsys):
    def fails(*args):
        assert main(["import", *map(str, args)]) == 2
        return capsys.readouterr().err

    assert "does not exist" in fails(tmp_path / "nope", "--from", "dinowm", "--env", "wall", "--out", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    assert "states.pth" in fails(tmp_path / "empty", "--from", "dinowm", "--env", "wall", "--out", tmp_path / "o")
    write_dinowm(tmp_path / "wall", rng, (3, 3), state_dim=2, size=65)
    err = fails(tmp_path / "wall", "--from", "dinowm", "--env", "pointmaze", "--out", tmp_path / "o")
    assert "4-number state" in err and not (tmp_path / "o").exists()
    assert "unknown task" in fails(tmp_path / "wall", "--from", "dinowm", "--env", "walls", "--out", tmp_path / "o")
    err = fails(
        tmp_path / "wall", "--from", "dinowm", "--env", "wall", "--task-set", "image_size=64", "--out", tmp_path / "o"
    )
    assert "--resize" in err and "65x65" in err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert "not a wmplan dataset (keep.txt)" in fails(
        tmp_path / "wall", "--from", "dinowm", "--env", "wall", "--out", tmp_path / "taken"
    )
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert (
        main(["import", str(tmp_path / "wall"), "--from", "dinowm", "--env", "wall", "--out", str(tmp_path / "w")]) == 0
    )
    # no seq_lengths file: every episode has as many frames as actions.pth has steps (DINO-WM's Wall rule)
    np.testing.assert_array_equal(TrajectoryStore.open(tmp_path / "w").episode_ends, [5, 10])


def test_mp4_observations_need_imageio(tmp_path, rng, monkeypatch):
    write_dinowm(tmp_path / "d", rng, (3,), state_dim=4, size=8)
    (tmp_path / "d" / "obses" / "episode_000.pth").rename(tmp_path / "d" / "obses" / "episode_000.mp4")
    monkeypatch.setitem(sys.modules, "imageio", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    with pytest.raises(DatasetError, match="imageio"):
        import_dataset(tmp_path / "d", tmp_path / "o", "dinowm", env="pointmaze", task_settings={"image_size": 8})


def test_missing_pyarrow_says_how_to_install_it(tmp_path, rng, monkeypatch, capsys):
    store = make_store(tmp_path / "src", rng, lengths=(2,))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["export", str(store.path), "--to", "hf", "--out", str(tmp_path / "hf")]) == 2
    assert "pip install pyarrow" in capsys.readouterr().err and not (tmp_path / "hf").exists()
