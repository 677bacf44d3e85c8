"""DinoV2Encoder on random weights: both checkpoint layouts, a from-scratch reference, errors, freezing."""

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from wmplan.models.dinov2 import DinoV2Encoder, interpolate_pos_embed, random_state_dict

DIM, HEADS, DEPTH = 384, 6, 12


def to_hf(meta: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Meta -> Hugging Face keys, written out independently of the module (after transformers'
    convert_dinov2_to_hf.py), so a key-mapping bug in the module cannot cancel itself out."""
    names = {
        "cls_token": "embeddings.cls_token",
        "mask_token": "embeddings.mask_token",
        "pos_embed": "embeddings.position_embeddings",
        "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
        "norm.weight": "layernorm.weight",
        "norm.bias": "layernorm.bias",
    }
    for i in range(DEPTH):
        b, h = f"blocks.{i}.", f"encoder.layer.{i}."
        for part in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
            for kind in ("weight", "bias"):
                names[f"{b}{part}.{kind}"] = f"{h}{part}.{kind}"
        names[f"{b}attn.proj.weight"] = f"{h}attention.output.dense.weight"
        names[f"{b}attn.proj.bias"] = f"{h}attention.output.dense.bias"
        names[f"{b}ls1.gamma"] = f"{h}layer_scale1.lambda1"
        names[f"{b}ls2.gamma"] = f"{h}layer_scale2.lambda1"
    out = {}
    for key, value in meta.items():
        if ".attn.qkv." in key:
            i, kind = key.split(".")[1], key.split(".")[-1]
            for j, name in enumerate(("query", "key", "value")):
                out[f"encoder.layer.{i}.attention.attention.{name}.{kind}"] = value[j * DIM : (j + 1) * DIM].clone()
        else:
            out[names[key]] = value.clone()
    return {prefix + k: v for k, v in out.items()}


@pytest.fixture(scope="module")
def meta_sd():
    return random_state_dict("meta", seed=0)


@pytest.fixture(scope="module")
def files(meta_sd, tmp_path_factory):
    """The same weights as Meta .pth and as prefixed HF .safetensors (with a classifier head to ignore)."""
    root = tmp_path_factory.mktemp("dinov2")
    torch.save(meta_sd, root / "meta.pth")
    hf = to_hf(meta_sd, prefix="dinov2.") | {"classifier.weight": torch.zeros(10, 2 * DIM)}
    save_file(hf, str(root / "hf.safetensors"))
    return root / "meta.pth", root / "hf.safetensors"


@pytest.fixture(scope="module")
def hf_encoder(files):
    return DinoV2Encoder(files[1], image_size=28)


def test_helper_hf_layout_matches_independent_conversion(meta_sd):
    hf = random_state_dict("hf", seed=0)
    ref = to_hf(meta_sd)
    assert hf.keys() == ref.keys()
    assert all(torch.equal(hf[k], ref[k]) for k in ref)


def test_meta_pth_and_hf_safetensors_give_identical_outputs(files):
    meta, hf = DinoV2Encoder(files[0], image_size=56), DinoV2Encoder(files[1], image_size=56)
    obs = torch.randint(0, 256, (2, 40, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    a, b = meta(obs), hf(obs)
    assert a.shape == (2, 16, DIM)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert a.std() > 0.1  # not a degenerate constant output


def test_default_shape_and_layer_normalised_tokens(tmp_path):
    sd = random_state_dict("meta", seed=2)
    sd["norm.weight"], sd["norm.bias"] = torch.ones(DIM), torch.zeros(DIM)
    torch.save(sd, tmp_path / "w.pt")
    enc = DinoV2Encoder(tmp_path / "w.pt")
    assert (enc.num_tokens, enc.dim) == (196, 384)
    out = enc(torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8))
    assert out.shape == (2, 196, 384) and out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 196), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 196), atol=1e-3, rtol=0)


def ref_block(x: torch.Tensor, w: dict[str, torch.Tensor], i: int) -> torch.Tensor:
    """One DINOv2 block from HF-layout weights, attention written per head as softmax(QK^T/sqrt(d))V."""
    p = f"dinov2.encoder.layer.{i}."
    lin = lambda t, name: t @ w[p + name + ".weight"].T + w[p + name + ".bias"]  # noqa: E731
    ln = lambda t, name: F.layer_norm(t, (DIM,), w[p + name + ".weight"], w[p + name + ".bias"], eps=1e-6)  # noqa: E731
    h = ln(x, "norm1")
    q, k, v = (lin(h, f"attention.attention.{n}") for n in ("query", "key", "value"))
    d = DIM // HEADS
    heads = []
    for j in range(HEADS):  # head j owns channels j*d : (j+1)*d of each of q, k, v
        qj, kj, vj = q[..., j * d : (j + 1) * d], k[..., j * d : (j + 1) * d], v[..., j * d : (j + 1) * d]
        heads.append(torch.softmax(qj @ kj.transpose(-1, -2) / math.sqrt(d), dim=-1) @ vj)
    x = x + w[p + "layer_scale1.lambda1"] * lin(torch.cat(heads, -1), "attention.output.dense")
    h = lin(F.gelu(lin(ln(x, "norm2"), "mlp.fc1")), "mlp.fc2")
    return x + w[p + "layer_scale2.lambda1"] * h


def test_block_matches_manual_attention(files, hf_encoder):
    w = to_hf(random_state_dict("meta", seed=0), prefix="dinov2.")
    x = torch.randn(2, 7, DIM, generator=torch.Generator().manual_seed(3))
    for i in (0, 5):
        torch.testing.assert_close(hf_encoder.blocks[i](x), ref_block(x, w, i), atol=1e-5, rtol=1e-5)


def test_full_forward_matches_manual_reference(hf_encoder):
    """28 px -> a 2x2 patch grid: checks patchify order, cls, pos-embed resize, blocks and final norm."""
    w = to_hf(random_state_dict("meta", seed=0), prefix="dinov2.")
    img = torch.rand(1, 28, 28, 3, generator=torch.Generator().manual_seed(4))
    x = img.permute(0, 3, 1, 2) * 2 - 1
    t = F.conv2d(
        x,
        w["dinov2.embeddings.patch_embeddings.projection.weight"],
        w["dinov2.embeddings.patch_embeddings.projection.bias"],
        stride=14,
    )
    t = torch.cat([w["dinov2.embeddings.cls_token"], t.flatten(2).transpose(1, 2)], dim=1)
    pos = w["dinov2.embeddings.position_embeddings"]
    grid = pos[:, 1:].reshape(1, 37, 37, DIM).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=(2.1 / 37, 2.1 / 37), mode="bicubic")  # Meta's +0.1 offset
    t = t + torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    for i in range(DEPTH):
        t = ref_block(t, w, i)
    ref = F.layer_norm(t, (DIM,), w["dinov2.layernorm.weight"], w["dinov2.layernorm.bias"], eps=1e-6)[:, 1:]
    torch.testing.assert_close(hf_encoder(img), ref, atol=1e-5, rtol=1e-5)


def test_pos_embed_interpolation():
    pos = torch.randn(1, 37 * 37 + 1, 8)
    assert interpolate_pos_embed(pos, 37, 37) is pos  # native grid: untouched, like Meta
    const = torch.full((1, 37 * 37 + 1, 8), 0.7)
    out = interpolate_pos_embed(const, 14, 14)
    assert out.shape == (1, 197, 8)
    torch.testing.assert_close(out, torch.full_like(out, 0.7))  # bicubic weights sum to 1


def test_missing_file(tmp_path):
    path = tmp_path / "nope" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match="model.safetensors") as err:
        DinoV2Encoder(path)
    assert str(path) in str(err.value) and "facebook/dinov2-small" in str(err.value)


def test_missing_key(tmp_path):
    sd = random_state_dict("hf")
    del sd["encoder.layer.3.attention.attention.key.bias"]
    save_file(sd, str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match=r"encoder\.layer\.3\.attention\.attention\.key\.bias") as err:
        DinoV2Encoder(tmp_path / "w.safetensors")
    assert "w.safetensors" in str(err.value) and "hf" in str(err.value)


def test_wrong_shape(tmp_path):
    sd = random_state_dict("meta")
    sd["blocks.2.mlp.fc1.weight"] = torch.zeros(10, DIM)
    torch.save(sd, tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"blocks\.2\.mlp\.fc1\.weight"):
        DinoV2Encoder(tmp_path / "w.pth")


def test_unexpected_and_unknown_keys(tmp_path):
    sd = random_state_dict("meta") | {"register_tokens": torch.zeros(1, 4, DIM)}  # a "with registers" model
    torch.save(sd, tmp_path / "reg.pth")
    with pytest.raises(ValueError, match="register_tokens"):
        DinoV2Encoder(tmp_path / "reg.pth")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="layout detected: none") as err:
        DinoV2Encoder(tmp_path / "other.pth")
    assert "other.pth" in str(err.value) and "patch_embed.proj.weight" in str(err.value)


def test_frozen_but_differentiable_wrt_input(hf_encoder):
    assert not any(p.requires_grad for p in hf_encoder.parameters())
    assert hf_encoder.train() is hf_encoder
    assert not any(m.training for m in hf_encoder.modules())
    img = torch.rand(1, 20, 20, 3, requires_grad=True)
    hf_encoder(img).square().sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(p.grad is None for p in hf_encoder.parameters())
