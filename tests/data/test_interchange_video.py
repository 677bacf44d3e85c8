"""LeRobot v3.0's video layout: wmplan -> MP4 videos and back, a dataset written in that layout by hand,
and the errors (an undecodable codec, frames off their timestamps, no PyAV)."""

import json
import sys
from fractions import Fraction

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wmplan.cli import main
from wmplan.data.interchange import export_dataset, import_dataset
from wmplan.data.interchange.lerobot_video import ENCODERS, choose_encoder
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.envs import make_task

LENGTHS = (5, 3, 6)
# Mean absolute error in pixel levels (of 255), measured here on these frames (wall's dot rendered at
# random places): wmplan's export 0.18-0.20 with AV1 (libsvtav1), about 0.1 with H.264 (libx264, 4:4:4);
# LeRobot's own H.264 settings (4:2:0, crf 30) about 2.1. The bounds leave room for other FFmpeg builds.
MAX_MEAN_ERROR, MAX_MEAN_ERROR_LEROBOT_H264 = 1.0, 3.0


def rendered_episodes(task, rng, lengths=LENGTHS):
    """Episodes whose frames are the task's renders of a dot at random places, so every frame differs."""
    episodes = []
    for n in lengths:
        state = rng.uniform(8, task.image_size - 8, (n, 2)).astype(np.float32)
        episodes.append(
            {
                "obs": task.render(state),
                "state": state,
                "proprio": np.asarray(task.proprio(state), np.float32).reshape(n, -1),
                "action": rng.normal(size=(n, task.action_dim)).astype(np.float32),
            }
        )
    return episodes


def rendered_store(path, rng, settings=None):
    task = make_task("wall", settings or {})
    store = TrajectoryStore.create(path, task, frames_per_episode=max(LENGTHS))
    store.append_episodes(rendered_episodes(task, rng))
    return store


def assert_frames_close(got, expected, ends, bound=MAX_MEAN_ERROR):
    """Same shape, small mean error, and each decoded frame nearest to its own source frame in its episode
    (a frame taken at the wrong timestamp would be nearer another)."""
    assert got.shape == expected.shape and got.dtype == np.uint8
    error = np.abs(got.astype(float) - expected.astype(float)).mean()
    assert error < bound, error
    for start, end in zip([0, *ends[:-1]], ends):
        g, e = got[start:end].astype(float), expected[start:end].astype(float)
        distance = ((g[:, None] - e[None]) ** 2).mean(axis=(2, 3, 4))
        assert (distance.argmin(axis=1) == np.arange(end - start)).all(), distance.round(1)


def assert_same_except_frames(a: TrajectoryStore, b: TrajectoryStore):
    np.testing.assert_array_equal(a.episode_ends, b.episode_ends)
    for key in ("state", "proprio"):
        np.testing.assert_array_equal(b.read(key), a.read(key), err_msg=key)
    expected = a.read("action").copy()
    expected[a.episode_ends - 1] = 0.0  # the padding action reads back as zeros
    np.testing.assert_array_equal(b.read("action"), expected)


# ----- export and back -------------------------------------------------------------------------------
def test_video_export_has_lerobots_video_layout_and_imports_back_within_the_bound(tmp_path, rng):
    store = rendered_store(tmp_path / "src", rng)
    out = tmp_path / "lr"
    assert main(["export", str(store.path), "--to", "lerobot", "--frames", "video", "--out", str(out)]) == 0

    info = json.loads((out / "meta" / "info.json").read_text())
    assert info["fps"] == 10  # wall's render_fps, no --fps given
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feature = info["features"]["observation.image"]
    assert feature["dtype"] == "video" and feature["shape"] == [65, 65, 3]
    codec = av.Codec(choose_encoder(av).name, "w").canonical_name  # "av1" where libsvtav1 is built in
    assert feature["info"]["video.codec"] == codec and feature["info"]["video.fps"] == 10
    assert (feature["info"]["video.height"], feature["info"]["video.width"]) == (65, 65)
    video = out / "videos" / "observation.image" / "chunk-000" / "file-000.mp4"
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec.canonical_name == codec
        assert container.streams.video[0].frames in (0, 14)  # 0: the muxer did not count them
    assert "observation.image" not in pq.read_schema(out / "data" / "chunk-000" / "file-000.parquet").names

    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()
    np.testing.assert_allclose(episodes["videos/observation.image/from_timestamp"], [0.0, 0.5, 0.8])
    np.testing.assert_allclose(episodes["videos/observation.image/to_timestamp"], [0.5, 0.8, 1.4])
    assert episodes["videos/observation.image/file_index"] == [0, 0, 0]

    back_path = tmp_path / "back"
    assert main(["import", str(out), "--from", "lerobot", "--out", str(back_path)]) == 0
    back = TrajectoryStore.open(back_path)
    assert back.task_name == "wall"
    assert_same_except_frames(store, back)
    assert_frames_close(back.read("obs"), store.read("obs"), store.episode_ends)


def test_each_episode_carries_its_stats_in_meta_episodes(tmp_path, rng):
    store = rendered_store(tmp_path / "src", rng)
    export_dataset(store.path, tmp_path / "lr", "lerobot", frames="video")
    episodes = pq.read_table(tmp_path / "lr" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pydict()
    stats = json.loads((tmp_path / "lr" / "meta" / "stats.json").read_text())
    for i, (start, end) in enumerate(store.episode_bounds()):
        obs = store.read("obs")[start:end] / 255.0  # stats of the frames as exported, before encoding
        mean = np.array(episodes["stats/observation.image/mean"][i])
        assert mean.shape == (3, 1, 1)
        np.testing.assert_allclose(mean.reshape(3), obs.mean(axis=(0, 1, 2)), rtol=1e-9)
        action = store.episode(i)["action"].copy()
        action[-1] = 0.0
        np.testing.assert_allclose(episodes["stats/action/max"][i], action.max(axis=0), rtol=1e-6)
        assert episodes["stats/action/count"][i] == [end - start]
        assert episodes["stats/observation.image/count"][i] == [end - start]
    everything = store.read("obs") / 255.0
    np.testing.assert_allclose(np.array(stats["observation.image"]["mean"]).reshape(3), everything.mean(axis=(0, 1, 2)))
    assert stats["action"]["count"] == [14]


def test_without_libsvtav1_the_export_falls_back_to_h264(tmp_path, rng, monkeypatch):
    store = rendered_store(tmp_path / "src", rng)
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libsvtav1"})  # a build without it
    export_dataset(store.path, tmp_path / "lr", "lerobot", frames="video")
    feature = json.loads((tmp_path / "lr" / "meta" / "info.json").read_text())["features"]["observation.image"]
    assert (feature["info"]["video.codec"], feature["info"]["video.pix_fmt"]) == ("h264", ENCODERS[1].pix_fmt)
    back = import_dataset(tmp_path / "lr", tmp_path / "back", "lerobot")
    assert_same_except_frames(store, back)
    assert_frames_close(back.read("obs"), store.read("obs"), store.episode_ends)


def test_fps_defaults_to_the_tasks_render_fps(tmp_path, rng):
    task = make_task("pointmaze", {"image_size": 8})  # render_fps 20
    store = TrajectoryStore.create(tmp_path / "src", task, frames_per_episode=3)
    store.append_episodes(
        [
            {
                "obs": rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8),
                "state": rng.normal(size=(3, task.state_dim)).astype(np.float32),
                "proprio": rng.normal(size=(3, task.proprio_dim)).astype(np.float32),
                "action": rng.normal(size=(3, task.action_dim)).astype(np.float32),
            }
        ]
    )
    export_dataset(store.path, tmp_path / "lr", "lerobot")
    assert json.loads((tmp_path / "lr" / "meta" / "info.json").read_text())["fps"] == 20
    frames = pq.read_table(tmp_path / "lr" / "data" / "chunk-000" / "file-000.parquet").to_pydict()
    np.testing.assert_allclose(frames["timestamp"], [0.0, 0.05, 0.1])


# ----- a dataset written in LeRobot's video layout -----------------------------------------------------
def encode(path, frames, fps, codec="libx264", pix_fmt="yuv420p"):
    """frames (T, H, W, 3) uint8 into an MP4 at `path`, with LeRobot's H.264 settings (GOP 2, crf 30)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options={"g": "2", "crf": "30"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for i, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())


def decode_all(path):
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def write_lerobot_video_dataset(root, episodes, fps=10, files=(0, 0, 1)):
    """The layout LeRobot writes: episodes 0 and 1 one after the other in file-000.mp4, episode 2 in
    file-001.mp4; frames in data/ with no image column; meta/episodes says where each episode's video lies."""
    video_key, rows, data, start = "observation.image", [], [], 0
    for file in sorted(set(files)):
        members = [i for i, f in enumerate(files) if f == file]
        path = root / "videos" / video_key / "chunk-000" / f"file-{file:03d}.mp4"
        encode(path, np.concatenate([episodes[i]["obs"] for i in members]), fps)
        offset = 0.0
        for i in members:
            n = len(episodes[i]["obs"])
            rows.append(
                {
                    "episode_index": i,
                    "length": n,
                    "dataset_from_index": start,
                    "dataset_to_index": start + n,
                    f"videos/{video_key}/chunk_index": 0,
                    f"videos/{video_key}/file_index": file,
                    f"videos/{video_key}/from_timestamp": offset,
                    f"videos/{video_key}/to_timestamp": offset + n / fps,
                }
            )
            for t in range(n):
                data.append(
                    {
                        "observation.state": episodes[i]["state"][t].tolist(),
                        "action": episodes[i]["action"][t].tolist(),
                        "timestamp": np.float32(t / fps).item(),
                        "frame_index": t,
                        "episode_index": i,
                        "index": start + t,
                        "task_index": 0,
                    }
                )
            offset, start = offset + n / fps, start + n
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(data), str(root / "data" / "chunk-000" / "file-000.parquet"))
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), str(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"))
    size = episodes[0]["obs"].shape[1]
    scalar = {"dtype": "int64", "shape": [1], "names": None}
    features = {
        video_key: {
            "dtype": "video",
            "shape": [size, size, 3],
            "names": ["height", "width", "channels"],
            "info": {"video.codec": "h264", "video.pix_fmt": "yuv420p", "video.fps": fps, "has_audio": False},
        },
        "observation.state": {"dtype": "float32", "shape": [2], "names": None},
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        **{name: scalar for name in ("frame_index", "episode_index", "index", "task_index")},
    }
    info = {
        "codebase_version": "v3.0",
        "fps": fps,
        "total_episodes": len(episodes),
        "total_frames": start,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    return root


def test_a_dataset_in_lerobots_video_layout_imports(tmp_path, rng):
    task = make_task("wall", {"image_size": 64})  # even sizes, as H.264 in 4:2:0 needs
    episodes = rendered_episodes(task, rng)
    source = write_lerobot_video_dataset(tmp_path / "lr", episodes)
    back = import_dataset(source, tmp_path / "back", "lerobot", env="wall", task_settings={"image_size": 64})
    ends = np.cumsum(LENGTHS)
    np.testing.assert_array_equal(back.episode_ends, ends)
    np.testing.assert_array_equal(back.read("state"), np.concatenate([e["state"] for e in episodes]))
    actions = [e["action"].copy() for e in episodes]
    for a in actions:
        a[-1] = 0.0
    np.testing.assert_array_equal(back.read("action"), np.concatenate(actions))
    obs = back.read("obs")
    error = np.abs(obs.astype(float) - np.concatenate([e["obs"] for e in episodes])).mean()
    assert obs.shape == (14, 64, 64, 3) and error < MAX_MEAN_ERROR_LEROBOT_H264, error
    # each frame is the one a plain decode of its file gives at its place (episode 1 starts at 0.5 s)
    whole = [decode_all(source / "videos" / "observation.image" / "chunk-000" / f"file-{f:03d}.mp4") for f in (0, 1)]
    np.testing.assert_array_equal(obs, np.concatenate(whole))


def test_frames_off_their_timestamps_are_refused(tmp_path, rng):
    task = make_task("wall", {"image_size": 64})
    source = write_lerobot_video_dataset(tmp_path / "lr", rendered_episodes(task, rng))
    path = source / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    table = pq.read_table(path)
    column = "videos/observation.image/from_timestamp"
    shifted = pa.array([t + 0.05 if i == 1 else t for i, t in enumerate(table.column(column).to_pylist())])
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, shifted), str(path))
    with pytest.raises(DatasetError, match=r"file-000\.mp4: no frame within .* of 0\.5500 s .*disagree"):
        import_dataset(source, tmp_path / "back", "lerobot", env="wall", task_settings={"image_size": 64})
    assert not (tmp_path / "back").exists()


def test_a_codec_without_a_decoder_is_named_with_its_file(tmp_path, rng, capsys):
    task = make_task("wall", {"image_size": 64})
    source = write_lerobot_video_dataset(tmp_path / "lr", rendered_episodes(task, rng))
    # The same stream labelled MPEG-5 EVC ("evc1"), which FFmpeg knows but PyAV's build cannot decode
    assert "evc" not in av.codecs_available
    for video in (source / "videos").rglob("*.mp4"):
        video.write_bytes(video.read_bytes().replace(b"avc1", b"evc1"))
    info = json.loads((source / "meta" / "info.json").read_text())
    info["features"]["observation.image"]["info"]["video.codec"] = "evc"
    (source / "meta" / "info.json").write_text(json.dumps(info))
    out = tmp_path / "back"
    command = ["import", str(source), "--from", "lerobot", "--env", "wall", "--task-set", "image_size=64"]
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "'evc'" in err and str(source / "videos" / "observation.image" / "chunk-000" / "file-000.mp4") in err
    assert not out.exists()


# ----- errors ----------------------------------------------------------------------------------------
def test_video_export_errors_name_the_fix(tmp_path, rng, monkeypatch, capsys):
    store = rendered_store(tmp_path / "src", rng)
    command = ["export", str(store.path), "--frames", "video"]
    assert main([*command, "--to", "hf", "--out", str(tmp_path / "hf")]) == 2
    assert "--to lerobot only" in capsys.readouterr().err and not (tmp_path / "hf").exists()
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    assert main([*command, "--to", "lerobot", "--out", str(tmp_path / "lr")]) == 2
    assert "pip install av" in capsys.readouterr().err
    assert not (tmp_path / "lr").exists() and [p.name for p in tmp_path.iterdir()] == ["src"]
