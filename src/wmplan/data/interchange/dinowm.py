"""DINO-WM's released datasets into wmplan datasets (read from gaoyuezhou/dino_wm's datasets/*.py and env/).

    SOURCE/states.pth              (N, T, S) float: every episode padded to the longest, T frames
    SOURCE/actions.pth             (N, T, A) env actions (wall, point maze); PushT has rel_actions.pth
                                   (agent-target offsets in world units) or abs_actions.pth (targets)
    SOURCE/velocities.pth          (N, T, 2) PushT's agent velocity, appended to its 5-number state
    SOURCE/seq_lengths.pkl | .pth  (N,) true episode lengths; absent: every episode has T = actions' T frames
    SOURCE/shapes.pkl              PushT: the block's shape per episode ('T' when absent)
    SOURCE/wall_locations.pth, door_locations.pth   Wall: the layout per episode and frame
    SOURCE/obses/episode_XXX.pth   (T, H, W, 3) or (T, 3, H, W) frames, 0-255 (DINO-WM divides by 255),
        or obses/episode_XXX.mp4 (PushT; needs imageio), or one SOURCE/obses.pth (N, T, ...)

How each maps onto a wmplan task, and why:
- pusht: DINO-WM's state [agent xy, block xy, block angle mod 2 pi] + velocity [vx, vy] is wmplan's
  7-number state in the same order and world units (512 wide, y down; block position = body origin);
  the T (scale 30), PD gains (100, 20), 100 Hz physics and 10 Hz control match wmplan's defaults. An
  action is a target offset / action_scale (100), as DINO-WM's loader divides rel_actions; absolute
  targets become offsets from the agent's position. Non-T blocks (shapes.pkl) are refused.
- pointmaze: state = qpos + qvel = wmplan's [x, y, vx, vy] (D4RL coordinates); actions unchanged.
- wall: state = the dot's (x, y) in pixels (x the column), wmplan's; actions unchanged (DINO-WM's
  loader keeps them as stored). A layout other than the task's is refused unless --task-set
  random_layout=true, which stores each episode's [wall_x, door_y] (wmplan's `layout` array).
- rope, granular: refused. DINO-WM's deformable data come from FleX (3-D particles, 4 numbers each);
  wmplan's rope and granular tasks are MuJoCo scenes with other particles and push actions.
Proprio is computed from the state with the task's `proprio`, which is what DINO-WM's loaders build
(PushT: agent xy + velocity; point maze and wall: the whole state). Images are kept as stored: they
come from DINO-WM's renderer, not wmplan's.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from wmplan.data.interchange.common import finish_episode, resolve_task, write_store
from wmplan.data.store import DatasetError, TrajectoryStore


def import_dinowm(
    source: str | Path,
    out: str | Path,
    *,
    env: str | None = None,
    task_settings: dict[str, Any] | None = None,
    overwrite: bool = False,
    resize: bool = False,
) -> TrajectoryStore:
    """DINO-WM's folder `source` (one split, e.g. pusht_noise/train) into a new wmplan dataset of task `env`."""
    source = Path(source)
    if not (source / "states.pth").is_file():
        raise DatasetError(
            f"{source / 'states.pth'} is missing: point at a DINO-WM dataset folder (one holding states.pth, "
            "actions.pth or rel_actions.pth, and obses/)"
        )
    task = resolve_task(env, task_settings, "--env")
    if task.name in ("rope", "granular"):
        raise DatasetError(
            f"DINO-WM's deformable data (FleX, 3-D particles) cannot be imported into wmplan's {task.name}, a "
            "different MuJoCo scene with other particles and actions; no faithful mapping exists"
        )
    states = _tensor(source / "states.pth")
    if states.ndim != 3:
        raise DatasetError(f"{source / 'states.pth'} has shape {states.shape}; expected (episodes, frames, numbers)")
    if task.name == "pusht":
        states, actions = _pusht_arrays(source, states, task)
    else:
        actions = _tensor(_first(source, ["actions.pth"]))
    if states.shape[-1] != task.state_dim or actions.shape[-1] != task.action_dim:
        raise DatasetError(
            f"{source}: states have {states.shape[-1]} and actions {actions.shape[-1]} numbers per frame, but "
            f"{task.name} has a {task.state_dim}-number state and a {task.action_dim}-number action; pick the --env "
            "this data was collected in"
        )
    lengths = _lengths(source, len(states), actions.shape[1])
    if len(actions) != len(states) or lengths.max() > min(states.shape[1], actions.shape[1]):
        raise DatasetError(
            f"{source}: states {states.shape}, actions {actions.shape} and episode lengths up to {lengths.max()} "
            "disagree; the dataset is incomplete"
        )
    if lengths.min() < 2:
        raise DatasetError(f"{source}: episode {int(np.argmin(lengths))} has {lengths.min()} frames; wmplan needs 2")
    layouts = _wall_layouts(source, task, len(states)) if task.name == "wall" else None
    frames = _frame_reader(source, len(states))

    def episodes():
        for i, length in enumerate(lengths):
            where = f"{source} episode {i}"
            obs = frames(i)
            if len(obs) < length:
                raise DatasetError(f"{where}: {len(obs)} frames of images for an episode of {length} frames")
            episode = {"obs": obs[:length], "state": states[i, :length], "action": actions[i, :length]}
            if layouts is not None:
                episode["layout"] = np.repeat(layouts[i : i + 1], length, axis=0)
            yield finish_episode(task, episode, where, resize)

    extra: dict[str, tuple[tuple[int, ...], str]] | None = (
        {"layout": ((2,), "float32")} if layouts is not None else None
    )
    return write_store(
        out,
        task,
        episodes(),
        imported_from="dinowm",
        source=source,
        frames_per_episode=int(lengths.max()),
        extra_keys=extra,
        overwrite=overwrite,
    )


def _pusht_arrays(source: Path, states: np.ndarray, task) -> tuple[np.ndarray, np.ndarray]:
    """PushT's 7-number states and wmplan actions from DINO-WM's files."""
    if states.shape[-1] == 5:
        if not (source / "velocities.pth").is_file():
            raise DatasetError(
                f"{source}: states.pth holds 5 numbers per frame and velocities.pth is missing; wmplan's PushT "
                "state also needs the agent's velocity [vx, vy], so this data cannot be imported"
            )
        states = np.concatenate([states, _tensor(source / "velocities.pth")], axis=-1)
    path = _first(source, ["rel_actions.pth", "abs_actions.pth"])
    actions = _tensor(path)
    if actions.shape[-1] != 2 or actions.shape[:2] != states.shape[:2]:
        raise DatasetError(f"{path} has shape {actions.shape}; expected {(*states.shape[:2], 2)}")
    if path.name == "abs_actions.pth":  # absolute agent targets -> offsets from the agent at that frame
        actions = actions - states[..., :2]
    shapes_file = source / "shapes.pkl"
    if shapes_file.is_file():
        shapes = _pickle(shapes_file)
        other = [i for i, s in enumerate(shapes) if s != "T"]
        if other:
            raise DatasetError(
                f"{source}: {len(other)} episodes push a block other than the T (shapes.pkl, e.g. episode "
                f"{other[0]}: {shapes[other[0]]!r}); wmplan's PushT simulates the T only"
            )
    return states, (actions / task.config.action_scale).astype(np.float32)


def _wall_layouts(source: Path, task, n: int) -> np.ndarray | None:
    """Per-episode [wall_x, door_y] if the task stores layouts, else None after checking that every
    episode has the task's own layout."""
    files = [source / "wall_locations.pth", source / "door_locations.pth"]
    if not all(f.is_file() for f in files):
        if task.config.random_layout:
            raise DatasetError(f"{source}: wall_locations.pth and door_locations.pth are needed for random_layout=true")
        return None
    per_episode = [np.asarray(_tensor(f)).reshape(n, -1)[:, 0] for f in files]
    layouts = np.stack(per_episode, axis=1).astype(np.float32)
    if task.config.random_layout:
        return layouts
    own = np.array([task.config.wall_x, task.config.door_y], dtype=np.float32)
    differ = np.flatnonzero(np.any(layouts != own, axis=1))
    if len(differ):
        x, y = layouts[differ[0]]
        raise DatasetError(
            f"{source}: {len(differ)} episodes have another wall layout than the task's (e.g. episode {differ[0]}: "
            f"wall_x {x:g}, door_y {y:g}; the task has {own[0]:g}, {own[1]:g}); pass --task-set random_layout=true "
            f"to store each episode's layout, or --task-set wall_x={x:g} --task-set door_y={y:g} if all share one"
        )
    return None


def _frame_reader(source: Path, n: int):
    """A function episode index -> frames, after checking that every episode's images are there."""
    if (source / "obses.pth").is_file():
        everything = _tensor(source / "obses.pth", keep_dtype=True)
        if len(everything) != n:
            raise DatasetError(f"{source / 'obses.pth'} holds {len(everything)} episodes, states.pth {n}")
        return lambda i: everything[i]
    folder = source / "obses"
    paths = []
    for i in range(n):
        found = [p for p in (folder / f"episode_{i:03d}.pth", folder / f"episode_{i:03d}.mp4") if p.is_file()]
        if not found:
            raise DatasetError(f"{folder}/episode_{i:03d}.pth (or .mp4) is missing: every episode needs its images")
        paths.append(found[0])
    if any(p.suffix == ".mp4" for p in paths):
        try:
            import imageio.v3 as iio
        except ImportError as exc:
            raise DatasetError(
                f"{folder} holds mp4 videos; reading them needs imageio with a video plugin "
                "(`pip install imageio[pyav]`), which wmplan does not install"
            ) from exc
        return lambda i: iio.imread(paths[i], index=None) if paths[i].suffix == ".mp4" else _tensor(paths[i], True)
    return lambda i: _tensor(paths[i], keep_dtype=True)


def _lengths(source: Path, n: int, frames: int) -> np.ndarray:
    if (source / "seq_lengths.pth").is_file():
        lengths = np.asarray(_tensor(source / "seq_lengths.pth", keep_dtype=True))
    elif (source / "seq_lengths.pkl").is_file():
        lengths = np.asarray(_pickle(source / "seq_lengths.pkl"))
    else:
        return np.full(n, frames, dtype=np.int64)
    if lengths.shape != (n,):
        raise DatasetError(f"{source}: seq_lengths has shape {lengths.shape}; expected one length per episode ({n},)")
    return lengths.astype(np.int64)


def _first(source: Path, names: list[str]) -> Path:
    for name in names:
        if (source / name).is_file():
            return source / name
    raise DatasetError(f"{source}: none of {names} is there; a DINO-WM dataset folder holds one of them")


def _tensor(path: Path, keep_dtype: bool = False) -> np.ndarray:
    """A tensor saved with torch.save, as numpy (float32 unless `keep_dtype`); weights_only refuses code."""
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickling errors
        raise DatasetError(f"{path} cannot be read by torch.load(weights_only=True) ({exc})") from exc
    array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return array if keep_dtype else array.astype(np.float32)


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles lists, numbers, strings and numpy arrays only: a pickle that names anything else is refused."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}")
        return super().find_class(module, name)


def _pickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _PlainUnpickler(f).load()
    except Exception as exc:  # pickle's error types
        raise DatasetError(
            f"{path} cannot be read as a plain pickle of numbers or strings ({exc}); save it with torch.save instead"
        ) from exc
