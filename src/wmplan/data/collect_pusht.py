"""PushT trajectories from the scripted noisy pusher (see wmplan.envs.pusht_pusher for the policy).

DINO-WM trains on 18,500 noisy replays of human demonstrations, which we cannot download; the scripted
pusher makes contact-rich data instead: most of its episodes move the block.

Example:
    >>> from wmplan.envs.pusht import PushTTask
    >>> data = scripted_pusher(PushTTask(), np.random.default_rng(0), 4, PushTPusherConfig(steps=10))
    >>> data["obs"].shape, data["action"].shape
    ((4, 11, 64, 64, 3), (4, 11, 2))
"""

from __future__ import annotations

import numpy as np

from wmplan.envs.pusht import PushTTask
from wmplan.envs.pusht_geometry import wrap_angle
from wmplan.envs.pusht_pusher import PushTPusherConfig, run_pusher

__all__ = ["PushTPusherConfig", "block_moved_fraction", "scripted_pusher"]

MOVED_POSITION = 10.0
"""An episode moved the block if the block's origin got this far (world units, 2% of the world) ..."""
MOVED_ANGLE = 0.1
"""... or its angle this far (radians, about 6 degrees) from where it started."""


def scripted_pusher(task: PushTTask, rng: np.random.Generator, n: int, cfg: PushTPusherConfig) -> dict[str, np.ndarray]:
    """n episodes at once; arrays (n, steps + 1, ...): obs uint8, state, proprio, action float32 (the last
    action NaN)."""
    data = run_pusher(task, rng, n, cfg, render=True)
    state = data["state"].astype(np.float32)
    return {
        "obs": data["obs"],
        "state": state,
        "proprio": task.proprio(state).astype(np.float32),
        "action": data["action"].astype(np.float32),
    }


def block_moved_fraction(states: np.ndarray, episode_ends: np.ndarray | None = None) -> float:
    """Fraction of episodes whose block got more than MOVED_POSITION or MOVED_ANGLE away from its first
    pose at some step. `states` is (E, T, 7), or (F, 7) frames concatenated over episodes with their
    exclusive `episode_ends` (E,), as a TrajectoryStore holds them."""
    states = np.asarray(states, dtype=np.float64)
    if episode_ends is not None:
        ends = np.asarray(episode_ends, dtype=np.int64)
        if states.ndim != 2 or len(ends) == 0 or ends[-1] > len(states):
            raise ValueError(
                f"block_moved_fraction: {len(ends)} episode ends up to {ends[-1] if len(ends) else None} "
                f"do not fit frames of shape {states.shape}"
            )
        starts = np.concatenate([[0], ends[:-1]])
        first = np.repeat(starts, ends - starts)  # each frame's episode start
        moved = _moved(states[: ends[-1]], states[first])
        return float(np.mean(np.logical_or.reduceat(moved, starts)))
    if states.ndim != 3 or states.shape[-1] != 7 or len(states) == 0:
        raise ValueError(f"block_moved_fraction needs PushT states (E, T, 7), got shape {states.shape}")
    return float(np.mean(_moved(states, states[:, :1]).any(axis=1)))


def _moved(states: np.ndarray, first: np.ndarray) -> np.ndarray:
    """bool (...): whether each state's block is beyond the thresholds from the pose in `first`."""
    shift = np.linalg.norm(states[..., 2:4] - first[..., 2:4], axis=-1)
    turn = np.abs(wrap_angle(states[..., 4] - first[..., 4]))
    return (shift > MOVED_POSITION) | (turn > MOVED_ANGLE)
