"""LeRobot datasets, format v3.0 (codebase_version "v3.0"): images embedded as PNG in parquet (lossless,
the default), or as MP4 videos in LeRobot's video layout (lossy; see lerobot_video.py).

Followed from huggingface/lerobot's src/lerobot/datasets (utils.py: paths, DatasetInfo's fields and
defaults; dataset_metadata.py: tasks and episodes metadata; feature_utils.py: features -> `datasets`
types; compute_stats.py: the stats keys):

    OUT/meta/info.json                              codebase_version, fps, features, counts, data_path, ...
    OUT/meta/tasks.parquet                          a pandas frame: index "task" (the text), column task_index
    OUT/meta/episodes/chunk-000/file-000.parquet    one row per episode: episode_index, tasks, length,
                                                    data/chunk_index, data/file_index, dataset_from_index,
                                                    dataset_to_index, meta/episodes/chunk_index, .../file_index,
                                                    the episode's stats (stats/<feature>/<stat>) and, for
                                                    video, where its frames lie (videos/<key>/...)
    OUT/meta/stats.json                             min, max, mean, std, count, q01 q10 q50 q90 q99 per feature
    OUT/meta/wmplan.json                            wmplan's task, settings and dims (see below)
    OUT/data/chunk-000/file-000.parquet             the frames, one row group per episode, ~100 MB a file
    OUT/videos/observation.image/chunk-000/...mp4   with --frames video: the images, ~200 MB a file

Frame columns: observation.image (wmplan obs), observation.state (proprio: the robot's own state, as
LeRobot's PushT data uses it), observation.environment_state (the full simulator state), action,
next.done (True on each episode's last frame, whose action is zero padding), wmplan.<key> (extra arrays,
flattened), and LeRobot's timestamp, frame_index, episode_index, index, task_index.

wmplan's metadata goes in its own file rather than info.json: current LeRobot reads info.json into a
dataclass that warns about unknown keys and drops them when it writes the file again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.interchange.common import (
    META_FORMAT,
    finish_episode,
    is_pad,
    publish,
    require_pyarrow,
    resolve_task,
    staging_folder,
    store_episodes,
    store_meta,
    write_store,
)
from wmplan.data.interchange.parquet import ShardWriter, make_schema, make_table, read_episodes
from wmplan.data.interchange.stats import FeatureStats, episode_stats_columns
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.tasks import task_spec

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # LeRobot's DEFAULT_CHUNK_SIZE: files per chunk folder
DATA_FILE_MB = 100  # LeRobot's DEFAULT_DATA_FILE_SIZE_IN_MB
VIDEO_FILE_MB = 200  # LeRobot's DEFAULT_VIDEO_FILE_SIZE_IN_MB
FRAME_STORAGE = ("png", "video")  # images as PNG in the parquet files, or as MP4 videos beside them
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
WMPLAN_META = "meta/wmplan.json"
IMAGE, PROPRIO, STATE, ACTION, DONE = (
    "observation.image",
    "observation.state",
    "observation.environment_state",
    "action",
    "next.done",
)
DEFAULTS = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


def export_lerobot(
    store: TrajectoryStore, out: str | Path, *, overwrite: bool = False, fps: int | None = None, frames: str = "png"
) -> Path:
    """Write `store` as a LeRobot v3.0 dataset folder at `out`; returns `out`. `fps` (default: the task's
    render_fps) times the frames; `frames` is "png" (in parquet) or "video" (MP4 files)."""
    pa, pq = require_pyarrow()
    fps = task_spec(store.task_name).render_fps if fps is None else fps
    if fps < 1:
        raise DatasetError(f"--fps must be at least 1, got {fps}")
    if frames not in FRAME_STORAGE:
        raise DatasetError(f"--frames {frames!r}: choose one of {', '.join(FRAME_STORAGE)}")
    meta, out = store_meta(store), Path(out)
    looks_like = lambda p: (p / "meta" / "info.json").is_file()  # noqa: E731
    staging = staging_folder(out, overwrite=overwrite, source=store.path, looks_like=looks_like, kind="LeRobot")
    spec = _feature_spec(meta, video=frames == "video")
    task_text = f"wmplan {meta['task']}"
    schema = make_schema(pa, {name: s for name, s in spec.items() if s[0] != "video"})  # videos live beside
    writer = ShardWriter(
        pq,
        schema,
        lambda i: staging / DATA_PATH.format(chunk_index=i // CHUNKS_SIZE, file_index=i % CHUNKS_SIZE),
        DATA_FILE_MB,
    )
    video = _video_writer(staging, fps) if frames == "video" else None
    stats = {name: FeatureStats(dtype in ("image", "video")) for name, (dtype, _) in spec.items()}
    rows: list[dict[str, Any]] = []
    start = 0
    for i, episode in enumerate(store_episodes(store)):
        length = len(episode["obs"])
        columns = _frame_columns(episode, meta, i, start, fps)
        file_index = writer.write(make_table(pa, schema, columns))
        row = _episode_row(i, task_text, length, start, file_index) | (video.write(episode["obs"]) if video else {})
        episode_stats = {name: FeatureStats(stats[name].image) for name in spec}
        for name in spec:
            episode_stats[name].add(columns[name])
            stats[name].merge(episode_stats[name])
        rows.append(row | episode_stats_columns(episode_stats))
        start += length
    writer.close()
    if video:
        video.close()
    if not rows:
        raise DatasetError(f"{store.path} holds no finished episodes; nothing to export")
    info = _info(meta, spec, episodes=len(rows), frames=start, fps=fps, video_info=video.info() if video else None)
    _write_json(staging / "meta" / "info.json", info)
    _write_json(staging / "meta" / "stats.json", {name: s.result() for name, s in stats.items()})
    _write_json(staging / WMPLAN_META, meta)
    episodes_path = staging / EPISODES_PATH
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), str(episodes_path))
    _write_tasks(pa, pq, staging / "meta" / "tasks.parquet", [task_text])
    (staging / "README.md").write_text(_card(meta, info))
    publish(staging, out)
    return out


def _video_writer(staging: Path, fps: int):
    from wmplan.data.interchange.lerobot_video import VideoWriter

    return VideoWriter(staging, IMAGE, fps, max_mb=VIDEO_FILE_MB, chunks_size=CHUNKS_SIZE)


def _feature_spec(meta: dict[str, Any], video: bool) -> dict[str, tuple[str, int | None]]:
    """Each frame column's (dtype, width): the dataset's own arrays under LeRobot's names, then LeRobot's
    bookkeeping columns, so that LeRobot finds the features it expects by name."""
    spec: dict[str, tuple[str, int | None]] = {IMAGE: ("video" if video else "image", None)}
    if meta["proprio_dim"]:
        spec[PROPRIO] = ("float32", meta["proprio_dim"])
    spec |= {STATE: ("float32", meta["state_dim"]), ACTION: ("float32", meta["action_dim"]), DONE: ("bool", None)}
    for key, extra in meta["extras"].items():
        spec[f"wmplan.{key}"] = (extra["dtype"], int(np.prod(extra["shape"])))
    spec |= {name: (dtype, None) for name, dtype in DEFAULTS.items()}
    return spec


def _frame_columns(episode: dict[str, np.ndarray], meta: dict[str, Any], index: int, start: int, fps: int) -> dict:
    """Episode `index`'s frames as columns, its first frame being the dataset's frame `start`: LeRobot
    finds an episode's frames by these indices and timestamps."""
    length = len(episode["obs"])
    return {
        IMAGE: episode["obs"],
        PROPRIO: episode["proprio"],
        STATE: episode["state"],
        ACTION: episode["action"],
        DONE: is_pad(length),
        "timestamp": np.arange(length, dtype=np.float32) / fps,
        "frame_index": np.arange(length),
        "episode_index": np.full(length, index),
        "index": np.arange(start, start + length),
        "task_index": np.zeros(length, dtype=np.int64),
        **{f"wmplan.{k}": episode[k].reshape(length, -1) for k in meta["extras"]},
    }


def _episode_row(index: int, task_text: str, length: int, start: int, file_index: int) -> dict[str, Any]:
    """Episode `index`'s row of meta/episodes: where LeRobot finds its frames (data file, frame range)."""
    return {
        "episode_index": index,
        "tasks": [task_text],
        "length": length,
        "data/chunk_index": file_index // CHUNKS_SIZE,
        "data/file_index": file_index % CHUNKS_SIZE,
        "dataset_from_index": start,
        "dataset_to_index": start + length,
        "meta/episodes/chunk_index": 0,
        "meta/episodes/file_index": 0,
    }


def _info(
    meta: dict[str, Any],
    spec: dict[str, tuple[str, int | None]],
    *,
    episodes: int,
    frames: int,
    fps: int,
    video_info: dict[str, Any] | None,
) -> dict[str, Any]:
    """meta/info.json: the counts, paths and features (dtype, shape, names; a video's codec and pixel
    format under `info`) LeRobot reads a dataset by."""
    from wmplan.data.interchange.lerobot_video import VIDEO_PATH

    size = meta["image_size"]
    features: dict[str, Any] = {}
    for name, (dtype, width) in spec.items():
        picture = dtype in ("image", "video")
        shape = [size, size, 3] if picture else [1 if width is None else width]
        features[name] = {"dtype": dtype, "shape": shape, "names": ["height", "width", "channels"] if picture else None}
        if dtype == "video":
            features[name]["info"] = video_info
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": f"wmplan-{meta['task']}",
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": 1,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video_info else None,
        "features": features,
    }


def _write_tasks(pa: Any, pq: Any, path: Path, tasks: list[str]) -> None:
    """LeRobot reads meta/tasks.parquet with pandas and looks tasks up by the frame's index, so the file
    carries pandas' schema metadata naming "task" the index (written by hand: pandas is not needed)."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), str(path))


def _card(meta: dict[str, Any], info: dict[str, Any]) -> str:
    """A dataset card whose front matter (JSON is YAML) lets `datasets.load_dataset(OUT)` read the frames."""
    front = {
        "configs": [{"config_name": "default", "data_files": "data/*/*.parquet"}],
        "tags": ["LeRobot", "wmplan", meta["task"]],
    }
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in front.items()), "---", ""]
    lines += [f"# wmplan {meta['task']} in LeRobot format {CODEBASE_VERSION}", ""]
    lines += [
        f"{info['total_episodes']} episodes, {info['total_frames']} frames, exported by `wmplan export --to lerobot`."
    ]
    lines += ["wmplan's task settings are in meta/wmplan.json; `wmplan import --from lerobot` reads them back.", ""]
    return "\n".join(lines)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


# ----- importing -----------------------------------------------------------------------------------
def import_lerobot(
    source: str | Path,
    out: str | Path,
    *,
    env: str | None = None,
    task_settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    resize: bool = False,
) -> TrajectoryStore:
    """A LeRobot v3.0 folder (images in parquet or videos) into a new wmplan dataset at `out`. A wmplan
    export brings its task and settings (meta/wmplan.json); any other needs --env and matching widths."""
    require_pyarrow()
    source = Path(source)
    info = _read_info(source)
    features: dict[str, dict[str, Any]] = info.get("features", {})
    meta = _wmplan_meta(source, env, task_settings)
    task = resolve_task(meta["task"] if meta else env, meta["task_settings"] if meta else task_settings, str(source))
    images = [k for k, f in features.items() if f.get("dtype") in ("image", "video")]
    image = IMAGE if IMAGE in features else (images[0] if images else None)
    if image is None:
        raise DatasetError(f"{source} has no image feature; wmplan needs one observation image per frame")
    video = None
    if features[image]["dtype"] == "video":  # frames decoded at each frame's timestamp, in place of the column
        from wmplan.data.interchange.lerobot_video import EpisodeVideos

        video = EpisodeVideos(source, info, image)
    columns = {"obs": (image, "image")} if video is None else {"timestamp": ("timestamp", "float64")}
    columns["action"] = (ACTION, "float32")
    columns["state"] = (STATE, "float32") if STATE in features else (PROPRIO, "float32")
    if STATE in features and PROPRIO in features:
        columns["proprio"] = (PROPRIO, "float32")
    extras = (meta or {}).get("extras", {})
    columns |= {key: (f"wmplan.{key}", e["dtype"]) for key, e in extras.items()}
    missing = [name for name, _ in columns.values() if name not in features]
    if missing:
        raise DatasetError(f"{source}: features {missing} are missing from meta/info.json; found {sorted(features)}")
    files = sorted((source / "data").glob("*/*.parquet"))
    if not files:
        raise DatasetError(f"{source}/data holds no parquet files; the dataset is incomplete")

    def episodes():
        for index, episode in read_episodes(files, columns, "episode_index", "frame_index"):
            if video is not None:
                episode = {"obs": video.frames(index, episode.pop("timestamp")), **episode}
            length = len(episode["obs"])
            for key, e in extras.items():
                episode[key] = episode[key].reshape(length, *e["shape"])
            yield finish_episode(task, episode, f"{source} episode {index}", resize)

    extra_keys = {key: (tuple(e["shape"]), e["dtype"]) for key, e in extras.items()}
    frames = int(info.get("total_frames", 0)) // max(1, int(info.get("total_episodes", 1)))
    return write_store(
        out,
        task,
        episodes(),
        imported_from="lerobot",
        source=source,
        frames_per_episode=frames,
        extra_keys=extra_keys or None,
        overwrite=overwrite,
    )


def _read_info(source: Path) -> dict[str, Any]:
    """meta/info.json, refused unless it is format v3."""
    info_path = source / "meta" / "info.json"
    if not info_path.is_file():
        raise DatasetError(f"{source} is not a LeRobot dataset folder: {info_path} is missing")
    info = json.loads(info_path.read_text())
    version = str(info.get("codebase_version", "?"))
    if not version.startswith("v3."):
        raise DatasetError(
            f"{source} is LeRobot format {version}; this reader follows v3.0: convert it with LeRobot's "
            "`python -m lerobot.scripts.convert_dataset_v21_to_v30`"
        )
    return info


def _wmplan_meta(source: Path, env: str | None, task_settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """A wmplan export's meta/wmplan.json (None for another dataset), checked against --env and --task-set."""
    meta = json.loads((source / WMPLAN_META).read_text()) if (source / WMPLAN_META).is_file() else None
    if meta is not None and meta.get("format") != META_FORMAT:
        raise DatasetError(f"{source / WMPLAN_META}: format {meta.get('format')!r}, this wmplan reads {META_FORMAT!r}")
    if meta is not None and task_settings:
        raise DatasetError(
            f"{source} is a wmplan export: its task settings come with it (meta/wmplan.json); drop --task-set"
        )
    if meta is not None and env not in (None, meta["task"]):
        raise DatasetError(
            f"{source} holds {meta['task']} data (meta/wmplan.json), not {env}; drop --env or pick {meta['task']}"
        )
    return meta
