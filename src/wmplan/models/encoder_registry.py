"""The encoders wmplan can build, by name: the Encoder protocol and one EncoderEntry per encoder.

Each encoder's own module registers its entry (`register_encoder`) beside its code: how to build it from
the run's settings (checking those that depend on the task), whether it reads pixels or the simulator
state, how it is trained before it is frozen, the ranges of its own settings and its report title.
`config.RunConfig.check`, `build_encoder`, the trainer's stage 1, the reports and the CLI's `--encoder`
choices all read this table, so adding an encoder touches its own module(s) and, for one shipped with
wmplan, BUILTIN_MODULES below. This module imports no torch: the built-in encoders' modules are imported
on the first lookup.

Example:
    >>> encoder_entry("state").reads_state
    True
    >>> encoder_names()[:3]
    ('conv', 'patch', 'jepa')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from wmplan.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch
    from typing_extensions import Self

    from wmplan.config import EncoderConfig
    from wmplan.data.windows import TrajectoryWindows
    from wmplan.models.world_model import TaskDims


@runtime_checkable
class Encoder(Protocol):
    """A frozen observation encoder: the world model's only view of a frame. Every encoder is also a
    torch.nn.Module (the world model saves its weights with its own), which `build_encoder` checks."""

    num_tokens: int
    """P: tokens per frame."""
    dim: int
    """D: width of each token."""

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, H, W, 3) (or normalised states (B, S) where its entry reads_state) -> tokens
        float (B, P, D)."""
        ...

    def freeze(self) -> Self:
        """No parameter requires grad; eval mode. Returns self."""
        ...


class PretrainingData(Protocol):
    """What an encoder's pretraining may learn from (training.trainer.TrainingData has it): the training
    split's windows and, in their frames, each episode's [start, end) (E, 2)."""

    train: TrajectoryWindows
    train_bounds: np.ndarray


@dataclass(frozen=True)
class Pretraining:
    """How an encoder is trained before it is frozen (stage 1 of `wmplan train`)."""

    train: Callable[..., dict[str, Any]]
    """train(encoder, source, *, steps, batch_size, lr, seed, progress, device, **options) -> the facts
    that go into encoder.json; steps, batch_size and lr are model.encoder.pretrain_*, seed train.seed. It
    moves the encoder to `device` itself."""
    inputs: Callable[[EncoderConfig, PretrainingData, int], tuple[Any, dict[str, Any]]]
    """(the encoder's settings, the training data, the seed) -> (the `source` that train learns from, its
    own **options)."""


@dataclass(frozen=True)
class EncoderEntry:
    """One encoder: its name (model.encoder.name, --encoder) and everything wmplan needs to know of it."""

    name: str
    title: str
    """One line heading its section of a demo report."""
    build: Callable[[EncoderConfig, TaskDims], Encoder]
    """(settings, the task's spaces) -> the encoder; a ValueError names a setting that does not fit the task."""
    reads_state: bool = False
    """It encodes the simulator state (a privileged control), not images."""
    pretraining: Pretraining | None = None
    """None: it is frozen as built."""
    restore: Callable[[EncoderConfig, TaskDims, dict[str, torch.Tensor]], Encoder] | None = None
    """How a saved run rebuilds it from its weights in model.safetensors where `build` would read them from
    elsewhere (dinov2's weights file); None: `build`, then the saved weights are loaded into it."""
    minimums: Mapping[str, float] = field(default_factory=dict)
    """Its own EncoderConfig fields -> the least value each may take (RunConfig.check)."""
    positive: tuple[str, ...] = ()
    """Its own EncoderConfig fields that must be above 0 (RunConfig.check)."""
    needs_weights: bool = False
    """Building it needs weights from outside the dataset (dinov2's), which `wmplan demo` does not fetch."""
    settings: tuple[str, ...] = ()
    """The EncoderConfig fields it reads beyond those it bounds (minimums, positive): together they are the
    settings that make two of its runs differ. A change of another encoder's setting (or of a default of one)
    leaves its runs as they are (trainer.resume_conflicts)."""

    def reads(self) -> set[str]:
        """Every EncoderConfig field this encoder reads (its name aside)."""
        return {*self.settings, *self.minimums, *self.positive}


BUILTIN_MODULES = (
    "wmplan.models.encoder_training",  # conv
    "wmplan.models.patch_training",  # patch
    "wmplan.models.jepa_training",  # jepa
    "wmplan.models.encoders",  # state, particles
    "wmplan.models.dinov2",  # dinov2 (the ViT is built only when asked for: it needs weights)
)
"""The modules that register wmplan's own encoders; their order is the order names are listed in."""

_REGISTRY: Registry[EncoderEntry] = Registry("encoder", BUILTIN_MODULES, " (model.encoder.name, --encoder)")


def unread_settings(name: str) -> set[str]:
    """The EncoderConfig fields that the encoder `name` does not read: differences in them between two of its
    runs' configs are no differences."""
    from wmplan.config import EncoderConfig

    return {f.name for f in dataclasses.fields(EncoderConfig)} - {"name"} - encoder_entry(name).reads()


def register_encoder(entry: EncoderEntry) -> EncoderEntry:
    """Add `entry` under its name; returns it. A ValueError names a name already taken or a range given for
    a setting that EncoderConfig lacks, that config.py bounds for every encoder (pretrain_*), or that
    another encoder bounds otherwise."""
    from wmplan.config import RUN_MINIMUMS, RUN_POSITIVE, EncoderConfig

    fields = {f.name for f in dataclasses.fields(EncoderConfig)}
    for setting in [*entry.minimums, *entry.positive]:
        if setting not in fields:
            raise ValueError(
                f"encoder {entry.name!r} gives a range for model.encoder.{setting}, which is no setting of "
                "EncoderConfig; name one of its fields"
            )
        if f"model.encoder.{setting}" in (*RUN_MINIMUMS, *RUN_POSITIVE):
            raise ValueError(
                f"encoder {entry.name!r} gives a range for model.encoder.{setting}, which config.py bounds for "
                "every encoder; give ranges of its own settings only"
            )
    for other in _REGISTRY.registered():
        for setting in set(entry.minimums) & set(other.minimums):
            if entry.minimums[setting] != other.minimums[setting]:
                raise ValueError(
                    f"encoder {entry.name!r} bounds model.encoder.{setting} below by {entry.minimums[setting]}, "
                    f"encoder {other.name!r} by {other.minimums[setting]}; give it one least value"
                )
    return _REGISTRY.add(entry)


def unregister_encoder(name: str) -> None:
    """Remove the encoder `name` (a KeyError if none is registered under it)."""
    _REGISTRY.remove(name)


def encoder_names() -> tuple[str, ...]:
    """Every registered encoder: wmplan's own in the order of BUILTIN_MODULES, then the others as registered."""
    return _REGISTRY.names()


def encoder_entry(name: str) -> EncoderEntry:
    """The entry of the encoder `name`; a ValueError lists the names there are."""
    return _REGISTRY.get(name)


def encoder_title(name: str) -> str:
    """The report title of the encoder `name`; the name itself where none is registered under it (a report
    of runs made with an encoder this installation lacks)."""
    entry = _REGISTRY.find(name)
    return entry.title if entry is not None else name


def encoder_ranges() -> tuple[dict[str, float], tuple[str, ...]]:
    """Every registered encoder's own ranges as run config keys (model.encoder.<field>): (least values,
    settings that must be above 0). RunConfig.check applies them whichever encoder a run uses."""
    minimums: dict[str, float] = {}
    positive: list[str] = []
    for name in encoder_names():
        entry = _REGISTRY.get(name)
        minimums |= {f"model.encoder.{k}": low for k, low in entry.minimums.items()}
        positive += [f"model.encoder.{k}" for k in entry.positive if f"model.encoder.{k}" not in positive]
    return minimums, tuple(positive)
