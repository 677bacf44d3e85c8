"""The commands that score a trained run: eval (plans scored in the simulator), and the diagnoses gap and
landscape."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from wmplan.cli.flags import (
    add_allow_unfinished_flag,
    add_device_flag,
    add_log_flag,
    add_out_flag,
    add_result_flags,
    add_run_flag,
    add_runs_flag,
    add_seed_flag,
    add_set_flag,
)
from wmplan.cli_types import landscape_grid, non_negative_int, positive_int
from wmplan.defaults import REPORT_PAIR_SEED
from wmplan.evaluation.report import PAPER_PLANNERS
from wmplan.planning.registry import planner_names, planner_title
from wmplan.tracking import open_tracker


def eval_config(args: argparse.Namespace):
    """EvalConfig from flags and --set planner.<field>=... / mpc.<field>=..."""
    from wmplan.evaluation.eval_config import EvalConfig

    cfg = EvalConfig(
        planner=args.planner,
        mpc=args.mpc,
        protocol=args.protocol,
        episodes=args.episodes,
        seed=args.seed,
        batch=args.batch,
    )
    apply_set_groups(args.set, {"planner": cfg.settings, "mpc": cfg.mpc_settings}, "eval")
    return cfg


def check_eval(args: argparse.Namespace) -> None:
    """Refuse, before anything starts, eval settings out of range and a --set that the planner or the mode
    does not read (wmplan.evaluation.eval_config.check_applicable)."""
    from wmplan.evaluation.eval_config import check_applicable
    from wmplan.evaluation.protocols import check_protocol
    from wmplan.overrides import parse_set_args

    cfg = eval_config(args)  # unknown keys and values of the wrong type first
    check_protocol(args.protocol, args.mpc)
    keys = list(parse_set_args(args.set))
    planner_keys = [k.split(".", 1)[1] for k in keys if k.startswith("planner.")]
    mpc_keys = [k.split(".", 1)[1] for k in keys if k.startswith("mpc.")]
    check_applicable(planner_keys, mpc_keys, [args.planner], [args.mpc], args.protocol)  # before ranges of unread keys
    cfg.check()


def apply_set_groups(sets: list[str], groups: dict[str, Any], command: str) -> None:
    """Apply `--set <group>.<field>=value` settings to each group's dataclass; a key of no group is refused."""
    from wmplan.overrides import apply_dataclass_overrides, parse_set_args

    overrides = parse_set_args(sets)
    for group, target in groups.items():
        apply_dataclass_overrides(
            target, {k.split(".", 1)[1]: v for k, v in overrides.items() if k.split(".")[0] == group}, group
        )
    unknown = [k for k in overrides if k.split(".")[0] not in groups]
    if unknown:
        taken = " and ".join(f"{g}.<field>" for g in groups)
        raise ValueError(f"unknown --set keys {unknown}; {command} takes {taken}")


def cmd_eval(args: argparse.Namespace) -> int:
    """One process, or under torchrun one rank of several: the batches of episodes are split across
    the ranks (each its own device: cuda:LOCAL_RANK, or a CPU process under gloo); rank 0 writes and prints."""
    from wmplan.evaluation.episodes import evaluate

    cfg = eval_config(args)
    is_main = int(os.environ.get("RANK", "0")) == 0
    # Opened before any work, so that a missing tracker package fails first; rank 0 alone logs.
    with open_tracker(args.log if is_main else "csv", args.write_to, dataclasses.asdict(cfg)) as tracker:
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            summary = evaluate(
                args.run,
                cfg,
                args.write_to,
                video=args.video,
                device=args.device,
                allow_unfinished=args.allow_unfinished,
            )
        else:
            from wmplan.models.world_model import resolve_device
            from wmplan.training.distributed import DistContext

            cfg.check()  # every rank refuses bad settings before the process group starts
            ctx = DistContext.from_env(resolve_device(args.device))
            try:
                summary = evaluate(
                    args.run,
                    cfg,
                    args.write_to,
                    video=args.video,
                    device=ctx.device,
                    sharded=True,
                    allow_unfinished=args.allow_unfinished,
                )
            finally:
                ctx.close()  # the group and its threads are gone before this rank returns and exits
            if not ctx.is_main:
                return 0
        for gif in sorted(args.write_to.glob("*.gif")):  # eval --video N
            tracker.video(f"eval/{gif.stem}", gif)
        tracker.scalars(
            0,
            {
                "eval/success_rate": summary["success_rate"],
                "eval/reached_rate": summary["reached_rate"],
                "eval/mean_final_distance": summary["mean_final_distance"],
                "eval/seconds_per_plan": summary["seconds_per_plan"],
            },
        )
    low, high = summary["ci95"]
    d_low, d_high = summary["final_distance_ci95"]
    paper = (
        f" (paper protocol: {summary['mean_replans']:.1f} plans per episode, the loop stopping at the simulator's "
        "success test)"
        if summary["protocol"] == "paper"
        else ""
    )
    print(
        f"{summary['planner']}{' + MPC' if summary['mpc'] else ''}{paper}"
        f" on {summary['episodes']} episodes: success "
        f"{100 * summary['success_rate']:.0f}% (95% CI {100 * low:.0f}-{100 * high:.0f}), reached at any step "
        f"{100 * summary['reached_rate']:.0f}%, mean final {summary['distance']} {summary['mean_final_distance']:.3g} "
        f"(95% CI {d_low:.3g}-{d_high:.3g}), {summary['seconds_per_plan']:.3f} s per plan; wrote {args.out}/summary.json"
    )
    return 0


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="plan with a trained model and score the plans in the simulator")
    add_run_flag(p, "run directory of a trained model, or a Hub id (alias --model, for torchrun)", alias="--model")
    beyond = [f"{name} ({planner_title(name)})" for name in planner_names() if name not in PAPER_PLANNERS]
    p.add_argument(
        "--planner",
        required=True,
        choices=planner_names(),
        help=f"the paper's {', '.join(PAPER_PLANNERS)}; beyond it: {', '.join(beyond)}",
    )
    p.add_argument("--mpc", action="store_true", help="receding horizon (default: open loop)")
    p.add_argument(
        "--protocol",
        default="fixed",
        help="MPC protocol: fixed (a fixed number of replans, scored at the end; default) or paper (DINO-WM's loop: "
        "whole plans, replanned until the simulator's success test passes or mpc.max_replans, scored there)",
    )
    p.add_argument("--episodes", type=positive_int, default=50)
    add_seed_flag(p, REPORT_PAIR_SEED)
    p.add_argument(
        "--batch",
        type=positive_int,
        help="episodes planned at once (default: all; under torchrun, episodes / processes); the results depend "
        "on it, never on the number of processes",
    )
    p.add_argument("--video", type=non_negative_int, default=0, metavar="N", help="write GIFs of the first N episodes")
    add_set_flag(p, "planner.<field> or mpc.<field>, e.g. planner.lr=0.1")
    add_out_flag(p, "results folder")
    add_result_flags(p)
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_eval, check=check_eval)


def cmd_gap(args: argparse.Namespace) -> int:
    from wmplan.evaluation.gap import gap

    with open_tracker(args.log, args.write_to, vars(args)) as tracker:
        result = gap(
            args.run,
            args.write_to,
            episodes=args.episodes,
            seed=args.seed,
            data=args.data,
            device=args.device,
            allow_unfinished=args.allow_unfinished,
        )
        tracker.image("gap", args.write_to / "gap.png")
    print(f"{'run':<24} {'expert':>10} {'planner':>10} {'ratio':>7}")
    for name, r in result.items():
        if name != "settings":
            print(f"{name:<24} {r['expert_error']:>10.5f} {r['planner_error']:>10.5f} {r['ratio']:>7.2f}")
    print(f"wrote {args.out}/gap.json and gap.png")
    return 0


def add_gap_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gap", help="open-loop error on expert vs planner trajectories (the train-test gap)")
    add_runs_flag(p)
    add_out_flag(p, "results folder")
    add_result_flags(p)
    p.add_argument("--episodes", type=positive_int, default=50, help="expert windows (default 50)")
    add_seed_flag(p, 0, "seed of the windows and the planner (default 0)")
    p.add_argument("--data", help="the first run's dataset, if it moved since training (checked by its fingerprint)")
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_gap)


def cmd_landscape(args: argparse.Namespace) -> int:
    from wmplan.evaluation.landscape import landscape

    with open_tracker(args.log, args.write_to, vars(args)) as tracker:
        result = landscape(
            args.run,
            args.write_to,
            grid=args.grid,
            seed=args.seed,
            device=args.device,
            allow_unfinished=args.allow_unfinished,
        )
        tracker.image("landscape", args.write_to / "landscape.png")
    print(f"{'run':<24} {'roughness':>10} {'basin':>7} {'centre cost':>12}")
    for name, r in result.items():
        if name != "settings":
            print(f"{name:<24} {r['roughness']:>10.4f} {r['basin_width']:>7.3f} {r['centre_cost']:>12.5f}")
    print(f"wrote {args.out}/landscape.json and landscape.png")
    return 0


def add_landscape_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("landscape", help="2-D slice of the planning cost around a GD optimum, per run")
    add_runs_flag(p)
    add_out_flag(p, "results folder")
    add_result_flags(p)
    p.add_argument("--grid", type=landscape_grid, default=41, help="odd number of points per axis (default 41)")
    add_seed_flag(p, 0, "seed of the start/goal pair and the directions (default 0)")
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_landscape)
