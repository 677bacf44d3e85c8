"""Frozen DINOv2 ViT-S/14 image encoder in plain PyTorch (no torch.hub, timm or transformers).

Computes the same function as Meta's `dinov2_vits14` (= Hugging Face `facebook/dinov2-small`):
patch 14, dim 384, 12 pre-norm blocks with 6 heads, MLP ratio 4, exact GELU, LayerScale, LayerNorm
eps 1e-6, a CLS token and no registers. Position embeddings are learned for the 518 px pretraining
grid (37x37 + cls) and bicubically resized to the input grid exactly as Meta's
`interpolate_pos_encoding` does. The output is DINOv2's `x_norm_patchtokens`, the tokens DINO-WM uses.

Weights come from a local file (Hugging Face's `model.safetensors` / `pytorch_model.bin`, or Meta's
`dinov2_vits14_pretrain.pth`) or a Hub id such as `facebook/dinov2-small` (wmplan.hub: the Hub client's
cache, downloaded once). Both key layouts are recognised, optionally under a common prefix such as `dinov2.`.
The forward pass stays this plain-torch ViT: at 196 px Meta's position-embedding resize (the scale factor
(grid + 0.1) / 37, which DINO-WM's encoder uses) differs from transformers' (an output size) by ~3%.

Example:
    >>> enc = DinoV2Encoder("/data/weights/dinov2-small/model.safetensors")  # image_size=196
    >>> enc(torch.zeros(4, 64, 64, 3, dtype=torch.uint8)).shape   # (B, P, D)
    torch.Size([4, 196, 384])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from wmplan.hub import hub_file, is_hub_id
from wmplan.models.encoder_registry import EncoderEntry, register_encoder

if TYPE_CHECKING:
    from wmplan.config import EncoderConfig
    from wmplan.models.world_model import TaskDims

PATCH, DIM, DEPTH, HEADS, MLP_RATIO = 14, 384, 12, 6, 4
PRETRAIN_GRID = 37  # 518 px / 14
HF_URL = "https://huggingface.co/facebook/dinov2-small"
META_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"

# (Meta name, Hugging Face name). qkv is handled separately: HF stores query/key/value apart.
_TOP_KEYS = [
    ("cls_token", "embeddings.cls_token"),
    ("pos_embed", "embeddings.position_embeddings"),
    ("patch_embed.proj.weight", "embeddings.patch_embeddings.projection.weight"),
    ("patch_embed.proj.bias", "embeddings.patch_embeddings.projection.bias"),
    ("norm.weight", "layernorm.weight"),
    ("norm.bias", "layernorm.bias"),
]
_SAME = (
    "norm1.weight",
    "norm1.bias",
    "norm2.weight",
    "norm2.bias",
    "mlp.fc1.weight",
    "mlp.fc1.bias",
    "mlp.fc2.weight",
    "mlp.fc2.bias",
)
_BLOCK_KEYS = [(k, k) for k in _SAME] + [
    ("attn.proj.weight", "attention.output.dense.weight"),
    ("attn.proj.bias", "attention.output.dense.bias"),
    ("ls1.gamma", "layer_scale1.lambda1"),
    ("ls2.gamma", "layer_scale2.lambda1"),
]
_QKV = ("query", "key", "value")
# The mask token is only used for masked-image training; accepted in a file but not loaded.
_MASK_TOKEN = {"meta": "mask_token", "hf": "embeddings.mask_token"}
# A key that exists in exactly one layout, used to detect the layout and any common prefix.
_ANCHORS = {"hf": "embeddings.patch_embeddings.projection.weight", "meta": "patch_embed.proj.weight"}


def _meta_shapes() -> dict[str, tuple[int, ...]]:
    d, h = DIM, DIM * MLP_RATIO
    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, d),
        "pos_embed": (1, PRETRAIN_GRID**2 + 1, d),
        "patch_embed.proj.weight": (d, 3, PATCH, PATCH),
        "patch_embed.proj.bias": (d,),
        "norm.weight": (d,),
        "norm.bias": (d,),
    }
    block = {"attn.qkv.weight": (3 * d, d), "attn.qkv.bias": (3 * d,), "attn.proj.weight": (d, d)}
    block |= {"mlp.fc1.weight": (h, d), "mlp.fc1.bias": (h,), "mlp.fc2.weight": (d, h)}  # all others: (d,)
    names = [meta for meta, _ in _BLOCK_KEYS] + ["attn.qkv.weight", "attn.qkv.bias"]
    for i in range(DEPTH):
        shapes.update({f"blocks.{i}.{name}": block.get(name, (d,)) for name in names})
    return shapes


def meta_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Meta-layout state dict -> Hugging Face Dinov2Model layout (qkv split into query/key/value)."""
    out = {hf: sd[meta] for meta, hf in _TOP_KEYS}
    if "mask_token" in sd:
        out["embeddings.mask_token"] = sd["mask_token"]
    for i in range(DEPTH):
        out.update({f"encoder.layer.{i}.{hf}": sd[f"blocks.{i}.{meta}"] for meta, hf in _BLOCK_KEYS})
        for kind in ("weight", "bias"):
            # Meta's fused qkv rows are [q; k; v] (see _Attention.forward); HF's converter splits them so.
            for name, part in zip(_QKV, sd[f"blocks.{i}.attn.qkv.{kind}"].chunk(3, dim=0)):
                out[f"encoder.layer.{i}.attention.attention.{name}.{kind}"] = part.clone()  # safetensors rejects views
    return out


def hf_to_meta(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face Dinov2Model-layout state dict (no prefix, no mask token) -> Meta layout."""
    out = {meta: sd[hf] for meta, hf in _TOP_KEYS}
    for i in range(DEPTH):
        p = f"encoder.layer.{i}."
        out.update({f"blocks.{i}.{meta}": sd[p + hf] for meta, hf in _BLOCK_KEYS})
        for kind in ("weight", "bias"):
            out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([sd[f"{p}attention.attention.{n}.{kind}"] for n in _QKV])
    return out


def expected_shapes(layout: str) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a complete ViT-S/14 state dict in `layout` ("meta" or "hf"), mask token excluded."""
    meta = _meta_shapes()
    if layout == "meta":
        return meta
    if layout == "hf":  # convert shape-only tensors so the two layouts can never disagree
        return {
            k: tuple(v.shape)
            for k, v in meta_to_hf({k: torch.empty(s, device="meta") for k, s in meta.items()}).items()
        }
    raise ValueError(f"unknown layout {layout!r}; expected 'hf' or 'meta'")


def dinov2_key_layouts() -> dict[str, list[str]]:
    """Layout ("meta"/"hf") -> its key names; block keys appear once, as templates with {i} = 0..11."""
    out = {}
    for layout, stem in (("meta", "blocks."), ("hf", "encoder.layer.")):
        keys = [k for k in expected_shapes(layout) if not k.startswith(stem)]
        keys += [stem + "{i}." + k[len(stem) + 2 :] for k in expected_shapes(layout) if k.startswith(stem + "0.")]
        out[layout] = keys + [f"{_MASK_TOKEN[layout]} (optional)"]
    return out


def random_state_dict(layout: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """For tests: a complete random ViT-S/14 state dict (mask token included) in `layout` ("hf"/"meta").

    The same seed gives the same underlying weights in both layouts, so the two load to the same model.
    Scales are ViT-like (weights ~0.02, norm gains ~1) so activations stay well-conditioned.
    """
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in _meta_shapes().items():
        noise = torch.randn(shape, generator=gen)
        is_gain, is_gamma = key.endswith(("norm1.weight", "norm2.weight", "norm.weight")), key.endswith("gamma")
        sd[key] = 1.0 + 0.1 * noise if is_gain else 0.1 + 0.05 * noise if is_gamma else 0.02 * noise
    sd["mask_token"] = torch.zeros(1, DIM)
    if layout == "meta":
        return sd
    if layout == "hf":
        return meta_to_hf(sd)
    raise ValueError(f"unknown layout {layout!r}; expected 'hf' or 'meta'")


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    if is_hub_id(str(path)):  # e.g. facebook/dinov2-small: its safetensors file, from the Hub client's cache
        path = hub_file(str(path), "model.safetensors")
    if path.is_dir() and (path / "model.safetensors").is_file():  # a Hugging Face snapshot folder
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(
            f"DINOv2 weights not found at {path}. Pass a local file or a Hub id such as facebook/dinov2-small "
            f"(downloaded once with `pip install huggingface_hub`); offline, fetch model.safetensors from {HF_URL} "
            f"(or Meta's {META_URL}) on a machine with internet and pass its local path."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"could not read DINOv2 weights from {path} (expected .safetensors, .pth, .pt or .bin): {e}"
        ) from e
    for wrapper in ("state_dict", "model"):  # training checkpoints often nest the weights
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _first(keys, n: int = 10) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def load_dinov2_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read and validate a ViT-S/14 checkpoint in either layout; returns it in Meta layout, float32.

    Raises FileNotFoundError for a missing file and ValueError for an unknown layout, missing or
    unexpected keys, or wrong shapes. Keys outside the detected prefix (e.g. a classifier head) are ignored.
    """
    path = Path(path)
    raw = _read_file(path)
    hits = [(layout, k[: -len(a)]) for layout, a in _ANCHORS.items() for k in raw if k == a or k.endswith("." + a)]
    if len(hits) != 1:
        layouts = dinov2_key_layouts()
        raise ValueError(
            f"{path}: layout detected: none ({len(hits)} patch-embedding keys found; need exactly one). "
            f"File keys: {_first(raw)}. Expected Hugging Face keys: {layouts['hf']}. Or Meta keys: {layouts['meta']}."
        )
    layout, prefix = hits[0]
    sd = {k[len(prefix) :]: v for k, v in raw.items() if k.startswith(prefix)}
    sd.pop(_MASK_TOKEN[layout], None)
    shapes = expected_shapes(layout)
    where = f"{path} (layout detected: {layout}, prefix {prefix!r})"
    missing, unexpected = shapes.keys() - sd.keys(), sd.keys() - shapes.keys()
    if missing or unexpected:
        raise ValueError(
            f"{where} is not a DINOv2 ViT-S/14 without registers. Missing keys: {_first(missing) or 'none'}. "
            f"Unexpected keys: {_first(unexpected) or 'none'}. Expected keys: {dinov2_key_layouts()[layout]}."
        )
    bad = [f"{k}: {tuple(sd[k].shape)} != expected {s}" for k, s in shapes.items() if tuple(sd[k].shape) != s]
    if bad:
        raise ValueError(f"{where} has wrongly shaped tensors (is it ViT-S/14?): {_first(bad)}")
    sd = {k: v.float().contiguous() for k, v in sd.items()}
    return hf_to_meta(sd) if layout == "hf" else sd


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """(1, 1 + 37*37, D) -> (1, 1 + grid_h*grid_w, D): the same computation as Meta's `interpolate_pos_encoding`."""
    m = math.isqrt(pos_embed.shape[1] - 1)
    if grid_h == m and grid_w == m:  # Meta skips interpolation here; the +0.1 below would not be a no-op
        return pos_embed
    patch = pos_embed[:, 1:].float().reshape(1, m, m, -1).permute(0, 3, 1, 2)
    # Meta passes scale_factor = (grid + 0.1) / 37 (a guard against the output size rounding down) rather
    # than size=grid; PyTorch samples at positions set by that scale, so we must pass the same one.
    patch = F.interpolate(patch, scale_factor=((grid_h + 0.1) / m, (grid_w + 0.1) / m), mode="bicubic", antialias=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1).to(pos_embed.dtype)
    return torch.cat([pos_embed[:, :1], patch], dim=1)


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D). qkv output is [q | k | v], each split into heads of D/heads channels."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, D/heads), scale 1/sqrt(D/heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.mlp.act = nn.GELU()  # exact (erf) GELU, as in DINOv2
        self.mlp.fc2 = nn.Linear(dim * mlp_ratio, dim)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    """The patch projection, under Meta's name (patch_embed.proj)."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, DIM, PATCH, stride=PATCH)


class DinoV2Encoder(nn.Module):
    """Frozen DINOv2 ViT-S/14: images (B, H, W, 3) -> normalised patch tokens (B, P, 384).

    P = (image_size // 14) ** 2 (196 for the default 196 px). Parameters never require grad and the
    module stays in eval mode, but autograd is not disabled: gradients reach a float input image.
    """

    def __init__(
        self, weights: str | Path | None, image_size: int = 196, *, state_dict: dict[str, torch.Tensor] | None = None
    ):
        """Weights from the file `weights`, or from `state_dict` (Meta's layout, as this module's own
        state_dict: how a saved world model restores its encoder)."""
        super().__init__()
        if image_size % PATCH:
            raise ValueError(f"image_size must be a multiple of {PATCH}, got {image_size}")
        # validate before building: never a randomly initialised model
        if state_dict is None and weights is None:
            raise ValueError("DinoV2Encoder needs the weights file or a state_dict")
        state = load_dinov2_state_dict(weights) if state_dict is None else state_dict  # type: ignore[arg-type]
        self.image_size = image_size
        self.num_tokens = (image_size // PATCH) ** 2
        self.dim = DIM
        with torch.device("meta"):  # skip the random init; every tensor is assigned from `state` below
            self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
            self.pos_embed = nn.Parameter(torch.zeros(1, PRETRAIN_GRID**2 + 1, DIM))
            self.patch_embed = _PatchEmbed()
            self.blocks = nn.ModuleList(_Block(DIM, HEADS, MLP_RATIO) for _ in range(DEPTH))
            self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.load_state_dict(state, strict=True, assign=True)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> DinoV2Encoder:
        """No-op: the encoder is frozen and always in eval mode."""
        return super().train(False)

    def freeze(self) -> DinoV2Encoder:
        """Already frozen; kept for the same interface as the other encoders. Returns self."""
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images float (B, 3, S, S) in [-1, 1] -> x_norm_patchtokens (B, (S//14)**2, 384)."""
        t = self.patch_embed.proj(x)  # (B, D, S/14, S/14)
        grid_h, grid_w = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2)  # (B, P, D), row-major over the patch grid
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        t = t + interpolate_pos_embed(self.pos_embed, grid_h, grid_w)
        for block in self.blocks:
            t = block(t)
        return self.norm(t)[:, 1:]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs uint8 (B, H, W, 3) in [0, 255] or float in [0, 1] -> tokens float (B, num_tokens, 384)."""
        if obs.ndim != 4 or obs.shape[-1] != 3:
            raise ValueError(f"expected images (B, H, W, 3), got shape {tuple(obs.shape)}")
        if obs.dtype == torch.uint8:
            x = obs.to(self.pos_embed.device).float() / 255.0
        elif obs.is_floating_point():
            x = obs.to(self.pos_embed.device, torch.float32)
        else:
            raise TypeError(f"expected uint8 or float images, got {obs.dtype}")
        x = x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
            )
        return self.forward_features((x - 0.5) / 0.5)  # mean = std = 0.5: [0, 1] -> [-1, 1], as in DINO-WM


def build_dinov2_encoder(cfg: EncoderConfig, dims: TaskDims) -> DinoV2Encoder:
    """The ViT with the weights model.encoder.dinov2_weights names (a file, or a Hub id fetched once)."""
    return DinoV2Encoder(cfg.dinov2_weights, image_size=cfg.dinov2_image_size)


def restore_dinov2_encoder(cfg: EncoderConfig, dims: TaskDims, state: dict[str, torch.Tensor]) -> DinoV2Encoder:
    """A saved run's ViT from the weights its model.safetensors holds (not from the weights file again)."""
    return DinoV2Encoder(None, image_size=cfg.dinov2_image_size, state_dict=state)


register_encoder(
    EncoderEntry(
        "dinov2",
        "DINOv2 patch tokens",
        build_dinov2_encoder,
        restore=restore_dinov2_encoder,
        needs_weights=True,
        settings=("dinov2_weights", "dinov2_image_size"),
    )
)
