"""A few training and planning steps of a preset with random weights: throughput and memory on a device.

    python scripts/gpu_check.py [--device cuda] [--preset paper] [--steps 10] [--episodes 8] [--json PATH]

The paper preset with DINOv2's token shape (196 patch tokens of 384 dims, 3 context frames), the trainer's
step (AdamW, bf16 autocast on CUDA unless --fp32) on synthetic cached tokens, then one Adam plan (100 steps)
and one CEM plan (300 samples x 30 iterations) for a batch of episodes. Prints samples per second, FLOP/s
(counted by torch's FlopCounterMode), peak device memory and seconds per plan. Weights are random: the
timing and memory do not depend on them. Runs on a CPU too (`--device cpu --preset tiny`: a smoke test).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from wmplan.config import apply_overrides, preset
from wmplan.data.windows import Normalizer
from wmplan.models.encoders import GivenTokens
from wmplan.models.world_model import Latent, TaskDims, WorldModel, resolve_device
from wmplan.planning import CEMConfig, CEMPlanner, GDConfig, GDPlanner, objective_for


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up: allocations, kernel selection
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument("--preset", default="paper", choices=["tiny", "small", "paper"])
    parser.add_argument("--tokens", type=int, default=196, help="visual tokens per frame (DINOv2 at 196 px: 196)")
    parser.add_argument("--token-dim", type=int, default=384, help="width of a visual token (ViT-S/14: 384)")
    parser.add_argument("--num-hist", type=int, default=3, help="context frames (DINO-WM: 3)")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the preset's")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per planning call")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    cfg = apply_overrides(preset(args.preset), {"data.num_hist": args.num_hist})
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    dims = TaskDims("pusht", 224, 2, 2, 2)
    model = WorldModel(
        cfg, dims, Normalizer(zeros, ones, zeros, ones, zeros, ones), encoder=GivenTokens(args.tokens, args.token_dim)
    ).to(device)
    bs, w = args.batch_size or cfg.train.batch_size, args.num_hist + 1
    action_width = cfg.data.frameskip * dims.action_dim
    batch = {
        "visual": torch.randn(bs, w, args.tokens, args.token_dim, device=device),
        "proprio": torch.randn(bs, w, 2, device=device),
        "action": torch.randn(bs, w - 1, action_width, device=device),
    }
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    bf16 = device.type == "cuda" and not args.fp32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def train_step() -> None:
        with autocast:
            loss = model.loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        train_step()
    flops = counter.get_total_flops()
    step_s = timed(train_step, device, args.steps)

    model.eval()
    g = torch.Generator(device=device).manual_seed(0)
    n = args.episodes

    def latent(frames: int) -> Latent:
        visual = torch.randn(n, frames, args.tokens, args.token_dim, device=device, generator=g)
        return model.encode(proprio=torch.randn(n, frames, 2, device=device, generator=g), visual=visual)

    with torch.no_grad():
        z0, goal = latent(args.num_hist), latent(1)
    objective = objective_for("pusht")
    adam = GDPlanner(GDConfig(optimizer="adam", steps=100), objective)
    cem = CEMPlanner(CEMConfig(iterations=30), objective)
    model.plan_bf16 = bf16  # planning with the predictor under bf16 autocast, as eval's planner.bf16
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "preset": args.preset,
        "bf16": bf16,
        "batch_size": bs,
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_step_ms": 1000 * step_s,
        "train_samples_per_second": bs / step_s,
        "train_flops_per_step": flops,
        "train_achieved_flops": flops / step_s,
        "adam100_plan_seconds": timed(lambda: adam.plan(model, z0, goal), device, 1),
        "cem300x30_plan_seconds": timed(lambda: cem.plan(model, z0, goal), device, 1),
        "episodes_per_plan": n,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    for key, value in result.items():
        print(f"  {key:<26} {value:,.4g}" if isinstance(value, float) else f"  {key:<26} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
