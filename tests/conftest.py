from contextlib import contextmanager

import numpy as np
import pytest
import torch

from wmplan.config import apply_overrides, preset
from wmplan.data.collect import collect
from wmplan.training.trainer import train


@pytest.fixture(scope="session")
def wall_store(tmp_path_factory):
    """A small Wall dataset shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("data") / "wall"
    return collect("wall", path, episodes=48, seed=3, progress=False)


@pytest.fixture(autouse=True)
def denormals_restored():
    """`wmplan.cli.main` flushes denormal floats to zero for its whole process, as a command should; a
    test that calls it in-process must not leave that on for the next (hypothesis refuses to draw floats
    when subnormals cannot be represented)."""
    yield
    torch.set_flush_denormal(False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_run(wall_store, tmp_path_factory):
    """A tiny state-encoder Wall model trained for a few seconds, shared by the tests that plan with,
    finetune or diagnose a trained model (and never modify it)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "model.encoder.name": "state",
            "train.epochs": 4,
            "train.steps_per_epoch": 150,
        },
    )
    train(cfg, out, progress=False)
    return out


class Killed(BaseException):
    """Stands for kill -9 in a test: nothing below it runs (BaseException, so no `except Exception` catches it)."""


@contextmanager
def _killed_at_epoch(epoch: int):
    """The training or finetuning inside the block is killed as its epoch `epoch` starts, after epoch
    `epoch - 1`'s checkpoint is committed; the block must end that way."""
    from wmplan.training.trainer import Trainer

    real = Trainer.train_epoch

    def train_epoch(self, e, progress):
        if e == epoch:
            raise Killed(f"killed as epoch {e} started")
        return real(self, e, progress)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(Trainer, "train_epoch", train_epoch)
        yield


@pytest.fixture(scope="session")
def kill_at_epoch():
    """`with kill_at_epoch(k): train(...)`: a run killed after k epochs (usable by fixtures of any scope)."""
    return _killed_at_epoch


def _tree(root) -> dict[str, str]:
    """Every entry under `root` (hidden ones too) -> the sha256 of a file's bytes, or "folder"; a writer lock
    file counts by its presence (each writer notes its pid in it)."""
    import hashlib
    from pathlib import Path

    from wmplan.writing import LOCK_NAME

    def digest(p: Path) -> str:
        return "folder" if p.is_dir() else "lock" if p.name == LOCK_NAME else hashlib.sha256(p.read_bytes()).hexdigest()

    root = Path(root)
    return {str(p.relative_to(root)): digest(p) for p in sorted(root.rglob("*"))}


@pytest.fixture
def tree():
    """tree(root): a snapshot of everything under root, to assert that a refused command changed nothing."""
    return _tree
