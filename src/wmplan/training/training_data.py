"""What training reads: the dataset, its split, normalizer and windows, and (when they fit) the frozen
encoder's tokens of every frame, encoded once.

Alone, a process holds the whole split (frames included) and its tokens in memory. Under torchrun a rank
holds the low-dimensional arrays (state, proprio, action) of both splits and reads frames from the store per
batch (`lazy_frames`); the tokens are encoded once, by rank 0, into a file in the run folder that every
rank maps, reading the rows of its own batches.

Example:
    >>> data = TrainingData(cfg, lazy_frames=True)                                  # doctest: +SKIP
    >>> data.cache_tokens(model, 4.0, ctx, Path("runs/wall"))                        # doctest: +SKIP
    >>> data.batch("train", torch.arange(8), ctx.device)["visual"].shape  # (8, W, P, D)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from wmplan.config import RunConfig
from wmplan.data.store import DatasetError, TrajectoryStore
from wmplan.data.windows import Normalizer, TrajectoryWindows, WindowSpec, split_episodes
from wmplan.envs.registry import task_type
from wmplan.models.world_model import TaskDims, WorldModel
from wmplan.training.distributed import DistContext

TOKEN_CACHE = ".token-cache"  # in the run folder, while a torchrun training runs
ENCODE_CHUNK = 1024  # frames encoded at once while filling the cache


class TrainingData:
    """The dataset, its split, normalizer and windows, and (when they fit) cached frozen tokens."""

    def __init__(self, cfg: RunConfig, lazy_frames: bool = False):
        self.store = TrajectoryStore.open(cfg.data.path, task=cfg.task)
        missing = self.store.chunk_problems(decode=False)  # zarr would read a missing chunk as zeros: black frames
        if missing:
            raise DatasetError(
                f"{cfg.data.path} is damaged, {len(missing)} chunk file(s) missing, e.g. {missing[0]}; "
                f"collect the dataset again"
            )
        attrs = self.store.attrs
        self.dims = TaskDims(
            cfg.task,
            attrs["image_size"],
            attrs["state_dim"],
            attrs["proprio_dim"],
            attrs["action_dim"],
            tuple(getattr(task_type(cfg.task), "angle_dims", ())),
        )
        self.train_eps, self.val_eps = split_episodes(self.store.n_episodes, cfg.data.val_fraction, cfg.data.split_seed)
        lengths = np.array([e - s for s, e in self.store.episode_bounds(self.train_eps)])
        self.train_bounds = np.stack([np.cumsum(lengths) - lengths, np.cumsum(lengths)], 1)  # in self.train's frames
        self.normalizer = Normalizer.fit(self.store, self.train_eps)
        spec = WindowSpec(cfg.data.num_hist, cfg.data.num_pred, cfg.data.frameskip)
        self.train = TrajectoryWindows(self.store, self.train_eps, spec, self.normalizer, lazy_frames=lazy_frames)
        self.val = TrajectoryWindows(self.store, self.val_eps, spec, self.normalizer, lazy_frames=lazy_frames)
        self.fingerprint = self.store.fingerprint()
        self.cache: dict[str, torch.Tensor | np.ndarray] = {}  # a tensor in memory, or a mapped file's rows

    def cache_tokens(self, model: WorldModel, limit_gb: float, ctx: DistContext, folder: Path) -> bool:
        """Encode every frame once: the encoder is frozen, so its tokens never change. Alone, in memory;
        under torchrun rank 0 writes them to folder/.token-cache while the others wait, then every rank
        maps that file. False (nothing cached) when they would exceed `limit_gb`. First refuses a model
        built for another image size than the dataset's."""
        model.check_image_size(
            (int(self.train.obs.shape[1]), int(self.train.obs.shape[2])), f"the images of {self.store.path}"
        )
        enc = model.encoder
        frames = len(self.train.obs) + len(self.val.obs)
        if frames * enc.num_tokens * enc.dim * 4 > limit_gb * 1e9:
            return False
        if ctx.world_size == 1:
            for name, windows in (("train", self.train), ("val", self.val)):
                self.cache[name] = torch.cat(list(_encoded(model, windows, ctx.device)))
            return True
        ctx.on_main(lambda: self._write_token_files(model, folder / TOKEN_CACHE, ctx.device))
        for name in ("train", "val"):
            self.cache[name] = np.load(folder / TOKEN_CACHE / f"{name}.npy", mmap_mode="r")
        return True

    def _write_token_files(self, model: WorldModel, cache: Path, device: torch.device) -> None:
        """train.npy and val.npy (frames, P, D) float32, each written whole under a temporary name first."""
        shutil.rmtree(cache, ignore_errors=True)  # an earlier run's, perhaps of another encoder
        cache.mkdir(parents=True)
        for name, windows in (("train", self.train), ("val", self.val)):
            enc = model.encoder
            shape = (len(windows.obs), enc.num_tokens, enc.dim)
            part = cache / f"{name}.part.npy"
            tokens = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=shape)
            start = 0
            for chunk in _encoded(model, windows, device):
                tokens[start : start + len(chunk)] = chunk.float().numpy()
                start += len(chunk)
            tokens.flush()
            del tokens
            part.rename(cache / f"{name}.npy")

    def drop_token_files(self, folder: Path) -> None:
        """Remove the cache file written under torchrun (rank 0, once every rank is done with it)."""
        self.cache.clear()
        shutil.rmtree(folder / TOKEN_CACHE, ignore_errors=True)

    def held_bytes(self) -> int:
        """Bytes of the dataset this process keeps in its own memory: both splits' arrays (their frames
        unless they are read per batch) and the tokens cached in memory (a mapped file's pages belong to
        the OS's page cache, shared by the ranks, and are read per batch)."""
        cached = sum(t.numel() * t.element_size() for t in self.cache.values() if isinstance(t, torch.Tensor))
        return self.train.held_bytes() + self.val.held_bytes() + cached

    def batch(self, split: str, windows: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        source = self.train if split == "train" else self.val
        cached = split in self.cache
        batch = source.batch(windows, with_obs=not cached)
        if cached:
            tokens, index = self.cache[split], batch["frame_index"]
            batch["visual"] = (
                tokens[index] if isinstance(tokens, torch.Tensor) else torch.from_numpy(tokens[index.numpy()])
            )
        return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "frame_index"}


def _encoded(model: WorldModel, windows: TrajectoryWindows, device: torch.device) -> Iterator[torch.Tensor]:
    """The frozen tokens (n, P, D) of every frame of `windows`, ENCODE_CHUNK frames at a time, on the CPU;
    frames are read only for an encoder of images."""
    for i in range(0, len(windows.obs), ENCODE_CHUNK):
        state = windows.state[i : i + ENCODE_CHUNK, None].to(device)
        obs = None if model.uses_state else windows.obs[i : i + ENCODE_CHUNK][:, None].to(device)
        yield model.encode_visual(obs=obs, state=state)[:, 0].cpu()
