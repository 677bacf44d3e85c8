"""The commands that run a grid of experiments end to end: demo, sweep, study."""

from __future__ import annotations

import argparse
import os
import time

from wmplan.cli.flags import add_device_flag, add_env_flag, add_out_flag, add_seed_flag, add_set_flag, add_workers_flag
from wmplan.cli_types import positive_floats, positive_int, positive_ints, protocols, seed, seeds
from wmplan.experiments.submitit_launcher import LAUNCHERS
from wmplan.models.encoder_registry import encoder_entry, encoder_names

DEMO_FULL_EPISODES = 50
"""demo --full: the paper's episodes per cell."""


def check_demo(args: argparse.Namespace) -> None:
    """--full is --episodes DEMO_FULL_EPISODES: another --episodes beside it contradicts it, and so does the
    quick preset's toy scale."""
    if args.full and args.episodes not in (None, DEMO_FULL_EPISODES):
        raise ValueError(
            f"--full plans {DEMO_FULL_EPISODES} episodes per cell and --episodes asks {args.episodes}; give one of them"
        )
    if args.full and args.preset == "quick":
        raise ValueError("--preset quick runs the demo at toy scale and --full at the paper's; give one of them")


def cmd_demo(args: argparse.Namespace) -> int:
    from wmplan.experiments.demo import QUICK, demo_scale, run_demo

    changes = dict(QUICK) if args.preset == "quick" else {}
    if args.full:
        changes["episodes"] = DEMO_FULL_EPISODES
    elif args.episodes:
        changes["episodes"] = args.episodes
    if args.encoders:
        changes["encoders"] = tuple(args.encoders)
    scale = demo_scale(args.env, **changes)
    report = run_demo(
        args.out,
        scale,
        env=args.env,
        seed=args.seed,
        train_seeds=args.seeds,
        device=args.device,
        resume=args.resume,
        workers=args.workers,
    )
    print(report)
    return 0


def demo_encoders(text: str) -> list[str]:
    """--encoders: names of registered encoders, comma-separated, none twice; not one that needs weights from
    outside the dataset (dinov2's), which a demo does not fetch."""
    names = [n.strip() for n in text.split(",")]  # an empty name ("conv,") is refused, as in every list flag
    allowed = [e for e in encoder_names() if not encoder_entry(e).needs_weights]
    if set(names) - set(allowed) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give distinct encoders among {', '.join(allowed)}, comma-separated"
        )
    return names


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="collect, train, finetune, plan, diagnose and report at CPU scale")
    add_env_flag(p)
    add_out_flag(p, "output folder (an earlier demo there: --resume or --overwrite)", default="results/demo")
    # Not add_result_flags: a demo resumes an unfinished run too, and the writer rule refuses the two together.
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the data, models and eval cells a killed run with the same arguments finished",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier demo in --out (kept until the new one is finished)"
    )
    p.add_argument("--episodes", type=positive_int, help="start/goal pairs per cell (default 20)")
    add_workers_flag(p, "plan the eval cells in this many one-thread processes at once")
    p.add_argument("--full", action="store_true", help="the paper's 50 episodes per planner")
    p.add_argument(
        "--preset",
        choices=["quick"],
        help="quick: every stage at toy scale in minutes, to check an installation (its numbers mean nothing)",
    )
    p.add_argument(
        "--encoders",
        type=demo_encoders,
        help="the encoders to train and plan with, comma-separated, pixel ones first (default: the task's, "
        "wmplan.tasks), e.g. conv,patch,jepa,state",
    )
    add_seed_flag(p, 0, "seed of the data, and of training unless --seeds")
    p.add_argument(
        "--seeds",
        type=seeds,
        help="train every model with each of these seeds on the same data, e.g. 0,1,2; the report pools the cells",
    )
    add_device_flag(p)
    p.set_defaults(func=cmd_demo, check=check_demo)


def cmd_sweep(args: argparse.Namespace) -> int:
    from wmplan.experiments.sweep import run_sweep
    from wmplan.experiments.sweep_spec import load_spec

    result = run_sweep(
        load_spec(args.config, args.set),
        args.out,
        workers=args.workers,
        device=args.device,
        launcher=args.launcher,
        cells_per_job=args.cells_per_job,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    print(
        f"ran {len(result.ran)} cells; {len(result.finished_before)} already finished"
        + (f"; {len(result.busy)} being planned by other processes" if result.busy else "")
    )
    if result.report is None:
        print(f"{args.out}/grid.json not written yet: the process that finishes the last cell writes it (or rerun)")
        return 0
    print(result.report)
    print(f"wrote {args.out}/grid.json and {args.out}/report.md")
    return 0


def check_sweep(args: argparse.Namespace) -> None:
    """The spec's slurm.* settings, --workers and --cells-per-job must apply to the launcher."""
    from wmplan.experiments.submitit_launcher import check_launcher
    from wmplan.experiments.sweep_spec import load_spec

    check_launcher(args.launcher, load_spec(args.config, args.set).slurm, args.workers, args.cells_per_job, args.device)


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="the Table 1 grid (models x planners x modes x seeds), one eval per cell, in parallel, resumable"
    )
    p.add_argument(
        "--config", help="YAML or JSON file: models, planners, modes, seeds, episodes, planner, mpc, protocol, slurm"
    )
    add_set_flag(
        p,
        "on top of --config, e.g. models=base:runs/wall,online:runs/wall-online planners=gd,adam,cem "
        "modes=open,mpc seeds=99,100 episodes=50 planner.steps=100 mpc.replans=5 slurm.partition=gpu",
    )
    add_out_flag(p, "sweep folder (a rerun skips its finished cells)")
    add_workers_flag(p, "processes planning cells side by side (--launcher local), each on its own GPU if several")
    p.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="local: processes on this machine (--workers) or torchrun ranks; submitit: SLURM jobs with the "
        'slurm.* settings (pip install "wmplan[cluster]") (default: local)',
    )
    p.add_argument(
        "--cells-per-job",
        type=positive_int,
        help="--launcher submitit: cells planned by each job (default 1)",
    )
    add_device_flag(p)
    p.set_defaults(func=cmd_sweep, check=check_sweep)


def cmd_study(args: argparse.Namespace) -> int:
    from wmplan.experiments.study import StudySpec, run_study

    spec = StudySpec(
        env=args.env,
        seeds=args.seeds,
        adversarial_epochs=args.adversarial_epochs,
        online_steps=args.online_steps,
        strengths=args.strengths,
        episodes=args.episodes,
        encoder=args.encoder or "",
        protocols=args.protocols,
    )
    if args.code_versions is not None and args.code_versions not in spec.seeds:  # refused before hours of work
        raise SystemExit(f"--code-versions {args.code_versions}: not one of the study's --seeds {spec.seeds}")
    start = time.perf_counter()
    run_study(spec, args.out, device=args.device, from_demo=args.from_demo, workers=args.workers)
    print(f"wrote {args.out}/report.md ({(time.perf_counter() - start) / 60:.1f} min)")
    if args.code_versions is not None:
        from wmplan.experiments.study_variants import run_variants

        run_variants(args.out, args.code_versions, workers=args.workers, device=args.device)
        print(f"wrote {args.out}/variants.md ({(time.perf_counter() - start) / 60:.1f} min in all)")
    return 0


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="finetuning across seeds, lengths and strengths: does the effect hold? (resumable)"
    )
    add_env_flag(p)
    add_out_flag(p, "study folder (a rerun resumes it)")
    p.add_argument("--seeds", type=seeds, default=[0, 1, 2], help="training seeds (default: 0,1,2)")
    p.add_argument("--adversarial-epochs", type=positive_ints, default=[1, 3, 10], help="(default: 1,3,10)")
    p.add_argument("--online-steps", type=positive_ints, default=[200, 1000, 3000], help="(default: 200,1000,3000)")
    p.add_argument(
        "--strengths",
        type=positive_floats,
        default=[0.5, 1.0, 2.0],
        help="adversarial radii x the defaults (default: 0.5,1,2)",
    )
    p.add_argument("--episodes", type=positive_int, default=50, help="pairs per cell (default: 50)")
    p.add_argument(
        "--encoder", choices=encoder_names(), help="(default: the task's pixel encoder, the first of its demo's)"
    )
    p.add_argument(
        "--protocols",
        type=protocols,
        default=["fixed", "paper"],
        help="MPC protocols every MPC cell is planned under, comma-separated (default: fixed,paper)",
    )
    add_device_flag(p)
    p.add_argument(
        "--from-demo",
        help="a `wmplan demo` folder (same task, --episodes as here): adopt its data, and the models and cells that "
        "match the study's recipe, instead of making them again",
    )
    add_workers_flag(p, "plan each seed's eval cells in this many one-thread processes")
    p.add_argument(
        "--code-versions",
        type=seed,
        metavar="SEED",
        help="then finetune the middle settings again as the authors' code does, from this training seed's base "
        "model, and compare them with the study's, paired, in OUT/variants.md",
    )
    p.set_defaults(func=cmd_study)
