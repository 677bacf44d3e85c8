"""A plain Hugging Face `datasets` folder: `datasets.load_dataset(OUT)` reads it, one row per frame.

    OUT/README.md                              dataset card; its front matter names the data files
                                               (configs / data_files, as the Hub's dataset cards do)
                                               and repeats wmplan's metadata under `wmplan`
    OUT/data/train-00000-of-0000N.parquet      the frames, one row group per episode, ~200 MB a file

Columns: obs (an `Image`: {bytes: PNG, path: null}), state, proprio (absent for tasks without one),
action, action_is_pad (True on each episode's last frame, whose action is zero padding), episode_index,
frame_index, and each extra array under its wmplan name (flattened). The parquet schema also carries
wmplan's metadata (key "wmplan"), which `wmplan import --from hf` reads to rebuild the dataset exactly.
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
from wmplan.data.store import REQUIRED_KEYS, DatasetError, TrajectoryStore

SHARD_MB = 200
PAD = "action_is_pad"


def export_hf(store: TrajectoryStore, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write `store` as a Hugging Face parquet dataset folder at `out`; returns `out`."""
    pa, pq = require_pyarrow()
    meta, out = store_meta(store), Path(out)
    looks_like = lambda p: (p / "README.md").is_file() and any((p / "data").glob("*.parquet"))  # noqa: E731
    staging = staging_folder(out, overwrite=overwrite, source=store.path, looks_like=looks_like, kind="Hugging Face")
    spec: dict[str, tuple[str, int | None]] = {"obs": ("image", None), "state": ("float32", meta["state_dim"])}
    if meta["proprio_dim"]:
        spec["proprio"] = ("float32", meta["proprio_dim"])
    spec |= {"action": ("float32", meta["action_dim"]), PAD: ("bool", None)}
    spec |= {"episode_index": ("int64", None), "frame_index": ("int64", None)}
    for key, extra in meta["extras"].items():
        spec[key] = (extra["dtype"], int(np.prod(extra["shape"])))
    schema = make_schema(pa, spec, {"wmplan": json.dumps(meta)})
    writer = ShardWriter(pq, schema, lambda i: staging / "data" / f"part-{i:05d}.parquet", SHARD_MB)
    for i, episode in enumerate(store_episodes(store)):
        length = len(episode["obs"])
        columns = {
            **{k: episode[k].reshape(length, -1) for k in meta["extras"]},
            **{k: episode[k] for k in REQUIRED_KEYS},
            PAD: is_pad(length),
            "episode_index": np.full(length, i),
            "frame_index": np.arange(length),
        }
        writer.write(make_table(pa, schema, columns))
    writer.close()
    if not writer.paths:
        raise DatasetError(f"{store.path} holds no finished episodes; nothing to export")
    n = len(writer.paths)
    for i, path in enumerate(writer.paths):  # the Hub's shard names need the count, known only now
        path.rename(path.parent / f"train-{i:05d}-of-{n:05d}.parquet")
    (staging / "README.md").write_text(_card(meta))
    publish(staging, out)
    return out


def _card(meta: dict[str, Any]) -> str:
    """The card; its front matter is YAML, each value written as JSON (a subset of YAML)."""
    front = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
        "tags": ["wmplan", meta["task"]],
        "wmplan": meta,
    }
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in front.items()), "---", ""]
    lines += [f"# wmplan {meta['task']} trajectories", ""]
    lines += [
        f"{meta['episodes']} episodes, {meta['frames']} frames, one row per frame, exported by `wmplan export --to hf`.",
        "Columns: obs (PNG image), state, proprio, action (the action applied at this frame), action_is_pad (True on",
        "an episode's last frame, whose action is zero padding), episode_index, frame_index.",
        "",
        "```python",
        "from datasets import load_dataset",
        "frames = load_dataset('path/to/this/folder', split='train')",
        "```",
        "",
    ]
    return "\n".join(lines)


def import_hf(
    source: str | Path,
    out: str | Path,
    *,
    env: str | None = None,
    task_settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    resize: bool = False,
) -> TrajectoryStore:
    """A Hugging Face parquet folder (this layout) into a new wmplan dataset at `out`. A wmplan export
    brings its task and settings; any other needs --env and columns obs, state and action."""
    _, pq = require_pyarrow()
    source = Path(source)
    if not source.is_dir():
        raise DatasetError(f"no dataset folder at {source}")
    files = sorted((source / "data").glob("*.parquet")) or sorted(source.glob("*.parquet"))
    if not files:
        raise DatasetError(f"{source} holds no parquet files (looked in {source}/data and {source})")
    metadata = pq.read_schema(str(files[0])).metadata or {}
    meta = json.loads(metadata[b"wmplan"]) if b"wmplan" in metadata else None
    if meta is not None and meta.get("format") != META_FORMAT:
        raise DatasetError(f"{files[0]}: wmplan metadata of format {meta.get('format')!r}, expected {META_FORMAT!r}")
    if meta is not None and task_settings:
        raise DatasetError(
            f"{source} is a wmplan export: its task settings come with it (its parquet metadata); drop --task-set"
        )
    if meta is not None and env not in (None, meta["task"]):
        raise DatasetError(f"{source} holds {meta['task']} data, not {env}; drop --env or pick {meta['task']}")
    task = resolve_task(meta["task"] if meta else env, meta["task_settings"] if meta else task_settings, str(source))
    names = set(pq.read_schema(str(files[0])).names)
    columns = {"obs": ("obs", "image"), "state": ("state", "float32"), "action": ("action", "float32")}
    if "proprio" in names:
        columns["proprio"] = ("proprio", "float32")
    extras = (meta or {}).get("extras", {})
    columns |= {key: (key, e["dtype"]) for key, e in extras.items()}
    missing = sorted(({name for name, _ in columns.values()} | {"episode_index", "frame_index"}) - names)
    if missing:
        raise DatasetError(f"{files[0]} lacks the columns {missing}; it has {sorted(names)}")

    def episodes():
        for index, episode in read_episodes(files, columns, "episode_index", "frame_index"):
            for key, e in extras.items():
                episode[key] = episode[key].reshape(len(episode[key]), *e["shape"])
            yield finish_episode(task, episode, f"{source} episode {index}", resize)

    extra_keys = {key: (tuple(e["shape"]), e["dtype"]) for key, e in extras.items()}
    frames = int(meta["frames"]) // max(1, int(meta["episodes"])) if meta else 64
    return write_store(
        out,
        task,
        episodes(),
        imported_from="hf",
        source=source,
        frames_per_episode=frames,
        extra_keys=extra_keys or None,
        overwrite=overwrite,
    )
