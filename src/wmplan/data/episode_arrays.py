"""The arrays one batch of collected episodes is stored as, shared by every collector."""

from __future__ import annotations

import numpy as np


def episode_arrays(
    task, states: list[np.ndarray], images: list[np.ndarray], actions: list[np.ndarray]
) -> dict[str, np.ndarray]:
    """Per-step lists -> arrays (n, steps + 1, ...): obs uint8, state, proprio, action float32.
    `actions` holds one entry per step taken; a NaN action is appended for the last frame, which no
    action follows."""
    actions = [*actions, np.full_like(actions[0], np.nan)]
    state = np.stack(states, 1).astype(np.float32)
    return {
        "obs": np.stack(images, 1),
        "state": state,
        "proprio": task.proprio(state).astype(np.float32),
        "action": np.stack(actions, 1).astype(np.float32),
    }
