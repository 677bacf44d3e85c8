"""Planning time: Adam against CEM, and batched against one-episode-at-a-time planning, in one run.

    python benchmarks/planning.py [--episodes 50] [--json PATH]
    python benchmarks/planning.py --runs results/demo/runs [--episodes 50] [--gradient-set planner.warm_steps=20 ...] [--json PATH]

Without --runs: one untrained `small` Wall model with the conv encoder's token shape (timing does not
depend on the weights). Prints seconds per plan for Adam (100 steps), CEM 300 x 10 and CEM 300 x 30 on all
episodes at once, and Adam planned one episode at a time; where the CPU has bf16 matrix instructions
(wmplan.precision), CEM 300 x 10 and Adam 100 again with the predictor under bf16 autocast
(planner.precision=bf16), each timed right after its fp32 twin. Targets: adam_over_cem30 <= 0.10,
batched_speedup >= 10, cem_bf16_over_fp32 <= 0.55.

With --runs (a demo's runs folder: <encoder>/base): the trained base models, pixel (the first encoder
that is not `state`) and state, each planned with Adam + MPC (the demo's settings plus --gradient-set) and
CEM + MPC on the same pairs in the simulator, one after the other in this process. Writes mpc_ratio_pixel
and mpc_ratio_state (Adam's seconds per MPC planning call over CEM's) and success_gradient_* and
success_cem_* (same pairs); with --gradient-set, the same for the paper's Adam under *_default keys.
Targets: mpc_ratio_pixel <= 0.05 at success >= CEM's, mpc_ratio_state <= 0.25.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wmplan.config import preset
from wmplan.data.windows import Normalizer
from wmplan.models.world_model import Latent, TaskDims, WorldModel
from wmplan.planning import CEMConfig, CEMPlanner, GDConfig, GDPlanner, objective_for
from wmplan.precision import use_bf16


def untrained_model() -> WorldModel:
    torch.manual_seed(0)
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    norm = Normalizer(zeros, ones, zeros, ones, zeros, ones)
    return WorldModel(preset("small", "wall"), TaskDims("wall", 64, 2, 2, 2), norm).eval()


def latents(model: WorldModel, n: int, seed: int) -> Latent:
    g = torch.Generator().manual_seed(seed)
    visual = torch.rand(n, 1, model.encoder.num_tokens, model.encoder.dim, generator=g) * 2 - 1
    return model.encode(proprio=torch.randn(n, 1, 2, generator=g), visual=visual)


def seconds(fn, repeats: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def mpc_comparison(runs: Path, episodes: int, gradient_set: list[str]) -> dict:
    """Adam + MPC against CEM + MPC on the trained base models under `runs`, same pairs, same process."""
    from wmplan.evaluation.episodes import evaluate
    from wmplan.evaluation.eval_config import EvalConfig
    from wmplan.overrides import apply_dataclass_overrides, parse_set_args

    encoders = sorted(p.parent.parent.name for p in runs.glob("*/base/config.json"))
    pixel = [e for e in encoders if e != "state"]
    models = {"pixel": pixel[0] if pixel else None, "state": "state" if "state" in encoders else None}
    if not any(models.values()):
        raise SystemExit(f"no <encoder>/base runs under {runs}; pass a demo's runs folder (results/demo/runs)")
    overrides = {k.split(".", 1)[1]: v for k, v in parse_set_args(gradient_set, "--gradient-set").items()}
    result: dict = {"episodes": episodes, "threads": torch.get_num_threads(), "gradient_set": gradient_set}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, encoder in models.items():
            if encoder is None:
                continue
            summaries = {}
            variants = {"adam_default": {}, "adam": overrides} if overrides else {"adam": {}}
            for name, settings in [*variants.items(), ("cem", {})]:
                cfg = EvalConfig(planner=name.split("_")[0], mpc=True, episodes=episodes)
                apply_dataclass_overrides(cfg.settings, settings, "planner")
                out = Path(tmp) / kind / name
                summaries[name] = evaluate(runs / encoder / "base", cfg, out, progress=False, device="cpu")
                print(
                    f"{kind} ({encoder}) {name} MPC: {summaries[name]['seconds_per_plan']:.2f} s per call, "
                    f"success {summaries[name]['success_rate']:.0%}",
                    flush=True,
                )
            cem = summaries["cem"]
            result[f"model_{kind}"] = str(runs / encoder / "base")
            result[f"seconds_cem_{kind}"] = cem["seconds_per_plan"]
            result[f"success_cem_{kind}"] = cem["success_rate"]
            for name in variants:  # "adam": the planner under test (--gradient-set); "adam_default": the paper's
                suffix = "" if name == "adam" else "_default"
                result[f"seconds_gradient_{kind}{suffix}"] = summaries[name]["seconds_per_plan"]
                result[f"mpc_ratio_{kind}{suffix}"] = summaries[name]["seconds_per_plan"] / cem["seconds_per_plan"]
                result[f"success_gradient_{kind}{suffix}"] = summaries[name]["success_rate"]
    for kind, target in (("pixel", 0.05), ("state", 0.25)):
        if f"mpc_ratio_{kind}" in result:
            print(f"  mpc_ratio_{kind:<6} {result[f'mpc_ratio_{kind}']:.3f}   (target <= {target})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--runs", type=Path, help="a demo's runs folder: compare Adam and CEM under MPC on its models")
    parser.add_argument(
        "--gradient-set",
        action="append",
        default=[],
        metavar="planner.FIELD=VALUE",
        help="settings of the Adam planner, e.g. planner.warm_steps=20",
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as every wmplan command does: planners' backward passes make subnormals
    if args.runs:
        result = mpc_comparison(args.runs, args.episodes, args.gradient_set)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return
    model, n = untrained_model(), args.episodes
    with torch.no_grad():
        z0, goal = latents(model, n, 0), latents(model, n, 1)
    objective = objective_for("wall")
    adam = GDPlanner(GDConfig(optimizer="adam", steps=100), objective)
    cem10 = CEMPlanner(CEMConfig(iterations=10), objective)
    cem30 = CEMPlanner(CEMConfig(iterations=30), objective)
    GDPlanner(GDConfig(steps=2), objective).plan(model, z0, goal)  # warm-up: first-call allocations
    t = {
        "adam100": seconds(lambda: adam.plan(model, z0, goal)),
        "cem300x10": seconds(lambda: cem10.plan(model, z0, goal)),
        "cem300x30": seconds(lambda: cem30.plan(model, z0, goal)),
    }
    if use_bf16("auto", torch.device("cpu")):
        model.plan_bf16 = True  # what planner.precision=bf16 sets
        t["cem300x10_bf16"] = seconds(lambda: cem10.plan(model, z0, goal))
        t["adam100_bf16"] = seconds(lambda: adam.plan(model, z0, goal))
        model.plan_bf16 = False
    single = [Latent(z.visual[i : i + 1], z.proprio[i : i + 1]) for z in (z0, goal) for i in range(n)]
    t["adam100_one_at_a_time"] = seconds(lambda: [adam.plan(model, single[i], single[n + i]) for i in range(n)])
    result = {
        "episodes": n,
        "threads": torch.get_num_threads(),
        "seconds": t,
        "adam_over_cem10": t["adam100"] / t["cem300x10"],
        "adam_over_cem30": t["adam100"] / t["cem300x30"],
        "batched_speedup": t["adam100_one_at_a_time"] / t["adam100"],
        "cem_bf16_over_fp32": t["cem300x10_bf16"] / t["cem300x10"] if "cem300x10_bf16" in t else None,
        "adam_bf16_over_fp32": t["adam100_bf16"] / t["adam100"] if "adam100_bf16" in t else None,
    }
    print(f"{n} episodes, untrained small Wall model, {result['threads']} threads; seconds per planning call:")
    for name, value in t.items():
        print(f"  {name:<24} {value:8.2f} s")
    print(f"  Adam 100 / CEM 300x10    {result['adam_over_cem10']:.3f}")
    print(f"  Adam 100 / CEM 300x30    {result['adam_over_cem30']:.3f}   (target <= 0.10)")
    print(f"  batched speed-up         {result['batched_speedup']:.1f}x  (target >= 10)")
    if result["cem_bf16_over_fp32"] is not None:
        print(f"  CEM bf16 / fp32          {result['cem_bf16_over_fp32']:.2f}   (target <= 0.55)")
        print(f"  Adam bf16 / fp32         {result['adam_bf16_over_fp32']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
