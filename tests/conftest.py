import numpy as np
import pytest

from wmplan.data.collect import collect


@pytest.fixture(scope="session")
def wall_store(tmp_path_factory):
    """A small Wall dataset shared by the tests that only read it."""
    path = tmp_path_factory.mktemp("data") / "wall"
    return collect("wall", path, episodes=48, seed=3, progress=False)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
