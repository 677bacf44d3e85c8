import numpy as np
import pytest
import torch

from wmplan.config import PREDICTOR_PRESETS, apply_overrides, preset
from wmplan.data.windows import Normalizer
from wmplan.models.predictor import FrameCausalPredictor
from wmplan.models.world_model import TaskDims, WorldModel

DIMS = TaskDims("wall", 64, 2, 2, 2)


def _normalizer():
    one, zero = np.ones(2, np.float32), np.zeros(2, np.float32)
    return Normalizer(zero, one, zero, one, np.full(2, 32, np.float32), np.full(2, 15, np.float32))


def _model(encoder="state", num_hist=3, seed=0):
    torch.manual_seed(seed)
    cfg = apply_overrides(preset("tiny"), {"model.encoder.name": encoder, "data.num_hist": num_hist})
    return WorldModel(cfg, DIMS, _normalizer())


def test_frame_causal_mask_hides_later_frames():
    torch.manual_seed(0)
    net = FrameCausalPredictor(token_dim=12, out_dim=8, num_tokens=4, max_frames=3, cfg=PREDICTOR_PRESETS["tiny"])
    x = torch.randn(2, 3, 4, 12)
    y = x.clone()
    y[:, 2] += torch.randn(2, 4, 12)  # change the last frame only
    out_x, out_y = net(x), net(y)
    torch.testing.assert_close(out_x[:, :2], out_y[:, :2])
    assert not torch.allclose(out_x[:, 2], out_y[:, 2])
    y[:, 1] += 1.0  # changing frame 1 changes the predictions made at frames >= 1
    assert not torch.allclose(net(y)[:, 1], out_x[:, 1])
    torch.testing.assert_close(net(y)[:, 0], out_x[:, 0])


def test_rollout_shapes_and_gradients_with_respect_to_actions():
    model = _model(num_hist=3)
    z0 = model.encode(proprio=torch.randn(5, 1, 2), state=torch.rand(5, 1, 2) * 40 + 10)
    actions = torch.randn(5, 6, 10, requires_grad=True)
    z = model.rollout(z0, actions)
    assert z.visual.shape == (5, 7, 1, 2) and z.proprio.shape == (5, 7, 10)
    cost = ((z.frames(-1).flat() - 1.0) ** 2).sum()
    cost.backward()
    assert torch.isfinite(actions.grad).all() and actions.grad.abs().sum() > 0
    # the last action cannot influence the final latent's *input* frames: its gradient comes from the last step only
    assert actions.grad[:, -1].abs().sum() > 0


def test_rollout_equals_teacher_forcing_on_its_own_predictions():
    """The sliding window: step h sees the last num_hist frames, positioned from 0."""
    model = _model(num_hist=2).eval()
    z0 = model.encode(proprio=torch.randn(3, 1, 2), state=torch.rand(3, 1, 2) * 40 + 10)
    actions = torch.randn(3, 4, 10)
    z = model.rollout(z0, actions)
    window = z.frames(slice(2, 4))  # frames 2 and 3 predict frame 4 using actions 2 and 3
    expected = model.predict(window, actions[:, 2:4]).frames(-1)
    torch.testing.assert_close(z.frames(4).visual, expected.visual)


def test_loss_targets_are_detached_and_baseline_is_copy_last_frame():
    model = _model(num_hist=1)
    batch = {"proprio": torch.randn(4, 2, 2), "state": torch.rand(4, 2, 2) * 40 + 10, "action": torch.randn(4, 1, 10)}
    out = model.loss(batch)
    z = model.encode(proprio=batch["proprio"], state=batch["state"])
    torch.testing.assert_close(out["baseline"], model.latent_mse(z.frames(0), z.frames(1)))
    out["loss"].backward()
    assert model.predictor.head.weight.grad is not None


def test_save_and_load_give_identical_predictions(tmp_path):
    model = _model("conv", num_hist=1).eval()
    obs = torch.randint(0, 255, (2, 1, 64, 64, 3), dtype=torch.uint8)
    z0 = model.encode(obs=obs, proprio=torch.randn(2, 1, 2))
    actions = torch.randn(2, 3, 10)
    model.save(tmp_path / "run")
    loaded = WorldModel.load(tmp_path / "run").eval()
    torch.testing.assert_close(loaded.encode_visual(obs=obs), model.encode_visual(obs=obs))
    torch.testing.assert_close(loaded.rollout(z0, actions).visual, model.rollout(z0, actions).visual)
    assert not any(p.requires_grad for p in loaded.encoder.parameters())
    with pytest.raises(ValueError, match="task 'wall', not 'pusht'"):
        WorldModel.load(tmp_path / "run", task="pusht")
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        (tmp_path / "run" / "model.safetensors").unlink()
        WorldModel.load(tmp_path / "run")


def test_unknown_config_key_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid keys: .*train.epochs"):
        apply_overrides(preset("tiny"), {"train.epoch": 3})
    with pytest.raises(ValueError, match="expects a whole number"):
        apply_overrides(preset("tiny"), {"train.epochs": "many"})


def test_the_written_out_bf16_attention_matches_the_fused_fp32_kernel():
    import torch.nn.functional as F

    from wmplan.models.predictor import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(64, 4, 24, 16) for _ in range(3))
    frame = torch.arange(3).repeat_interleave(8)
    mask = frame[None, :] <= frame[:, None]  # the predictor's frame-causal mask
    for m in (None, mask):
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), m)
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want, rtol=0.05, atol=0.05)
        assert torch.equal(attention(q, k, v, m), want)  # fp32 keeps the fused kernel, bit for bit
    masked = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask).float()
    # a token of the first frame sees only the first frame: its output is unchanged by later frames' values
    v2 = v.clone()
    v2[:, :, 8:] += 100
    assert torch.allclose(
        masked[:, :, :8], attention(q.bfloat16(), k.bfloat16(), v2.bfloat16(), mask).float()[:, :, :8]
    )
