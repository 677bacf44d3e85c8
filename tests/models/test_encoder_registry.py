"""The encoder registry: an encoder defined and registered in this file alone trains, loads back and is
offered by the CLI and the config, and the registry's entries are what every part of wmplan reads."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wmplan.cli import main
from wmplan.cli.entry import build_parser
from wmplan.cli_types import CommandLineError
from wmplan.config import apply_overrides, preset
from wmplan.models.encoder_build import build_encoder
from wmplan.models.encoder_registry import (
    Encoder,
    EncoderEntry,
    Pretraining,
    encoder_entry,
    encoder_names,
    encoder_title,
    register_encoder,
    unregister_encoder,
)
from wmplan.models.encoders import images_to_float
from wmplan.models.world_model import TaskDims, WorldModel
from wmplan.training.trainer import TrainingData

TOY = "mean_colour"
BUILTIN = ("conv", "patch", "jepa", "state", "particles", "dinov2")
DIMS = TaskDims("wall", 64, 2, 2, 2)


class MeanColourEncoder(nn.Module):
    """Images -> the mean colour of each cell of a grid x grid split, less the pretraining frames' mean
    colour: tokens (B, grid ** 2, 3)."""

    offset: torch.Tensor  # buffer, declared for the type checker

    def __init__(self, grid: int):
        super().__init__()
        self.grid, self.num_tokens, self.dim = grid, grid * grid, 3
        self.register_buffer("offset", torch.zeros(3))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool2d(images_to_float(obs), self.grid)  # (B, 3, grid, grid)
        return cells.flatten(2).transpose(1, 2) - self.offset

    def freeze(self) -> "MeanColourEncoder":
        self.requires_grad_(False)
        return self.eval()


def build_mean_colour(cfg, dims: TaskDims) -> MeanColourEncoder:
    if dims.image_size < cfg.patch_grid:
        raise ValueError(f"model.encoder.patch_grid must be at most the image size {dims.image_size}")
    return MeanColourEncoder(cfg.patch_grid)


def fit_offset(encoder, frames, *, steps, batch_size, lr, seed, progress, device, **options) -> dict:
    encoder.to(device)
    encoder.offset.copy_(images_to_float(frames).mean(dim=(0, 2, 3)).to(device))
    return {"frames": len(frames), "steps_asked": steps}


def first_frames(enc, data, seed: int):
    return data.train.obs[: enc.pretrain_frames], {}


@pytest.fixture
def mean_colour():
    """The toy encoder, registered for one test only (grid side: model.encoder.patch_grid, bounded by it)."""
    entry = register_encoder(
        EncoderEntry(
            TOY,
            "pixel model (`mean_colour` toy encoder: the mean colour of each grid cell)",
            build_mean_colour,
            pretraining=Pretraining(fit_offset, first_frames),
            minimums={"patch_grid": 1},
        )
    )
    yield entry
    unregister_encoder(TOY)


def test_an_encoder_registered_in_one_file_trains_from_the_cli_and_loads_back(mean_colour, wall_store, tmp_path):
    out = tmp_path / "run"
    settings = ["--set", "train.epochs=1", "--set", "train.steps_per_epoch=3", "--set", "model.encoder.patch_grid=2"]
    argv = ["train", "--data", str(wall_store.path), "--out", str(out), "--preset", "tiny", "--encoder", TOY]
    assert main([*argv, *settings, "--set", "model.encoder.pretrain_frames=100"]) == 0

    info = json.loads((out / "encoder.json").read_text())
    assert info["encoder"] == TOY and info["pretrain"] == {"frames": 100, "steps_asked": 150}  # the tiny preset's
    model = WorldModel.load(out)
    assert isinstance(model.encoder, MeanColourEncoder) and isinstance(model.encoder, Encoder)
    assert (model.encoder.num_tokens, model.encoder.dim) == (4, 3) and not model.uses_state
    # the offset that stage 1 fitted (a fresh build's is 0) came back from model.safetensors
    frames = TrainingData(model.cfg).train.obs[:100]
    expected = images_to_float(frames).mean(dim=(0, 2, 3))
    assert torch.allclose(model.encoder.offset, expected, atol=1e-6) and expected.abs().min() > 0.01
    tokens = model.encode_visual(obs=frames[:2, None])
    assert tokens.shape == (2, 1, 4, 3)
    assert torch.allclose(tokens[:, 0], MeanColourEncoder(2)(frames[:2]) - expected, atol=1e-6)


def test_a_registered_encoder_is_a_choice_of_the_cli_and_the_config(mean_colour):
    assert encoder_names() == (*BUILTIN, TOY)
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--encoder", TOY])
    assert args.encoder == TOY
    cfg = apply_overrides(preset("tiny", "wall"), {"model.encoder.name": TOY})
    assert cfg.model.encoder.name == TOY
    with pytest.raises(ValueError, match=f"dinov2, {TOY} \\(model.encoder.name, --encoder\\)"):
        apply_overrides(cfg, {"model.encoder.name": "nope"})
    assert encoder_title(TOY).startswith("pixel model (`mean_colour`")


def test_the_config_bounds_a_setting_by_the_range_its_encoder_registers(mean_colour):
    cfg = preset("tiny", "wall")
    with pytest.raises(ValueError, match="model.encoder.patch_grid must be at least 1, got 0"):
        apply_overrides(cfg, {"model.encoder.patch_grid": 0})
    unregister_encoder(TOY)
    try:  # no other encoder bounds it in the config: the patch encoder's build refuses it, knowing the image size
        assert apply_overrides(cfg, {"model.encoder.patch_grid": 0}).model.encoder.patch_grid == 0
    finally:
        register_encoder(mean_colour)


def test_registering_refuses_a_taken_name_an_unknown_setting_and_a_second_least_value(mean_colour):
    build = build_mean_colour
    with pytest.raises(ValueError, match="'conv' is already registered"):
        register_encoder(EncoderEntry("conv", "again", build))
    with pytest.raises(ValueError, match="model.encoder.colours, which is no setting of EncoderConfig"):
        register_encoder(EncoderEntry("other", "other", build, minimums={"colours": 1}))
    with pytest.raises(ValueError, match="model.encoder.pretrain_steps, which config.py bounds for every encoder"):
        register_encoder(EncoderEntry("other", "other", build, minimums={"pretrain_steps": 5}))
    with pytest.raises(ValueError, match="model.encoder.patch_grid below by 2, encoder 'mean_colour' by 1"):
        register_encoder(EncoderEntry("other", "other", build, minimums={"patch_grid": 2}))
    assert "other" not in encoder_names()


def test_an_entry_that_builds_no_module_is_refused_naming_it():
    register_encoder(EncoderEntry("plain", "plain", lambda cfg, dims: object()))
    try:
        with pytest.raises(TypeError, match="the plain encoder's entry built 'object', which is not a torch.nn.Module"):
            build_encoder(apply_overrides(preset("tiny", "wall"), {"model.encoder.name": "plain"}).model.encoder, DIMS)
    finally:
        unregister_encoder("plain")


def test_the_builtin_entries_say_what_the_code_used_to_list():
    assert encoder_names() == BUILTIN  # nothing registered by an earlier test is left
    assert [n for n in BUILTIN if encoder_entry(n).reads_state] == ["state", "particles"]
    assert [n for n in BUILTIN if encoder_entry(n).pretraining] == ["conv", "patch", "jepa"]
    assert [n for n in BUILTIN if encoder_entry(n).needs_weights] == ["dinov2"]
    assert encoder_title(TOY) == TOY  # a report of runs made with an encoder not registered now: its name
    with pytest.raises(CommandLineError, match=f"invalid choice: '{TOY}'"):
        build_parser().parse_args(["train", "--data", "d", "--out", "o", "--encoder", TOY])


def test_a_setting_of_another_encoder_is_no_difference_to_a_runs_config():
    from wmplan.config import apply_overrides, preset
    from wmplan.training.trainer import resume_conflicts

    conv = apply_overrides(preset("tiny", "wall"), {"model.encoder.name": "conv"})
    stored = conv.to_dict()
    for other in ("model.encoder.jepa_dim", "model.encoder.patch_grid", "model.encoder.dinov2_image_size"):
        changed = apply_overrides(conv, {other: 16})
        assert resume_conflicts(stored, changed) == [], other
    assert resume_conflicts(stored, apply_overrides(conv, {"model.encoder.keypoints": 4})) == [
        "model.encoder.keypoints"
    ]
    assert resume_conflicts(stored, apply_overrides(conv, {"model.encoder.pretrain_steps": 7})) == [
        "model.encoder.pretrain_steps"
    ]
    state = apply_overrides(conv, {"model.encoder.name": "state"})  # reads no encoder setting at all
    assert resume_conflicts(state.to_dict(), apply_overrides(state, {"model.encoder.pretrain_steps": 7})) == []
    jepa = apply_overrides(conv, {"model.encoder.name": "jepa"})
    assert resume_conflicts(jepa.to_dict(), apply_overrides(jepa, {"model.encoder.jepa_dim": 8})) == [
        "model.encoder.jepa_dim"
    ]
