"""Training windows over a trajectory store, with z-score normalisation of actions and proprio.

A window holds W = num_hist + num_pred frames spaced by `frameskip` env steps, starting at frame t:
frames t, t + fs, ..., t + (W - 1) fs. Between two consecutive frames lie fs env actions; they are
normalised per env-action dimension and concatenated into one model action of fs * A dims, so a
window has W - 1 model actions.

Example:
    >>> store = TrajectoryStore.open("data/wall")                               # doctest: +SKIP
    >>> train_eps, val_eps = split_episodes(store.n_episodes, 0.1, seed=0)       # doctest: +SKIP
    >>> norm = Normalizer.fit(store, train_eps)                                  # doctest: +SKIP
    >>> train = TrajectoryWindows(store, train_eps, WindowSpec(), norm)          # doctest: +SKIP
    >>> train[0]["obs"].shape, train[0]["action"].shape   # (W, H, W, 3), (W - 1, fs * A)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from wmplan.data.frames import StoreFrames
from wmplan.data.store import ABSURD, DatasetError, TrajectoryStore

STD_FLOOR = 1e-6  # a constant dimension normalises to 0 rather than dividing by zero


@dataclass(frozen=True)
class WindowSpec:
    num_hist: int = 3
    """Context frames the predictor sees."""
    num_pred: int = 1
    """Extra frames after the context (targets only)."""
    frameskip: int = 5
    """Env steps between two model frames; a model action concatenates this many env actions."""

    @property
    def frames(self) -> int:
        return self.num_hist + self.num_pred

    @property
    def span(self) -> int:
        """Env steps from a window's first frame to its last."""
        return (self.frames - 1) * self.frameskip


def split_episodes(n_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted episode indices (train, val); at least one of each when n_episodes >= 2."""
    if n_episodes < 2:
        raise DatasetError(f"need at least 2 episodes to split into train and val, got {n_episodes}")
    order = np.random.default_rng(seed).permutation(n_episodes)
    n_val = min(n_episodes - 1, max(1, int(round(val_fraction * n_episodes))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class Normalizer:
    """Per-dimension z-scores of env actions (A,), proprio (P,) and state (S,), fitted on the train split."""

    action_mean: np.ndarray
    action_std: np.ndarray
    proprio_mean: np.ndarray
    proprio_std: np.ndarray
    state_mean: np.ndarray
    state_std: np.ndarray

    @classmethod
    def fit(cls, store: TrajectoryStore, episodes: np.ndarray) -> Normalizer:
        """Per-dimension mean and std over `episodes`; a non-finite or absurd value (a dataset written by
        other means than `wmplan collect`) is a DatasetError naming its array and episode."""
        arrays = {key: store.read(key, episodes) for key in ("action", "proprio", "state")}
        ends = np.cumsum([e - s for s, e in store.episode_bounds(episodes)])  # in the concatenated frames
        last = np.zeros(len(arrays["state"]), bool)
        last[ends - 1] = True  # each episode's last action is padding, never applied: not in the stats
        for key, values in arrays.items():
            bad = ~np.all(np.abs(values) < ABSURD, axis=1) & ~(last if key == "action" else False)
            if bad.any():
                episode = int(np.asarray(episodes)[np.searchsorted(ends, np.flatnonzero(bad)[0], side="right")])
                raise DatasetError(
                    f"{store.path}: data/{key} of episode {episode} holds a non-finite value or one beyond "
                    f"{ABSURD:g}; drop that episode or collect the dataset again"
                )
        stats = [_mean_std(x) for x in (arrays["action"][~last], arrays["proprio"], arrays["state"])]
        return cls(*stats[0], *stats[1], *stats[2])

    def normalize_action(self, action: np.ndarray | torch.Tensor):
        """Env actions (..., A) -> z-scores (..., A)."""
        return (action - _like(self.action_mean, action)) / _like(self.action_std, action)

    def denormalize_action(self, action: np.ndarray | torch.Tensor):
        return action * _like(self.action_std, action) + _like(self.action_mean, action)

    def normalize_proprio(self, proprio: np.ndarray | torch.Tensor):
        return (proprio - _like(self.proprio_mean, proprio)) / _like(self.proprio_std, proprio)

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: np.asarray(getattr(self, f.name)).tolist() for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> Normalizer:
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in values.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values.mean(0).astype(np.float32), np.maximum(values.std(0), STD_FLOOR).astype(np.float32)


def _like(value: np.ndarray, ref):
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device) if isinstance(ref, torch.Tensor) else value


def window_starts(bounds: list[tuple[int, int]], spec: WindowSpec, stride: int = 1) -> np.ndarray:
    """Global frame indices t at which a full window fits inside one episode. The last action used
    is t + span - 1, which must precede the episode's last frame (whose action is undefined)."""
    starts = [np.arange(s, e - spec.span, stride) for s, e in bounds if e - s > spec.span]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


class TrajectoryWindows(Dataset):
    """Windows of the given episodes, loaded into memory once; with `lazy_frames`, all but the frames, which
    are read from the store per batch (wmplan.data.frames.StoreFrames): what a torchrun rank uses.

    Item: obs uint8 (W, H, W, 3); proprio float32 (W, P) normalised; action float32 (W - 1, fs * A)
    normalised; state float32 (W, S) (raw, for diagnostics)."""

    def __init__(
        self,
        store: TrajectoryStore,
        episodes: np.ndarray,
        spec: WindowSpec,
        normalizer: Normalizer,
        stride: int = 1,
        lazy_frames: bool = False,
    ):
        self.spec = spec
        bounds = store.episode_bounds(episodes)
        # Re-index the selected episodes as one contiguous block in memory.
        lengths = [e - s for s, e in bounds]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        local = [(int(offsets[i]), int(offsets[i + 1])) for i in range(len(bounds))]
        self.starts = window_starts(local, spec, stride)
        if len(self.starts) == 0:
            raise DatasetError(
                f"no window of {spec.frames} frames with frameskip {spec.frameskip} fits in these episodes "
                f"(longest has {max(lengths, default=0)} frames); lower num_hist, num_pred or frameskip"
            )
        self.obs: torch.Tensor | StoreFrames = (
            StoreFrames(store, episodes) if lazy_frames else torch.from_numpy(store.read("obs", episodes))
        )
        self.state = torch.from_numpy(store.read("state", episodes))
        self.proprio = torch.from_numpy(
            normalizer.normalize_proprio(store.read("proprio", episodes)).astype(np.float32)
        )
        action = normalizer.normalize_action(store.read("action", episodes)).astype(np.float32)
        bad = np.flatnonzero(~np.all(np.isfinite(action), axis=1))
        if len(bad):
            raise DatasetError(
                f"{store.path}: a non-finite action inside an episode (frame {int(bad[0])} of the selection); "
                f"the dataset is corrupt"
            )
        action[offsets[1:] - 1] = 0  # the padding on last frames is never read; zero as a normalized value too
        self.action = torch.from_numpy(action)

    def __len__(self) -> int:
        return len(self.starts)

    def held_bytes(self) -> int:
        """Bytes of the split this object keeps in memory (frames too, unless they are read per batch)."""
        held = [self.state, self.proprio, self.action] + ([self.obs] if isinstance(self.obs, torch.Tensor) else [])
        return sum(t.numel() * t.element_size() for t in held) + self.starts.nbytes

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.batch(torch.tensor([i])).items()}

    def frame_indices(self, windows: torch.Tensor) -> torch.Tensor:
        """(B,) window indices -> (B, W) indices of their frames in this selection."""
        starts = torch.as_tensor(self.starts)[windows]
        return starts[:, None] + self.spec.frameskip * torch.arange(self.spec.frames)

    def batch(self, windows: torch.Tensor, with_obs: bool = True) -> dict[str, torch.Tensor]:
        """A batch of windows gathered at once: obs (B, W, H, W, 3) (unless with_obs is False),
        proprio (B, W, P), state (B, W, S), action (B, W - 1, fs * A), frame_index (B, W)."""
        idx = self.frame_indices(windows)
        fs, span = self.spec.frameskip, self.spec.span
        env_steps = idx[:, :1] + torch.arange(span)  # (B, span) env actions inside each window
        actions = self.action[env_steps]  # (B, span, A)
        out = {
            "proprio": self.proprio[idx],
            "state": self.state[idx],
            "action": actions.reshape(len(windows), self.spec.frames - 1, fs * actions.shape[-1]),
            "frame_index": idx,
        }
        if with_obs:
            out["obs"] = self.obs[idx]
        return out
