"""Dataclass configs for training runs, with presets and `--set key=value` overrides.

Every field has a docstring; `valid_keys(RunConfig())` (wmplan.overrides) lists the dotted keys `--set`
accepts. The numbers every stage shares are in wmplan.defaults, the range checks in wmplan.range_checks, and
the casting of loose values to typed settings in wmplan.overrides.

Example:
    >>> cfg = preset("tiny", task="wall")
    >>> cfg = apply_overrides(cfg, {"train.epochs": 2, "model.predictor.depth": 1})
    >>> cfg.train.epochs, cfg.model.predictor.depth
    (2, 1)
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from wmplan.defaults import GD_LR, GD_NOISE, GD_STEPS, PLAN_HORIZON, SEED_MAX
from wmplan.overrides import cast_value, dataclass_from_dict, valid_keys
from wmplan.precision import check_precision
from wmplan.range_checks import check_finite, check_ranges
from wmplan.tasks import task_spec


@dataclass
class DataConfig:
    path: str = ""
    """The trajectory dataset (a zarr folder written by `wmplan collect`)."""
    num_hist: int = 3
    """Context frames the predictor sees (DINO-WM: 3; Wall: 1)."""
    num_pred: int = 1
    """Frames after the context in each training window."""
    frameskip: int = 5
    """Env steps per model step; a model action concatenates this many env actions."""
    val_fraction: float = 0.1
    """Share of episodes held out for validation (split by episode)."""
    split_seed: int = 0
    """Seed of the train/val split."""


@dataclass
class EncoderConfig:
    name: str = "conv"
    """Frozen encoder, by its name in wmplan.models.encoder_registry: conv (CPU default: keypoints, pretrained
    on the task's images), patch (a grid of patch-feature tokens, pretrained on the task's images), jepa
    (trained end to end with a predictor on the task's transitions, then frozen), dinov2; the privileged
    controls state (the whole state in one token) and particles (one xy token per particle: Rope, Granular)."""
    keypoints: int = 8
    """conv: keypoints, i.e. visual tokens per frame (scenes of many parts, such as a rope, may need more)."""
    pretrain_steps: int = 1000
    """conv, patch, jepa: optimisation steps of the encoder's own pretraining (stage 1 of `wmplan train`)."""
    pretrain_batch: int = 64
    """conv, patch: pretraining batch size (jepa: windows per batch)."""
    pretrain_lr: float = 3e-3
    """conv, patch, jepa: pretraining learning rate."""
    pretrain_frames: int = 20000
    """conv, patch: at most this many training-split frames are used for pretraining (patch: whole episodes)."""
    patch_grid: int = 8
    """patch: the token grid's side; visual tokens per frame = patch_grid ** 2 (images >= 4 x patch_grid px)."""
    patch_pool: int = 1
    """patch: tokens are means over pool x pool blocks of the grid: (patch_grid / patch_pool) ** 2 per frame."""
    patch_dim: int = 8
    """patch: width of each token (even): half near features, half spread wide (models/patch_encoder.py)."""
    patch_context_sigma: float = 2.0
    """patch: std, in grid cells, of the wide kernel that spreads features over the grid (the near one: 1)."""
    patch_rank_weight: float = 1.0
    """patch: weight of the pretraining's temporal ranking term (0: reconstruction only)."""
    patch_rarity_power: float = 1.0
    """patch: pretraining weighs each pixel's error by its colour's frequency to this power, negated (0: plain MSE)."""
    jepa_tokens: int = 1
    """jepa: tokens per frame. One token of 64 (LeWM's latent is one embedding too) ranked PushT's held-out
    distances at Spearman 0.74, 4 tokens of 8 at 0.50 (docs/results/pusht/encoders)."""
    jepa_dim: int = 64
    """jepa: width of each token (the latent has jepa_tokens x jepa_dim numbers)."""
    jepa_sigreg_weight: float = 1.0
    """jepa: weight of the anti-collapse regulariser (SIGReg) beside next-latent prediction."""
    dinov2_weights: str = ""
    """dinov2: a local DINOv2 ViT-S/14 weights file (.safetensors or .pth) or a Hub id (facebook/dinov2-small)."""
    dinov2_image_size: int = 196
    """dinov2: images are resized to this side (196 px -> 14 x 14 patches)."""


@dataclass
class PredictorConfig:
    depth: int = 6
    """Transformer blocks."""
    heads: int = 16
    """Attention heads."""
    head_dim: int = 64
    """Width of each head (attention inner width = heads * head_dim)."""
    mlp_dim: int = 2048
    """Hidden width of each block's MLP."""
    width: int = 0
    """Residual width; 0 means the token width itself (DINO-WM), else tokens are projected in and out."""
    dropout: float = 0.1
    """Dropout in attention outputs and MLPs."""


@dataclass
class ModelConfig:
    action_emb_dim: int = 10
    """Width of the per-frame action embedding tiled onto every visual token."""
    proprio_emb_dim: int = 10
    """Width of the per-frame proprio embedding tiled onto every visual token."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)


@dataclass
class TrainConfig:
    epochs: int = 100
    """Passes over the training windows."""
    batch_size: int = 32
    """Windows per optimisation step in each process (when global_batch_size is 0)."""
    global_batch_size: int = 0
    """Windows per optimisation step across all torchrun processes, split evenly (a count the processes do
    not divide is refused); 0: train.batch_size per process. Learning rates are never rescaled."""
    lr_predictor: float = 5e-4
    """AdamW learning rate of the predictor."""
    lr_embeddings: float = 5e-4
    """AdamW learning rate of the action and proprio embeddings."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    lr_schedule: str = "constant"
    """constant, or cosine: each learning rate decays from its value to 0 over the run's steps."""
    grad_clip: float = 1.0
    """Gradient norm clip (0: off)."""
    seed: int = 0
    """Seed of initialisation, shuffling and dropout."""
    device: str = "auto"
    """auto (cuda if available), cpu, cuda or cuda:N."""
    precision: str = "fp32"
    """The predictor's training precision (wmplan.precision): fp32, auto (bf16 autocast where the device
    multiplies bf16 faster: CUDA with bf16, CPUs with AVX512-BF16 or AMX) or bf16 (refused where it is not
    faster). The loss, gradients and optimizer states stay fp32."""
    max_val_windows: int = 4096
    """Validation uses at most this many windows (evenly spaced), for speed."""
    steps_per_epoch: int = 0
    """0: one pass over the training windows per epoch; else this many steps."""
    cache_tokens_gb: float = 4.0
    """Encode every frame once and keep the tokens in memory when they fit in this many GB."""


@dataclass
class AdversarialConfig:
    """Adversarial World Modeling (`wmplan finetune --method adversarial`); see training/adversarial.py.
    Radii eps = lambda x std of each group. Defaults: the factors of the authors' released config
    (0.05 visual, 0.02 proprio, 0.02 action), which produced the paper's Table 1 and lie well inside its
    robust range (lambda_z <= 0.5, lambda_a <= 1); a much larger lambda_z broke a Wall prototype."""

    lambda_visual: float = 0.05
    """Radius of the visual-latent perturbation, in units of the visual latents' std."""
    lambda_proprio: float = 0.02
    """Radius of the proprio-embedding perturbation, in units of the proprio embeddings' std."""
    lambda_action: float = 0.02
    """Radius of the action perturbation, in units of the actions' std (raw or embedded, per action_space)."""
    eps_mode: str = "fixed"
    """fixed: radii from the first minibatch's std, then kept (the paper's advice); adaptive: every batch."""
    action_space: str = "raw"
    """raw: perturb the normalised actions (the paper's equation); embedding: the action embeddings (the authors' code)."""
    pgd_steps: int = 1
    """Ascent steps of the attack: 1 is FGSM with a random start; k > 1 is PGD with k such steps."""
    step_factor: float = 1.25
    """Size of each ascent step, in units of eps (FGSM with random start: 1.25)."""


ONLINE_SHARES = ("fixed", "growing")
"""OnlineConfig.share: how much of each batch is online windows."""


@dataclass
class OnlineConfig:
    """Online World Modeling (`wmplan finetune --method online`); see training/online.py. Planner
    settings are the authors' (PAPER.md): Adam, lr 0.3, 100 steps, horizon 5, noise 0.003, goal 4 model
    steps after the start, a refresh every 10 batches. Buffer size, windows per refresh and the batch
    share are ours (the authors' buffer grows without bound)."""

    every: int = 10
    """Refresh the buffer (plan, execute, add windows) every this many training batches, from the first."""
    windows: int = 32
    """Start/goal pairs planned and executed per refresh (each gives horizon - num_hist + 1 windows)."""
    goal_steps: int = 4
    """The goal is the expert trajectory's state this many model steps after the start."""
    horizon: int = PLAN_HORIZON
    """Model steps planned and executed."""
    plan_steps: int = GD_STEPS["mpc"]
    """Adam steps of the planner."""
    lr: float = GD_LR["open loop"]
    """Planner step size."""
    noise: float = GD_NOISE
    """Planner: std of the noise added to the actions after each step."""
    buffer_size: int = 2048
    """Online windows kept (FIFO: the oldest are dropped first)."""
    online_fraction: float = 0.5
    """Share of each training batch drawn from the buffer once it holds windows; the rest is expert data
    (below 1: the expert windows anchor the model)."""
    share: str = "fixed"
    """fixed: `online_fraction` of every batch; growing: the authors' code's schedule, where the k-th pass over
    the training windows trains on expert and online windows 1 : k (share k / (k + 1): 1/2, 2/3, 3/4, ...;
    `online_fraction` unused). Their code makes one expert update and then one per earlier pass's online batch."""

    def check(self) -> OnlineConfig:
        """Raise a ValueError naming the first online setting out of its range (the online.* keys of
        RUN_MINIMUMS and RUN_POSITIVE); RunConfig.check and the online loss both ask this one rule."""
        section = {k.split(".", 1)[1]: low for k, low in RUN_MINIMUMS.items() if k.startswith("online.")}
        positive = tuple(k.split(".", 1)[1] for k in RUN_POSITIVE if k.startswith("online."))
        check_ranges(self, section, positive, prefix="online.")
        if self.share not in ONLINE_SHARES:
            raise ValueError(f"online.share must be one of {', '.join(ONLINE_SHARES)}, got {self.share!r}")
        if not 0 <= self.online_fraction < 1:
            raise ValueError(
                f"online.online_fraction must lie in [0, 1) (the rest of each batch is expert data), "
                f"got {self.online_fraction}"
            )
        return self


@dataclass
class FinetuneConfig:
    method: str = ""
    """How this run was made from its parent: adversarial | online; empty for a run trained from scratch."""
    parent: str = ""
    """The run directory it was finetuned from; empty for a run trained from scratch."""


@dataclass
class RunConfig:
    task: str = "wall"
    """Task name; must match the dataset's."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    online: OnlineConfig = field(default_factory=OnlineConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        return dataclass_from_dict(cls, stored_settings(values), "")

    def check(self) -> RunConfig:
        """Raise a ValueError naming the first setting out of its range (every number finite, RUN_MINIMUMS,
        RUN_POSITIVE, RUN_MAXIMUMS, and each registered encoder's own) or an unknown encoder; returns self."""
        # The encoders' own settings are bounded by their registry entries; asked here, not at import, since
        # the registry imports the encoders' modules (torch) on its first lookup.
        from wmplan.models.encoder_registry import encoder_entry, encoder_ranges

        check_finite(self)
        minimums, positive = encoder_ranges()
        check_ranges(self, {**RUN_MINIMUMS, **minimums}, (*RUN_POSITIVE, *positive), maximums=RUN_MAXIMUMS)
        encoder_entry(self.model.encoder.name)  # a ValueError lists the encoders there are
        if self.train.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"train.lr_schedule must be constant or cosine, got {self.train.lr_schedule!r}")
        if not 0 < self.data.val_fraction < 1:
            raise ValueError(f"data.val_fraction must lie strictly between 0 and 1, got {self.data.val_fraction}")
        check_precision(self.train.precision, "train.precision")
        self.online.check()
        return self


# Ranges of the run settings: dotted key -> least allowed value, and keys that must be above 0. Those of one
# encoder's own settings (keypoints, patch_*, jepa_*) are in its registry entry (wmplan.models.encoder_registry).
RUN_MINIMUMS = {
    "data.num_hist": 1,
    "data.num_pred": 1,
    "data.frameskip": 1,
    "data.split_seed": 0,
    "model.action_emb_dim": 1,
    "model.proprio_emb_dim": 1,
    "model.encoder.pretrain_steps": 0,
    "model.encoder.pretrain_batch": 1,
    "model.predictor.depth": 1,
    "model.predictor.heads": 1,
    "model.predictor.head_dim": 1,
    "model.predictor.mlp_dim": 1,
    "model.predictor.width": 0,
    "model.predictor.dropout": 0,
    "train.epochs": 1,
    "train.batch_size": 1,
    "train.global_batch_size": 0,
    "train.weight_decay": 0,
    "train.grad_clip": 0,
    "train.seed": 0,
    "train.max_val_windows": 1,
    "train.steps_per_epoch": 0,
    "train.cache_tokens_gb": 0,
    "adversarial.lambda_visual": 0,
    "adversarial.lambda_proprio": 0,
    "adversarial.lambda_action": 0,
    "adversarial.pgd_steps": 1,
    "online.every": 1,
    "online.windows": 1,
    "online.goal_steps": 1,
    "online.horizon": 1,
    "online.plan_steps": 1,
    "online.noise": 0,
    "online.buffer_size": 1,
}
RUN_MAXIMUMS = {"data.split_seed": SEED_MAX, "train.seed": SEED_MAX}
RUN_POSITIVE = (
    "train.lr_predictor",
    "train.lr_embeddings",
    "model.encoder.pretrain_lr",
    "adversarial.step_factor",
    "online.lr",
)


def stored_settings(values: dict[str, Any]) -> dict[str, Any]:
    """A stored run config (config.json's "config") in today's keys, for loading it and for comparing it
    with a config asked for. A config stored before train.precision existed has train.bf16 (CUDA autocast
    when true, fp32 otherwise, the CPU always fp32): read as the precision that run was trained in. One
    stored before train.global_batch_size existed took train.batch_size per process: read as 0; one stored
    before online.share existed mixed online_fraction into every batch: read as "fixed"."""
    online = values.get("online") if isinstance(values, dict) else None
    if isinstance(online, dict) and "share" not in online:
        values = {**values, "online": {**online, "share": "fixed"}}
    train = values.get("train") if isinstance(values, dict) else None
    if isinstance(train, dict) and "global_batch_size" not in train:
        train = {**train, "global_batch_size": 0}
        values = {**values, "train": train}
    if not isinstance(train, dict) or "bf16" not in train or "precision" in train:
        return values
    train = {k: v for k, v in train.items() if k != "bf16"}
    train["precision"] = "bf16" if values["train"]["bf16"] is True else "fp32"
    return {**values, "train": train}


# Preset predictors: tiny for tests (seconds), small for the CPU (Wall in minutes), paper (DINO-WM).
PREDICTOR_PRESETS = {
    "tiny": PredictorConfig(depth=2, heads=2, head_dim=16, mlp_dim=64, width=32, dropout=0.0),
    "small": PredictorConfig(depth=4, heads=4, head_dim=32, mlp_dim=256, width=128, dropout=0.0),
    "paper": PredictorConfig(),
}
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"epochs": 3, "batch_size": 32, "steps_per_epoch": 60, "lr_predictor": 1e-3, "lr_embeddings": 1e-3},
    "small": {"epochs": 12, "batch_size": 64},
    "paper": {"epochs": 100, "batch_size": 32},
}
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"pretrain_steps": 150, "pretrain_frames": 4000},
    "small": {},
    "paper": {"name": "dinov2"},
}
# Finetuning (`wmplan finetune`) starts from a converged model, so it takes far fewer passes; the
# papers give no finetuning length, so these are ours: about a quarter of training (tiny, small) and
# 10 of the paper's 100 epochs. Learning rates and batch size stay the parent's (training has no schedule).
FINETUNE_PRESETS = {
    "tiny": {"epochs": 1, "steps_per_epoch": 45},
    "small": {"epochs": 3, "steps_per_epoch": 0},
    "paper": {"epochs": 10, "steps_per_epoch": 0},
}


def preset(name: str, task: str = "wall") -> RunConfig:
    """The run config of a preset (tiny | small | paper) for a task."""
    if name not in PREDICTOR_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PREDICTOR_PRESETS)}")
    cfg = RunConfig(task=task)
    cfg.model.predictor = dataclasses.replace(PREDICTOR_PRESETS[name])
    cfg.model.encoder = dataclasses.replace(cfg.model.encoder, **ENCODER_PRESETS[name])
    cfg.train = dataclasses.replace(cfg.train, **TRAIN_PRESETS[name])
    return apply_overrides(cfg, task_spec(task).run_defaults)


def apply_overrides(cfg: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """A copy of cfg with dotted keys set; values are cast to the field's type. An unknown key is a
    ValueError that lists the valid ones; a value out of range is one too (RunConfig.check)."""
    cfg = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    keys = valid_keys(cfg)
    for key, value in overrides.items():
        if key not in keys:
            raise ValueError(f"unknown config key {key!r}; valid keys: {', '.join(keys)}")
        *path, name = key.split(".")
        target = cfg
        for part in path:
            target = getattr(target, part)
        setattr(target, name, cast_value(value, typing.get_type_hints(type(target))[name], key))
    return cfg.check()
