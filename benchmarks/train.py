"""Training throughput of a preset and its efficiency against this machine's matmul peak.

    python benchmarks/train.py [--preset small] [--batch-size 64] [--tokens 8] [--token-dim 2] [--json PATH]

Measures in one run: (1) the fp32 matmul FLOP/s of this machine (square matmuls, the best of a few
sizes), (2) one optimisation step of the preset's world model on synthetic cached tokens (the trainer
caches frozen-encoder tokens, so a step is predictor + embeddings), its FLOPs counted by torch's
FlopCounterMode, and prints samples per second and achieved FLOP/s as a fraction of (1); (3) where the
CPU has bf16 matrix instructions (wmplan.precision), the same step under the trainer's bf16 autocast,
timed alternately with fp32 so that both see the same machine load.
Targets: fp32 >= 50% of the matmul peak; bf16 / fp32 step time <= 0.65.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from wmplan.config import apply_overrides, preset
from wmplan.data.windows import Normalizer
from wmplan.models.encoders import GivenTokens
from wmplan.models.world_model import TaskDims, WorldModel
from wmplan.precision import autocast, use_bf16


def matmul_peak(seconds: float = 1.0) -> float:
    best = 0.0
    for n in (256, 512, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    return best


def build(preset_name: str, tokens: int, token_dim: int, num_hist: int):
    cfg = apply_overrides(preset(preset_name), {"data.num_hist": num_hist})
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    norm = Normalizer(zeros, ones, zeros, ones, zeros, ones)
    model = WorldModel(cfg, TaskDims("wall", 64, 2, 2, 2), norm, encoder=GivenTokens(tokens, token_dim))
    return cfg, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the preset's")
    parser.add_argument("--tokens", type=int, default=8, help="tokens per frame (the conv encoder's: 8)")
    parser.add_argument("--token-dim", type=int, default=2, help="width of a visual token (conv: 2)")
    parser.add_argument("--num-hist", type=int, default=1, help="context frames (Wall: 1)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg, model = build(args.preset, args.tokens, args.token_dim, args.num_hist)
    bs = args.batch_size or cfg.train.batch_size
    w = args.num_hist + 1
    batch = {
        "visual": torch.randn(bs, w, args.tokens, args.token_dim),
        "proprio": torch.randn(bs, w, 2),
        "action": torch.randn(bs, w - 1, 10),
    }
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)  # as the trainer

    def step(bf16: bool = False):
        with autocast(bf16, torch.device("cpu")):  # as the trainer: the loss under autocast, backward outside
            loss = model.loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    bf16 = use_bf16("auto", torch.device("cpu"))
    modes = [False, True] if bf16 else [False]
    for mode in modes:
        for _ in range(3):
            step(mode)
    spent = {mode: 0.0 for mode in modes}
    for _ in range(args.steps):  # alternating: a change of machine load hits both alike
        for mode in modes:
            start = time.perf_counter()
            step(mode)
            spent[mode] += time.perf_counter() - start
    step_s = spent[False] / args.steps
    peak = matmul_peak()
    achieved = flops / step_s
    result = {
        "preset": args.preset,
        "batch_size": bs,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "samples_per_second": bs / step_s,
        "step_ms": 1000 * step_s,
        "flops_per_step": flops,
        "achieved_flops": achieved,
        "matmul_peak_flops": peak,
        "fraction_of_peak": achieved / peak,
        "bf16_step_ms": 1000 * spent[True] / args.steps if bf16 else None,
        "bf16_over_fp32": spent[True] / spent[False] if bf16 else None,
    }
    print(
        f"preset {args.preset}: {result['parameters']:,} trainable parameters, batch {bs}, {result['threads']} threads"
    )
    print(f"  training step        {result['step_ms']:.2f} ms   {result['samples_per_second']:,.0f} samples/s")
    print(f"  FLOPs per step       {flops / 1e9:.3f} GFLOP")
    print(f"  achieved             {achieved / 1e9:.1f} GFLOP/s")
    print(f"  fp32 matmul peak     {peak / 1e9:.1f} GFLOP/s")
    print(f"  fraction of peak     {100 * result['fraction_of_peak']:.0f}%   (target >= 50%)")
    if bf16:
        print(f"  bf16 training step   {result['bf16_step_ms']:.2f} ms")
        print(f"  bf16 / fp32          {result['bf16_over_fp32']:.2f}   (target <= 0.65)")
    else:
        print("  bf16                 not measured: this CPU lacks bf16 matrix instructions")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
