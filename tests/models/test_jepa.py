"""The end-to-end JEPA encoder: its anti-collapse statistic, its training, and a run that uses it."""

import json

import numpy as np
import pytest
import torch

from wmplan.config import apply_overrides, preset
from wmplan.models import jepa_training
from wmplan.models.jepa_encoder import JepaEncoder, random_directions, sigreg
from wmplan.models.jepa_training import LatentCollapse, pretrain_jepa_encoder
from wmplan.models.world_model import WorldModel
from wmplan.training.trainer import TrainingData, train


def test_sigreg_is_near_zero_for_a_standard_normal_and_large_for_collapsed_or_stretched_latents():
    gen = torch.Generator().manual_seed(0)
    directions = random_directions(16, 64, gen)
    normal = torch.randn(4096, 16, generator=gen)
    assert sigreg(normal, directions) < 0.002
    collapsed = sigreg(torch.zeros(4096, 16), directions)
    stretched = sigreg(3 * normal, directions)
    shifted = sigreg(normal + 2, directions)
    assert collapsed > 0.2 and stretched > 0.05 and shifted > 0.05
    assert torch.allclose(directions.norm(dim=0), torch.ones(64))


def test_sigreg_pushes_collapsed_latents_apart():
    """Its gradient is not zero at a nearly collapsed batch: the regulariser can undo a collapse."""
    z = (0.01 * torch.randn(256, 8, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
    opt = torch.optim.SGD([z], lr=50.0)
    directions = random_directions(8, 32, torch.Generator().manual_seed(2))
    for _ in range(100):
        opt.zero_grad()
        sigreg(z, directions).backward()
        opt.step()
    assert z.detach().std(dim=0).mean() > 0.3


@pytest.fixture(scope="module")
def wall_windows(wall_store):
    cfg = apply_overrides(preset("tiny", "wall"), {"data.path": str(wall_store.path), "data.num_hist": 1})
    return TrainingData(cfg).train


def test_training_is_deterministic_and_keeps_the_latents_spread(wall_windows):
    weights = []
    for global_seed in (1, 2):  # the global RNG must not matter
        torch.manual_seed(global_seed)
        encoder = JepaEncoder(image_size=int(wall_windows.obs.shape[1]), num_tokens=2, dim=4)
        metrics = pretrain_jepa_encoder(
            encoder, wall_windows, steps=30, batch_size=16, lr=1e-3, seed=5, sigreg_weight=1.0, progress=False
        )
        assert np.isfinite(metrics["predict"]) and np.isfinite(metrics["sigreg"])
        assert metrics["spread"] > jepa_training.COLLAPSE_FLOOR
        weights.append(encoder.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_latents_below_the_floor_stop_training_with_the_fix(wall_windows, monkeypatch):
    monkeypatch.setattr(jepa_training, "COLLAPSE_FLOOR", 1e9)  # every spread is a collapse
    monkeypatch.setattr(jepa_training, "CHECK_FROM", 0)
    encoder = JepaEncoder(image_size=int(wall_windows.obs.shape[1]), num_tokens=2, dim=4)
    with pytest.raises(LatentCollapse, match=r"collapsed at step 0 .*jepa_sigreg_weight"):
        pretrain_jepa_encoder(
            encoder, wall_windows, steps=5, batch_size=8, lr=1e-3, seed=0, sigreg_weight=1.0, progress=False
        )


def test_a_jepa_run_trains_freezes_and_loads_back_with_identical_tokens(wall_store, tmp_path):
    out = tmp_path / "jepa"
    cfg = apply_overrides(
        preset("tiny", "wall"),
        {
            "data.path": str(wall_store.path),
            "data.num_hist": 1,
            "model.encoder.name": "jepa",
            "model.encoder.pretrain_steps": 10,
            "model.encoder.pretrain_batch": 8,
            "train.epochs": 1,
            "train.steps_per_epoch": 3,
        },
    )
    model = train(cfg, out, progress=False)
    info = json.loads((out / "encoder.json").read_text())
    assert info["encoder"] == "jepa" and {"predict", "sigreg", "spread"} <= set(info["pretrain"])
    assert not any(p.requires_grad for p in model.encoder.parameters())
    loaded = WorldModel.load(out)
    assert isinstance(loaded.encoder, JepaEncoder) and (loaded.encoder.num_tokens, loaded.encoder.dim) == (1, 64)
    obs = torch.from_numpy(wall_store.read("obs")[:20])[:, None]
    torch.testing.assert_close(loaded.encode_visual(obs=obs), model.encode_visual(obs=obs), rtol=0, atol=0)


def test_a_regulariser_weight_of_zero_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="model.encoder.jepa_sigreg_weight"):
        apply_overrides(preset("tiny", "wall"), {"model.encoder.jepa_sigreg_weight": 0.0}).check()
