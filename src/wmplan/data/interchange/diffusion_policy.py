"""diffusion policy's ReplayBuffer zarr (real-stanford/diffusion_policy, common/replay_buffer.py) into a
wmplan dataset.

    SOURCE/data/<key>          (T, ...) per-frame arrays, episodes concatenated over time
    SOURCE/meta/episode_ends   int64 (E,) exclusive end of each episode

Its PushT data (pusht_cchi_v7_replay.zarr) holds data/img (T, 96, 96, 3) 0-255 floats, data/state
(T, 5) [agent xy, block xy, block angle], data/action (T, 2) absolute agent targets, data/keypoint and
data/n_contacts. Which array is which is a mapping: wmplan key -> its data key, by default obs=img,
state=state, action=action, proprio computed from the state with the task's `proprio`; `--map KEY=NAME`
changes one. Arrays are taken as they are, so their widths must be the task's. diffusion policy's PushT
data does not fit wmplan's PushT: its state lacks the agent velocity (wmplan's has 7 numbers, the
velocity is not recorded) and its actions are absolute targets, not offsets; it is refused.
The action at an episode's last frame is stored as zeros (wmplan's padding), whatever the source holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.interchange.common import finish_episode, resolve_task, write_store
from wmplan.data.store import DatasetError, TrajectoryStore

DEFAULT_MAP = {"obs": "img", "state": "state", "action": "action"}
MAPPABLE = ("obs", "state", "proprio", "action", "layout")


def import_diffusion_policy(
    source: str | Path,
    out: str | Path,
    *,
    env: str | None = None,
    task_settings: dict[str, Any] | None = None,
    mapping: dict[str, str] | None = None,
    overwrite: bool = False,
    resize: bool = False,
) -> TrajectoryStore:
    """The replay buffer at `source` into a new wmplan dataset of task `env` at `out`."""
    import zarr

    source = Path(source)
    if not source.exists():
        raise DatasetError(f"no replay buffer at {source}")
    unknown = sorted(set(mapping or {}) - set(MAPPABLE))
    if unknown:
        raise DatasetError(f"--map keys {unknown} are not wmplan keys; map any of {list(MAPPABLE)}")
    task = resolve_task(env, task_settings, "--env")
    try:
        root: Any = zarr.open_group(str(source), mode="r")  # zarr types members as Array | Group
        ends = np.asarray(root["meta/episode_ends"][:], dtype=np.int64)
        data: Any = root["data"]
        names = sorted(data.array_keys())
    except Exception as exc:  # zarr's several error types for a missing key or not a group
        raise DatasetError(
            f"{source} is not a replay buffer (a zarr group with data/ arrays and meta/episode_ends): {exc}"
        ) from exc
    keys = {**DEFAULT_MAP, **(mapping or {})}
    if getattr(task.config, "random_layout", False) and "layout" not in keys:
        raise DatasetError("wall with random_layout=true stores a layout per frame: pass --map layout=NAME")
    missing = {key: name for key, name in keys.items() if name not in names}
    if missing:
        raise DatasetError(
            f"{source}/data has no {sorted(missing.values())} (for wmplan's {sorted(missing)}); it has {names}: "
            "pass --map KEY=NAME for each, e.g. --map obs=image"
        )
    arrays = {key: data[name] for key, name in keys.items()}
    _check_widths(task, arrays, keys, source)
    if len(ends) == 0 or np.any(np.diff(np.concatenate([[0], ends])) < 2):
        raise DatasetError(f"{source}: meta/episode_ends {ends[:8].tolist()}... needs increasing ends, 2+ frames each")
    short = {key: a.shape[0] for key, a in arrays.items() if a.shape[0] < ends[-1]}
    if short:
        raise DatasetError(f"{source}: arrays {short} end before meta/episode_ends' last end {int(ends[-1])}")
    starts = np.concatenate([[0], ends[:-1]])

    def episodes():
        for i, (s, e) in enumerate(zip(starts, ends)):
            episode = {key: np.asarray(a[s:e]) for key, a in arrays.items()}
            if "layout" in episode:
                episode["layout"] = episode["layout"].astype(np.float32)
            yield finish_episode(task, episode, f"{source} episode {i}", resize)

    extra: dict[str, tuple[tuple[int, ...], str]] | None = {"layout": ((2,), "float32")} if "layout" in keys else None
    return write_store(
        out,
        task,
        episodes(),
        imported_from="diffusion-policy",
        source=source,
        frames_per_episode=int(np.max(ends - starts)),
        extra_keys=extra,
        overwrite=overwrite,
    )


def _check_widths(task, arrays: dict[str, Any], names: dict[str, str], source: Path) -> None:
    """Refuse, before writing anything, an array whose frames are not the task's shape."""
    widths = {"state": task.state_dim, "proprio": task.proprio_dim, "action": task.action_dim, "layout": 2}
    for key, width in widths.items():
        if key not in arrays:
            continue
        shape = tuple(arrays[key].shape[1:])
        if shape == (width,):
            continue
        hint = ""
        if task.name == "pusht" and key == "state" and shape == (5,):
            hint = (
                ": this looks like diffusion policy's PushT data, whose state [agent xy, block xy, block angle] "
                "lacks the agent velocity wmplan's PushT state holds (and whose actions are absolute targets, "
                "not offsets); the velocity is not recorded, so it cannot be imported faithfully"
            )
        raise DatasetError(
            f"{source}: data/{names[key]} has frames of shape {shape}, but {task.name}'s {key} has "
            f"{width} numbers{hint}"
        )
    obs = tuple(arrays["obs"].shape[1:])
    if len(obs) != 3 or 3 not in (obs[0], obs[-1]):
        raise DatasetError(f"{source}: data/{names['obs']} has frames of shape {obs}; expected RGB images")
