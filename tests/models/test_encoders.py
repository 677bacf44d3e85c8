import numpy as np
import pytest
import torch

from wmplan.envs.wall import WallTask
from wmplan.models.encoder_training import pretrain_conv_encoder
from wmplan.models.encoders import ConvEncoder, StateEncoder, distance_spearman, encode_images, latent_distance_spearman


def wall_frames(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n Wall frames (n, H, W, 3) with the dot at uniformly random free positions (n, 2)."""
    task = WallTask()
    states = np.random.default_rng(seed).uniform(6, 57, (3 * n, 2))
    states = states[~task.in_solid(states)][:n]
    return task.render(states), states


@pytest.fixture(scope="module")
def trained():
    """An encoder pretrained briefly (~2 s) on 2000 frames, and 1000 held-out frames with their states."""
    train, _ = wall_frames(2000, seed=0)
    test, test_states = wall_frames(1000, seed=1)
    encoder = ConvEncoder(image_size=WallTask().image_size)
    pretrain_conv_encoder(encoder, train, steps=150, batch_size=32, lr=3e-3, seed=0, progress=False)
    return encoder, test, test_states


def test_conv_encoder_shapes_and_dtype():
    encoder = ConvEncoder(num_keypoints=5)
    tokens = encoder(torch.zeros(3, 64, 64, 3, dtype=torch.uint8))
    assert (encoder.num_tokens, encoder.dim) == (5, 2)
    assert tokens.shape == (3, 5, 2) and tokens.dtype == torch.float32
    assert tokens.abs().max() <= 1.0


def test_conv_encoder_is_differentiable_in_a_float_input():
    obs = torch.rand(2, 64, 64, 3, requires_grad=True)
    ConvEncoder()(obs).sum().backward()
    assert obs.grad is not None and obs.grad.abs().sum() > 0


def test_pretraining_is_deterministic_given_the_seed():
    images, _ = wall_frames(64, seed=0)
    weights = []
    for global_seed in (1, 2):  # a different global RNG state must not matter
        torch.manual_seed(global_seed)
        encoder = ConvEncoder(image_size=WallTask().image_size)
        metrics = pretrain_conv_encoder(encoder, images, steps=5, batch_size=8, lr=3e-3, seed=7, progress=False)
        assert np.isfinite(metrics["blob_mse"])
        weights.append(encoder.state_dict())
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_pretrained_latent_distance_tracks_true_distance(trained):
    encoder, test, states = trained
    # an encoder blind to the dot gives constant tokens (NaN or ~0); a saturating one cannot reach 0.98
    assert latent_distance_spearman(encoder, test, states) >= 0.98
    tokens = encode_images(encoder, test).numpy()  # (N, K, 2)
    # the keypoints sit on the dot: their mean moves in step with it, at least half as far (one pixel
    # is 2/64 in token units). An untrained encoder also ranks distances well, but with a gain ~1e-3.
    for axis in (0, 1):
        mean_keypoint = tokens[:, :, axis].mean(axis=1)
        assert np.corrcoef(mean_keypoint, states[:, axis])[0, 1] >= 0.99
        assert np.polyfit(states[:, axis], mean_keypoint, 1)[0] >= 0.5 * 2 / 64
    # and the latent keeps growing far away: 30-45 px apart is several times 5-10 px apart (ideal: 5x)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(test), (2, 5000))
    latent = np.linalg.norm((tokens[i] - tokens[j]).reshape(len(i), -1), axis=1)
    true = np.linalg.norm(states[i] - states[j], axis=1)
    far, near = latent[(true > 30) & (true < 45)].mean(), latent[(true > 5) & (true < 10)].mean()
    assert far / near >= 3.5


def test_freeze_leaves_nothing_trainable():
    encoder = ConvEncoder().freeze()
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_state_encoder_shapes():
    encoder = StateEncoder(state_dim=4)
    tokens = encoder(torch.randn(6, 4, dtype=torch.float64))
    assert (encoder.num_tokens, encoder.dim) == (1, 4)
    assert tokens.shape == (6, 1, 4) and tokens.dtype == torch.float32


def test_distance_spearman_with_a_set_distance_ignores_particle_numbering():
    """Piles of particles, each numbered in a random order: the Euclidean distance of the state
    vectors is noise, the Chamfer distance is not. A latent that sees the pile as an image would
    (here its mean and spread) ranks distances like Chamfer does, not like the state vectors."""
    from wmplan.envs.pushing import chamfer_distance

    rng = np.random.default_rng(0)
    base = rng.normal(0, 0.3, (50, 2))
    shift, scale = rng.uniform(-0.2, 0.2, (300, 2)), rng.uniform(0.6, 1.0, (300, 1, 1))
    piles = np.stack([rng.permutation(base) for _ in range(300)]) * scale + shift[:, None]
    latents = np.concatenate([piles.mean(1), piles.std(1)], axis=1)
    states = piles.reshape(300, -1)

    def chamfer(a, b):
        return chamfer_distance(a.reshape(len(a), -1, 2), b.reshape(len(b), -1, 2))

    by_chamfer = distance_spearman(latents, states, pairs=1000, true_distance=chamfer)
    by_vectors = distance_spearman(latents, states, pairs=1000)
    assert by_chamfer >= 0.9
    assert by_vectors <= by_chamfer - 0.25  # measured 0.95 vs 0.63


def test_keypoints_setting_sets_the_visual_tokens_per_frame():
    from wmplan.config import apply_overrides, preset
    from wmplan.models.encoder_build import build_encoder
    from wmplan.models.world_model import TaskDims

    dims = TaskDims("rope", 64, 48, 0, 4)
    cfg = apply_overrides(preset("tiny", "rope"), {"model.encoder.keypoints": 12})
    encoder = build_encoder(cfg.model.encoder, dims)
    assert encoder.num_tokens == 12
    assert encoder(torch.zeros(3, 64, 64, 3, dtype=torch.uint8)).shape == (3, 12, 2)
    with pytest.raises(ValueError, match="model.encoder.keypoints"):
        build_encoder(apply_overrides(cfg, {"model.encoder.keypoints": 0}).model.encoder, dims)


def test_particles_encoder_gives_each_particle_its_own_token():
    from wmplan.config import apply_overrides, preset
    from wmplan.models.encoder_build import build_encoder
    from wmplan.models.world_model import TaskDims

    dims = TaskDims("rope", 64, 48, 0, 4)
    encoder = build_encoder(
        apply_overrides(preset("tiny", "rope"), {"model.encoder.name": "particles"}).model.encoder, dims
    )
    state = torch.arange(3 * 48, dtype=torch.float64).view(3, 48)
    tokens = encoder(state)
    assert tokens.shape == (3, 24, 2) and tokens.dtype == torch.float32
    assert torch.equal(tokens[1, 5], torch.tensor([48.0 + 10, 48.0 + 11]))  # particle 5 of the second state: its (x, y)
    with pytest.raises(ValueError, match="state encoder"):  # PushT's state holds an angle: not a set of points
        build_encoder(
            apply_overrides(preset("tiny", "pusht"), {"model.encoder.name": "particles"}).model.encoder,
            TaskDims("pusht", 64, 7, 4, 2, angle_dims=(4,)),
        )
