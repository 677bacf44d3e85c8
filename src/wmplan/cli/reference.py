"""The reference command: planning in the simulator itself, what a perfect model could reach."""

from __future__ import annotations

import argparse

from wmplan.cli.evaluation import apply_set_groups
from wmplan.cli.flags import add_env_flag, add_out_flag, add_result_flags, add_seed_flag, add_set_flag
from wmplan.cli_types import positive_int
from wmplan.defaults import REPORT_PAIR_SEED


def check_reference(args: argparse.Namespace) -> None:
    """Refuse the options of the other kind of reference than the task's: --pushes and --candidates belong to
    the greedy pushes (Rope, Granular), --mpc, --protocol and --set mpc.<field> to CEM in the simulator; then
    fill in the defaults of those left out."""
    from wmplan.evaluation.eval_config import MPCSettings, check_applicable
    from wmplan.evaluation.protocols import check_protocol
    from wmplan.experiments.sim_reference import GREEDY_CANDIDATES, GREEDY_PUSHES, plans_pushes
    from wmplan.overrides import parse_set_args

    greedy = plans_pushes(args.env)
    given = {"--pushes": args.pushes is not None, "--candidates": args.candidates is not None, "--mpc": args.mpc}
    given |= {"--protocol": args.protocol is not None, "--set": bool(args.set)}
    others = [f for f in (("--mpc", "--protocol", "--set") if greedy else ("--pushes", "--candidates")) if given[f]]
    if others:
        kind = "greedy pushes (--pushes, --candidates)" if greedy else "CEM in the simulator (--mpc, --protocol, --set)"
        verb = "does" if len(others) == 1 else "do"
        raise ValueError(f"{', '.join(others)} {verb} not apply to {args.env}, whose reference is {kind}; remove them")
    args.pushes = GREEDY_PUSHES if args.pushes is None else args.pushes
    args.candidates = GREEDY_CANDIDATES if args.candidates is None else args.candidates
    args.protocol = args.protocol or "fixed"
    if not greedy:
        apply_set_groups(args.set, {"mpc": MPCSettings()}, "reference")
        check_protocol(args.protocol, args.mpc)
        mpc_keys = [k.split(".", 1)[1] for k in parse_set_args(args.set)]
        check_applicable([], mpc_keys, ["cem"], [args.mpc], args.protocol)


def cmd_reference(args: argparse.Namespace) -> int:
    from wmplan.evaluation.eval_config import MPCSettings
    from wmplan.evaluation.protocols import check_protocol
    from wmplan.experiments.sim_reference import cem_reference, greedy_reference, plans_pushes

    if not plans_pushes(args.env):
        schedule = MPCSettings()
        apply_set_groups(args.set, {"mpc": schedule}, "reference")
        check_protocol(args.protocol, args.mpc)
        protocol = args.protocol if args.mpc else None
        r = cem_reference(
            args.env, args.write_to, episodes=args.episodes, seed=args.seed, protocol=protocol, mpc=schedule
        )
        mode = (
            "open loop" if protocol is None else f"MPC, {protocol} protocol, {r['mean_replans']:.1f} plans per episode"
        )
        print(
            f"{args.env}: CEM in the simulator ({r['samples']} samples, top {r['topk']}, {r['iterations']} iterations, "
            f"horizon {r['horizon']} x {r['frameskip']} env steps), {args.episodes} episodes, {mode}"
        )
        print(
            f"success {r['success_rate']:.0%} (95% CI {r['ci95'][0]:.0%}-{r['ci95'][1]:.0%}), reached at any step "
            f"{r['reached_rate']:.0%}, mean {r['distance']} {r['mean_initial_distance']:.2f} -> {r['mean_final_distance']:.2f}"
        )
        print(f"wrote {args.out}/summary.json ({r['seconds']:.0f} s)")
        return 0
    r = greedy_reference(
        args.env, args.write_to, episodes=args.episodes, seed=args.seed, pushes=args.pushes, candidates=args.candidates
    )
    print(
        f"{args.env}: greedy planning in the simulator, {args.candidates} candidate pushes per step, {args.episodes} episodes"
    )
    print(f"{'pushes':>6} {'mean ' + r['distance']:>24} {'success':>8}")
    for k, (d, s) in enumerate(zip(r["mean_distance_after"], r["success_rate_after"])):
        print(f"{k:>6} {d:>24.3f} {s:>8.0%}")
    print(f"wrote {args.out}/summary.json ({r['seconds']:.0f} s)")
    return 0


def add_reference_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reference", help="planning in the simulator itself: what a perfect model could reach")
    add_env_flag(
        p,
        default=None,
        required=True,
        help="wall | pointmaze | pusht (CEM in the simulator) | rope | granular (greedy pushes)",
    )
    add_out_flag(p, "results folder")
    add_result_flags(p)
    p.add_argument(
        "--episodes", type=positive_int, default=20, help="start/goal pairs, as eval draws them (default 20)"
    )
    add_seed_flag(p, REPORT_PAIR_SEED, "seed of the pairs, as eval's --seed (default 99)")
    p.add_argument(
        "--pushes", type=positive_int, help="rope, granular: pushes per episode (default 10, an MPC episode's)"
    )
    p.add_argument(
        "--candidates", type=positive_int, help="rope, granular: pushes tried in the simulator per step (default 100)"
    )
    p.add_argument("--mpc", action="store_true", help="wall, pointmaze, pusht: replan with MPC (default: open loop)")
    p.add_argument("--protocol", help="with --mpc: fixed (default) or paper, as `wmplan eval`")
    add_set_flag(p, "with --mpc: mpc.<field>, e.g. mpc.max_replans=50")
    p.set_defaults(func=cmd_reference, check=check_reference)
