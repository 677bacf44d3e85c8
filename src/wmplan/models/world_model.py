"""The world model: a frozen encoder, action and proprio embeddings, and a frame-causal predictor.

A frame's latent is its visual tokens (P, D) and its proprio embedding (Ep,). The predictor sees tokens
[visual | proprio emb | action emb] (DINO-WM's layout: both embeddings tiled onto every visual token)
and predicts the next frame's [visual | proprio emb].

Example:
    >>> model = WorldModel.load("runs/wall")                              # doctest: +SKIP
    >>> z0 = model.encode(obs=obs[:, None], proprio=proprio[:, None])     # (B, 1, ...) one context frame
    >>> z = model.rollout(z0, actions)      # actions (B, H, fs * A) normalised -> latents (B, H + 1, ...)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from torch import nn

from wmplan import __version__
from wmplan.config import RunConfig
from wmplan.data.windows import Normalizer
from wmplan.models.encoder_build import build_encoder, saved_encoder
from wmplan.models.encoder_registry import Encoder, encoder_entry
from wmplan.models.predictor import FrameCausalPredictor
from wmplan.models.run_folder import DIMS_TYPES, RUN_FILES, RUN_FORMAT, RunFolder
from wmplan.precision import autocast
from wmplan.writing import atomic_write


@dataclass
class Latent:
    """Per-frame latents: visual (B, T, P, D) and proprio embedding (B, T, Ep)."""

    visual: torch.Tensor
    proprio: torch.Tensor

    def frames(self, index: slice | int) -> Latent:
        if isinstance(index, int):  # keep the frame axis; -1 is the last frame
            index = slice(index, index + 1 if index != -1 else None)
        return Latent(self.visual[:, index], self.proprio[:, index])

    @staticmethod
    def cat(latents: list[Latent]) -> Latent:
        return Latent(torch.cat([z.visual for z in latents], 1), torch.cat([z.proprio for z in latents], 1))

    def flat(self) -> torch.Tensor:
        """(B, T, P * (D + Ep)): visual tokens with the proprio embedding tiled, as the loss sees them."""
        b, t, p, _ = self.visual.shape
        tiled = self.proprio[:, :, None].expand(b, t, p, -1)
        return torch.cat([self.visual, tiled], -1).reshape(b, t, -1)

    def detach(self) -> Latent:
        return Latent(self.visual.detach(), self.proprio.detach())


@dataclass(frozen=True)
class TaskDims:
    """What the model needs to know of its task's spaces."""

    task: str
    image_size: int
    state_dim: int
    proprio_dim: int
    action_dim: int
    angle_dims: tuple[int, ...] = ()
    """State indices that are angles (PushT's block angle): the `state` encoder gives each as its cosine
    and sine, so a turn through 0 = 2 pi is a small step in the latent, as it is in the image."""


def check_device(name: str | torch.device) -> torch.device:
    """A device other than auto that this torch can run on: cpu; cuda or cuda:N when it sees that GPU; the
    accelerator it sees otherwise (mps, xpu, ...). Else a ValueError naming the device and the choices."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name} asked for, but this torch build sees no CUDA device; use --device cpu")
        count = torch.cuda.device_count()
    else:
        accelerator = torch.accelerator.current_accelerator()
        if accelerator is None or accelerator.type != device.type:
            raise ValueError(f"device {name} is not one this torch runs on; use auto, cpu, cuda or cuda:N")
        count = torch.accelerator.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {name} asked for, but this torch sees {count} {device.type} device(s)")
    return device


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The one device rule of every command (`--device`, `train.device`): auto (or None) is CUDA when
    this torch sees a GPU, else the CPU; any other name must pass check_device."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = check_device(name)
    if device.type == "cuda":  # TF32 matmuls: ~8x the fp32 rate on Ampere and later, 10 mantissa bits
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


class WorldModel(nn.Module):
    """Owns its encoder (frozen), action_encoder, proprio_encoder and predictor."""

    # buffers (register_buffer), declared for the type checker
    state_mean: torch.Tensor
    state_std: torch.Tensor

    encoder: Encoder  # a submodule (nn.Module's __setattr__ registers it), typed by its protocol

    def __init__(self, cfg: RunConfig, dims: TaskDims, normalizer: Normalizer, encoder: Encoder | None = None):
        super().__init__()
        # the predictor under bfloat16 autocast while planning (evaluation's planner.precision); the actions,
        # the cost and the optimizer stay fp32
        self.plan_bf16 = False
        self.cfg, self.dims, self.normalizer = cfg, dims, normalizer
        self.task_settings: dict[str, Any] | None = None  # the simulator settings of the training data
        self.run_folder: RunFolder | None = None  # the run it was loaded from (WorldModel.load)
        m = cfg.model
        self.encoder = (encoder if encoder is not None else build_encoder(m.encoder, dims)).freeze()
        self.uses_state = encoder_entry(m.encoder.name).reads_state
        self.register_buffer("state_mean", torch.as_tensor(normalizer.state_mean))
        self.register_buffer("state_std", torch.as_tensor(normalizer.state_std))
        self.action_dim = cfg.data.frameskip * dims.action_dim
        self.action_encoder = nn.Linear(self.action_dim, m.action_emb_dim)
        self.proprio_encoder = nn.Linear(dims.proprio_dim, m.proprio_emb_dim)
        d, p = self.encoder.dim, self.encoder.num_tokens
        self.num_hist = cfg.data.num_hist
        self.predictor = FrameCausalPredictor(
            d + m.proprio_emb_dim + m.action_emb_dim, d + m.proprio_emb_dim, p, self.num_hist, m.predictor
        )

    # ----- encoding --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_visual(self, obs: torch.Tensor | None = None, state: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen visual tokens (B, T, P, D) of uint8 images (B, T, H, W, 3), or of raw states (B, T, S)
        for the encoders of the state (those whose registry entry reads_state)."""
        x = state if self.uses_state else obs
        if x is None:
            raise ValueError(f"the {self.cfg.model.encoder.name} encoder needs {'state' if self.uses_state else 'obs'}")
        self.check_image_size((x.shape[-3], x.shape[-2]), "these images")
        b, t = x.shape[:2]
        if self.uses_state:
            x = self.state_features(x.float())
        return self.encoder(x.flatten(0, 1)).view(b, t, self.encoder.num_tokens, self.encoder.dim)

    def check_image_size(self, size: tuple[int, int], what: str) -> None:
        """Refuse images of another size than the model's own (dims.image_size, the size its encoder
        was built and pretrained for) with a ValueError naming both; a state model takes any."""
        own = self.dims.image_size
        if not self.uses_state and tuple(size) != (own, own):
            raise ValueError(
                f"{what} are {size[0]}x{size[1]} px but this model's {self.cfg.model.encoder.name} encoder "
                f"was built for {own}x{own} px images; render (or collect) the task at image_size={own}, "
                f"or train a model on data of that size"
            )

    def state_features(self, state: torch.Tensor) -> torch.Tensor:
        """Raw states (..., S) -> the `state` encoder's input: z-scored dims, each angle as (cos, sin)."""
        z = (state - self.state_mean) / self.state_std
        angles = list(self.dims.angle_dims)
        if not angles:
            return z
        keep = [i for i in range(state.shape[-1]) if i not in angles]
        return torch.cat([z[..., keep], torch.cos(state[..., angles]), torch.sin(state[..., angles])], dim=-1)

    def encode(
        self,
        obs: torch.Tensor | None = None,
        proprio: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
    ) -> Latent:
        """Latent of frames: obs uint8 (B, T, H, W, 3) (or precomputed `visual` (B, T, P, D)) and
        normalised proprio (B, T, Pp)."""
        visual = self.encode_visual(obs, state) if visual is None else visual
        if proprio is None:
            raise ValueError("encode needs the normalised proprio (B, T, Pp) beside the frames")
        return Latent(visual, self.proprio_encoder(proprio.float()))

    def embed_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalised actions (B, T, fs * A) -> action embeddings (B, T, Ea)."""
        return self.action_encoder(actions.float())

    def _tokens(self, z: Latent, action_emb: torch.Tensor) -> torch.Tensor:
        """[visual | proprio emb | action emb] (B, T, P, D + Ep + Ea) for T frames and their action
        embeddings (B, T, Ea)."""
        b, t, p, _ = z.visual.shape
        return torch.cat(
            [z.visual, z.proprio[:, :, None].expand(b, t, p, -1), action_emb[:, :, None].expand(b, t, p, -1)], -1
        )

    # ----- action units ----------------------------------------------------------------------------
    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """The model's normalised actions (B, H, fs * A) -> env actions (B, H * fs, A), for a simulator."""
        b = actions.shape[0]
        return self.normalizer.denormalize_action(
            actions.detach().cpu().float().reshape(b, -1, self.dims.action_dim)
        ).numpy()

    def model_actions(self, env_actions: np.ndarray) -> torch.Tensor:
        """Env actions (B, H * fs, A) -> normalised model actions (B, H, fs * A) on the model's device."""
        b, n, a = env_actions.shape
        fs = self.cfg.data.frameskip
        norm = self.normalizer.normalize_action(env_actions.astype(np.float32)).astype(np.float32)
        return torch.as_tensor(norm.reshape(b, n // fs, fs * a), device=self.state_mean.device)

    # ----- prediction ------------------------------------------------------------------------------
    def predict(self, z: Latent, actions: torch.Tensor) -> Latent:
        """Teacher forcing: latents of T <= num_hist frames and their actions (B, T, fs * A) -> the
        predicted latents of the T next frames."""
        return self.predict_embedded(z, self.embed_actions(actions))

    def predict_embedded(self, z: Latent, action_emb: torch.Tensor) -> Latent:
        """`predict` from action embeddings (B, T, Ea) instead of actions: the hook for perturbing
        the embeddings themselves (adversarial finetuning's `embedding` action space)."""
        tokens = self._tokens(z, action_emb)
        if self.plan_bf16:  # planning only: training has its own autocast (train.precision)
            with autocast(True, tokens.device):
                out = self.predictor(tokens).float()
        else:
            out = self.predictor(tokens)
        d = self.encoder.dim
        return Latent(out[..., :d], out[..., d:].mean(dim=2))

    def encode_window(self, batch: dict[str, torch.Tensor]) -> tuple[Latent, torch.Tensor, Latent]:
        """A batch of windows -> (context, actions, target): the num_hist context latents (B, h, ...)
        with the proprio embedding still attached to its encoder's graph, their actions (B, h, fs * A),
        and the detached latents of the h next frames (B, h, ...). batch: obs (B, W, H, W, 3) or visual
        (B, W, P, D), proprio (B, W, Pp), action (B, W - 1, fs * A), state (B, W, S)."""
        z = self.encode(batch.get("obs"), batch["proprio"], batch.get("state"), batch.get("visual"))
        h = self.num_hist
        return z.frames(slice(0, h)), batch["action"][:, :h], z.frames(slice(1, h + 1)).detach()

    def prediction_loss(self, context: Latent, action_emb: torch.Tensor, target: Latent) -> torch.Tensor:
        """Teacher-forced loss of a (possibly perturbed) context and action embeddings (B, h, Ea)
        against `target` latents: the one definition the plain and the adversarial losses share."""
        return self.latent_mse(self.predict_embedded(context, action_emb), target)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE between predicted and encoded next-frame latents (visual + proprio dims, targets
        detached) over the num_hist predicted frames of each window; with `baseline`, the loss of
        copying the last frame instead. batch: as in `encode_window`."""
        context, actions, target = self.encode_window(batch)
        loss = self.prediction_loss(context, self.embed_actions(actions), target)
        baseline = self.latent_mse(context.detach(), target)
        return {"loss": loss, "baseline": baseline}

    @staticmethod
    def latent_mse(a: Latent, b: Latent) -> torch.Tensor:
        """Mean squared error over visual tokens with the proprio embedding tiled (DINO-WM's loss)."""
        return F.mse_loss(a.flat(), b.flat())

    def rollout(self, z0: Latent, actions: torch.Tensor, past_actions: torch.Tensor | None = None) -> Latent:
        """Autoregressive prediction, differentiable in the actions. z0: T0 context frames
        (B, T0, ...); past_actions (B, T0 - 1, fs * A) taken between them; actions (B, H, fs * A).
        Returns latents (B, T0 + H, ...): the context followed by H predicted frames. The context
        window holds the last num_hist frames and slides."""
        t0 = z0.visual.shape[1]
        acts = actions if past_actions is None else torch.cat([past_actions, actions], 1)
        if acts.shape[1] != t0 - 1 + actions.shape[1]:
            raise ValueError(
                f"a context of {t0} frames needs {t0 - 1} past actions, got {acts.shape[1] - actions.shape[1]}"
            )
        z = z0
        for step in range(actions.shape[1]):
            end = t0 + step  # frames known so far
            start = max(0, end - self.num_hist)
            window = z.frames(slice(start, end))
            z = Latent.cat([z, self.predict(window, acts[:, start:end]).frames(-1)])
        return z

    def use_config(self, cfg: RunConfig) -> None:
        """Train on with `cfg` (a resumed or finetuned run's): its training and data-path settings may
        differ, but not what defines this model's weights and inputs (task, model.*, frameskip, history)."""
        fixed = {
            "task": (cfg.task, self.cfg.task),
            "model": (cfg.model, self.cfg.model),
            "data.frameskip": (cfg.data.frameskip, self.cfg.data.frameskip),
            "data.num_hist": (cfg.data.num_hist, self.cfg.data.num_hist),
        }
        changed = [key for key, (new, old) in fixed.items() if new != old]
        if changed:
            raise ValueError(f"a trained model cannot change {', '.join(changed)}; train a new run for that")
        self.cfg = cfg

    # ----- files -----------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "dims": dataclasses.asdict(self.dims),
            "task_settings": self.task_settings,
        }

    def save(self, run_dir: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write config.json, model.safetensors and normalization.json into run_dir, each atomically."""
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write(run_dir / "model.safetensors", lambda p: save_file(state, str(p)))
        atomic_write(
            run_dir / "normalization.json", lambda p: p.write_text(json.dumps(self.normalizer.to_dict(), indent=2))
        )
        meta = {"format": RUN_FORMAT, "wmplan_version": __version__, **self.describe(), **(extra or {})}
        atomic_write(run_dir / "config.json", lambda p: p.write_text(json.dumps(meta, indent=2)))

    @classmethod
    def load(cls, run_dir: str | Path, device: str | torch.device = "cpu", task: str | None = None) -> WorldModel:
        """Rebuild a saved model; `task` makes a run of another task an error. Reads the run's last
        complete checkpoint (wmplan.writing.checkpoint_source), also when a kill tore the run folder,
        every file checked against its hash in checkpoint.json (RunFolder.read_bytes). The model keeps
        the RunFolder it came from as `run_folder` (its `state()` names the set that was read)."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no run at {run_dir}; train one with `wmplan train --out {run_dir}`")
        folder = RunFolder(run_dir)
        source = folder.source
        for name in RUN_FILES:
            if not (source / name).exists():
                raise FileNotFoundError(
                    f"{run_dir} is not a complete run: {name} is missing; train one with `wmplan train --out {run_dir}`"
                )
        meta = folder.meta()
        cfg, dims = (
            folder.config(),
            TaskDims(**{k: meta["dims"][k] for k in DIMS_TYPES}, angle_dims=tuple(meta["dims"].get("angle_dims", ()))),
        )
        if task is not None and dims.task != task:
            raise ValueError(f"{run_dir} is a model of task {dims.task!r}, not {task!r}")
        weights = folder.read_bytes("model.safetensors")
        try:
            state = load_safetensors(weights)
        except Exception as exc:  # safetensors raises its own error types for a truncated or garbled file
            raise ValueError(
                f"{source / 'model.safetensors'} cannot be read ({exc}); the run is damaged: train it again"
            ) from exc
        encoder = saved_encoder(
            cfg.model.encoder, dims, {k[8:]: v for k, v in state.items() if k.startswith("encoder.")}
        )
        norm = folder.normalization()
        model = cls(
            cfg,
            dims,
            Normalizer.from_dict({f.name: norm[f.name] for f in dataclasses.fields(Normalizer)}),
            encoder=encoder,
        )
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # missing, unexpected or misshapen tensors: the file is another model's
            first = " ".join(str(exc).split())[:300]
            raise ValueError(
                f"{source / 'model.safetensors'} does not hold this run's weights ({first}); the run is damaged: "
                "train it again"
            ) from None
        model.task_settings = meta.get("task_settings")
        model.run_folder = folder
        model.encoder.freeze()
        return model.to(device)

    @classmethod
    def from_pretrained(
        cls, name: str | Path, device: str | torch.device = "cpu", task: str | None = None
    ) -> WorldModel:
        """A run from a local folder or a Hub id (`owner/name`, a run uploaded with `push_to_hub` or
        `wmplan push`; downloaded once into the Hub client's cache)."""
        from wmplan.hub import local_run

        return cls.load(local_run(name), device=device, task=task)

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
        """Upload this model as a run (config.json, model.safetensors, normalization.json and a model card)
        to a Hub model repository; returns its URL. `wmplan push --run DIR` uploads a run folder as it is."""
        import tempfile

        from wmplan.hub import push_run

        with tempfile.TemporaryDirectory() as tmp:
            self.save(tmp)
            return push_run(tmp, repo_id, private=private, token=token)
