"""Our plain-torch ViT against transformers' Dinov2Model on a random checkpoint that transformers itself
wrote (save_pretrained): equal at DINOv2's 518 px; at DINO-WM's 196 px the two resize the position
embeddings differently (Meta's scale factor (grid + 0.1) / 37, which we keep, against an output size),
and that resize is the whole difference."""

import torch
import torch.nn.functional as F
from transformers import Dinov2Config, Dinov2Model

import wmplan.models.dinov2 as dinov2
from wmplan.models.dinov2 import DinoV2Encoder


def _checkpoint(tmp_path):
    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        patch_size=14,
        image_size=518,
    )
    model = Dinov2Model(config).eval()
    with torch.no_grad():
        model.embeddings.position_embeddings.normal_(0.0, 1.0)  # large enough that resizing it shows
    model.save_pretrained(tmp_path / "dinov2")
    return model, tmp_path / "dinov2" / "model.safetensors"


def _resize_to_size(pos_embed, grid_h, grid_w):
    """The position embeddings resized to an output size, as transformers does."""
    m = int((pos_embed.shape[1] - 1) ** 0.5)
    patch = pos_embed[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
    return torch.cat([pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)], dim=1)


def test_equal_at_518_px_and_only_the_position_resize_differs_at_196(tmp_path, monkeypatch):
    theirs_model, weights = _checkpoint(tmp_path)
    x518 = torch.rand(1, 3, 518, 518) * 2 - 1
    with torch.no_grad():
        ours = DinoV2Encoder(weights, image_size=518).forward_features(x518)
        theirs = theirs_model(pixel_values=x518).last_hidden_state[:, 1:]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    x196 = torch.rand(2, 3, 196, 196) * 2 - 1
    encoder = DinoV2Encoder(weights, image_size=196)
    with torch.no_grad():
        ours = encoder.forward_features(x196)
        theirs = theirs_model(pixel_values=x196).last_hidden_state[:, 1:]
        assert (ours - theirs).norm() / theirs.norm() > 1e-2  # Meta's resize, not transformers'
        monkeypatch.setattr(dinov2, "interpolate_pos_embed", _resize_to_size)
        resized_like_theirs = encoder.forward_features(x196)
    torch.testing.assert_close(resized_like_theirs, theirs, rtol=1e-4, atol=1e-4)
