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
