"""The `wmplan` command line: a thin layer over the Python API.

wmplan collect --env wall --episodes 1920 --out data/wall [--seed 0] [--overwrite | --append]
wmplan info data/wall [--json]
wmplan export data/wall --to lerobot|hf --out exports/wall [--overwrite] [--fps 10]
wmplan import SOURCE --from lerobot|hf|dinowm|diffusion-policy --out data/x [--env pusht] [--task-set k=v]
              [--map obs=img ...] [--resize] [--overwrite]
wmplan train --data data/wall --out runs/wall [--preset tiny|small|paper] [--encoder conv|patch|state|dinov2]
             [--epochs N] [--device auto|cpu|cuda] [--resume] [--set key=value ...]
wmplan finetune --method adversarial|online --run runs/wall --out runs/wall-adv [--preset tiny|small|paper]
                [--set adversarial.lambda_action=0.1 ...] [--resume]
wmplan eval --run runs/wall --planner gd|adam|cem|cem_best|hybrid|multistart [--mpc] [--episodes 50] [--seed 99] [--video N]
            [--batch N] [--set planner.lr=0.1 ...] [--allow-unfinished] --out DIR [--overwrite | --resume]
torchrun --nproc_per_node N -m wmplan.cli eval --model runs/wall ...   (the episodes split across N processes or GPUs)
wmplan demo [--env wall] [--out results/demo] [--episodes 20 | --full] [--seeds 0,1,2] [--resume | --overwrite] [--workers N]
wmplan sweep [--config sweep.yaml] [--set models=base:runs/wall,... --set planners=gd,adam,cem ...] --out DIR [--workers N]
wmplan gap --run runs/wall [--run runs/wall-adv ...] --out DIR [--episodes 50] [--allow-unfinished] [--overwrite | --resume]
wmplan landscape --run runs/wall [--run runs/wall-adv ...] --out DIR [--grid 41] [--allow-unfinished] [--overwrite | --resume]
wmplan study [--env wall] --out DIR [--seeds 0,1,2] [--adversarial-epochs 1,3,10] [--online-steps 200,1000,3000] [--from-demo DIR] [--workers N]
wmplan reference --env wall --out DIR [--episodes 20] [--mpc] [--overwrite | --resume]
wmplan config show [--env wall] [--preset tiny|small|paper] [--run RUN] [--set key=value ...]
wmplan push --run runs/wall --repo-id OWNER/NAME [--private]
(every --run also takes a Hub id OWNER/NAME; every --out follows one writer rule: wmplan.output_rule.output_folder)
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wmplan import __version__
from wmplan.cli_types import (
    CommandLineError,
    CommandParser,
    device,
    landscape_grid,
    non_negative_int,
    positive_floats,
    positive_int,
    positive_ints,
    protocols,
    seed,
    seeds,
)
from wmplan.config import ENCODERS, PLANNERS
from wmplan.data.store import DatasetError
from wmplan.tracking import TRACKERS, open_tracker

if TYPE_CHECKING:
    from wmplan.output_rule import Output


def run_location(text: str) -> str:
    """--run: a local run folder, or a Hub id (owner/name) fetched into the Hub client's cache."""
    from wmplan.hub import local_run

    try:
        return str(local_run(text))
    except (FileNotFoundError, ImportError) as exc:  # argparse names the option and exits with status 2
        raise argparse.ArgumentTypeError(" ".join(str(exc).split())) from None


def cmd_collect(args: argparse.Namespace) -> int:
    from wmplan.config import parse_set_args
    from wmplan.data.collect import collect

    start = time.perf_counter()
    store = collect(
        args.env,
        args.write_to,
        episodes=args.episodes,
        seed=args.seed,
        overwrite=args.overwrite,
        append=args.append,
        task_settings=parse_set_args(args.task_set, "--task-set"),
        collector_settings=parse_set_args(args.collector_set, "--collector-set"),
    )
    seconds = time.perf_counter() - start
    print(
        f"wrote {args.episodes} episodes to {args.out} in {seconds:.1f} s; it now holds "
        f"{store.n_episodes} episodes, {store.n_frames} frames"
    )
    return 0


def format_summary(summary: dict) -> str:
    lines = [
        f"dataset   {summary['path']}",
        f"task      {summary['task']}",
        f"episodes  {summary['episodes']} finished"
        + (
            f" ({summary['unfinished_frames']} frames of an unfinished episode ignored)"
            if summary["unfinished_frames"]
            else ""
        ),
        f"frames    {summary['frames']}"
        + (
            f" (episode length {summary['episode_length']['min']}..{summary['episode_length']['max']})"
            if summary["episode_length"]
            else ""
        ),
        "arrays",
    ]
    for key, meta in summary["arrays"].items():
        lines.append(f"  data/{key:<10} {str(tuple(meta['shape'])):<22} {meta['dtype']}")
    for name in ("action_range", "state_range"):
        rng = summary[name]
        if rng:
            lines.append(f"{name.replace('_', ' '):<13} min {rng['min']}  max {rng['max']}")
    if "block_moved_fraction" in summary:
        lines.append(f"episodes that move the block  {100 * summary['block_moved_fraction']:.1f}%")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from wmplan.data.store import TrajectoryStore

    store = TrajectoryStore.open(args.path)
    if args.verify:
        problems = store.chunk_problems()
        for line in problems:
            print(line)
        print(
            f"{args.path}: {len(problems)} damaged chunk(s)"
            + ("; collect the dataset again" if problems else ", every chunk reads back")
        )
        return 1 if problems else 0
    summary = store.summary()
    if summary["task"] == "pusht" and store.n_episodes:  # contact-rich data is the point of the PushT collector
        from wmplan.data.collect_pusht import block_moved_fraction

        summary["block_moved_fraction"] = block_moved_fraction(store.read("state"), store.episode_ends)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wmplan.data.interchange import export_dataset

    export_dataset(args.data, args.write_to, args.format, overwrite=args.overwrite, fps=args.fps)
    print(f"exported {args.data} to {args.out} ({args.format})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from wmplan.config import parse_set_args
    from wmplan.data.interchange import import_dataset

    store = import_dataset(
        args.source,
        args.write_to,
        args.source_format,
        env=args.env,
        task_settings=parse_set_args(args.task_set, "--task-set"),
        mapping=parse_set_args(args.map, "--map"),
        overwrite=args.overwrite,
        resize=args.resize,
    )
    print(
        f"imported {args.source} ({args.source_format}) into {args.out}: task {store.task_name}, "
        f"{store.n_episodes} episodes, {store.n_frames} frames"
    )
    return 0


RUN_FLAGS = {"data": "data.path", "encoder": "model.encoder.name", "epochs": "train.epochs", "device": "train.device"}
"""Flags of train and finetune that set a run config key, as `--set KEY=VALUE` can: given both, they must agree."""


def flag_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run config keys that the command's RUN_FLAGS given set."""
    return {key: getattr(args, flag) for flag, key in RUN_FLAGS.items() if getattr(args, flag, None) is not None}


def check_run_flags(args: argparse.Namespace) -> None:
    """Refuse a flag of RUN_FLAGS and a --set of its key with another value, naming both (train, finetune)."""
    from wmplan.config import RunConfig, cast_value, key_type, parse_set_args

    sets = parse_set_args(args.set)
    for key, value in flag_settings(args).items():
        if key in sets:
            flag, kind = next(f"--{f}" for f, k in RUN_FLAGS.items() if k == key), key_type(RunConfig, key)
            if cast_value(value, kind, flag) != cast_value(sets[key], kind, f"--set {key}"):
                raise ValueError(f"{flag} {value} and --set {key}={sets[key]} give {key} two values; give it once")


def train_config(args: argparse.Namespace):
    """The run config of `wmplan train`: the preset for the dataset's task (default small), then flags,
    then --set. With --resume and none of --preset, --encoder, --set: the run's stored config (train
    rechecks any other against it)."""
    from wmplan.config import apply_overrides, parse_set_args, preset
    from wmplan.data.store import TrajectoryStore

    task = TrajectoryStore.open(args.data).task_name
    overrides = flag_settings(args)
    if args.resume and args.preset is None and args.encoder is None and not args.set:
        from wmplan.training.trainer import stored_config

        return apply_overrides(stored_config(args.out), overrides)
    return apply_overrides(preset(args.preset or "small", task), {**overrides, **parse_set_args(args.set)})


def cmd_train(args: argparse.Namespace) -> int:
    from wmplan.training.trainer import train

    cfg = train_config(args)
    start = time.perf_counter()
    train(cfg, args.out, resume=args.resume, log=args.log)
    minutes = (time.perf_counter() - start) / 60
    print(f"trained {args.out} in {minutes:.1f} min")
    print((Path(args.out) / "encoder.json").read_text())
    print((Path(args.out) / "metrics.csv").read_text())
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from wmplan.config import parse_set_args
    from wmplan.models.run_folder import RunFolder
    from wmplan.training.finetune import finetune

    start = time.perf_counter()
    overrides = parse_set_args(args.set) | flag_settings(args)
    finetune(args.run, args.out, args.method, overrides, preset=args.preset, log=args.log, resume=args.resume)
    minutes = (time.perf_counter() - start) / 60
    meta = RunFolder(args.out).meta()
    print(f"finetuned {args.run} ({args.method}) into {args.out} in {minutes:.1f} min")
    if "adversarial_eps" in meta:
        print(f"adversarial radii: {meta['adversarial_eps']}")
    if "online" in meta:
        print(f"online world modeling: {meta['online']}")
    print((Path(args.out) / "metrics.csv").read_text())
    return 0


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
    from wmplan.config import parse_set_args
    from wmplan.evaluation.eval_config import check_applicable
    from wmplan.evaluation.protocols import check_protocol

    cfg = eval_config(args)  # unknown keys and values of the wrong type first
    check_protocol(args.protocol, args.mpc)
    keys = list(parse_set_args(args.set))
    planner_keys = [k.split(".", 1)[1] for k in keys if k.startswith("planner.")]
    mpc_keys = [k.split(".", 1)[1] for k in keys if k.startswith("mpc.")]
    check_applicable(planner_keys, mpc_keys, [args.planner], [args.mpc], args.protocol)  # before ranges of unread keys
    cfg.check()


def apply_set_groups(sets: list[str], groups: dict[str, Any], command: str) -> None:
    """Apply `--set <group>.<field>=value` settings to each group's dataclass; a key of no group is refused."""
    from wmplan.config import apply_dataclass_overrides, parse_set_args

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


DEMO_FULL_EPISODES = 50
"""demo --full: the paper's episodes per cell."""


def check_demo(args: argparse.Namespace) -> None:
    """--full is --episodes DEMO_FULL_EPISODES: another --episodes beside it contradicts it."""
    if args.full and args.episodes not in (None, DEMO_FULL_EPISODES):
        raise ValueError(
            f"--full plans {DEMO_FULL_EPISODES} episodes per cell and --episodes asks {args.episodes}; give one of them"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    from wmplan.experiments.demo import demo_scale, run_demo

    scale = demo_scale(
        args.env,
        **({"episodes": DEMO_FULL_EPISODES} if args.full else {"episodes": args.episodes} if args.episodes else {}),
    )
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


def cmd_sweep(args: argparse.Namespace) -> int:
    from wmplan.experiments.sweep import run_sweep
    from wmplan.experiments.sweep_spec import load_spec

    result = run_sweep(load_spec(args.config, args.set), args.out, workers=args.workers, device=args.device)
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


def check_reference(args: argparse.Namespace) -> None:
    """Refuse the options of the other kind of reference than the task's: --pushes and --candidates belong to
    the greedy pushes (Rope, Granular), --mpc, --protocol and --set mpc.<field> to CEM in the simulator; then
    fill in the defaults of those left out."""
    from wmplan.config import parse_set_args
    from wmplan.evaluation.eval_config import MPCSettings, check_applicable
    from wmplan.evaluation.protocols import check_protocol
    from wmplan.experiments.sim_reference import GREEDY_CANDIDATES, GREEDY_PUSHES, plans_pushes

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


def cmd_study(args: argparse.Namespace) -> int:
    from wmplan.experiments.study import StudySpec, run_study

    spec = StudySpec(
        env=args.env,
        seeds=args.seeds,
        adversarial_epochs=args.adversarial_epochs,
        online_steps=args.online_steps,
        strengths=args.strengths,
        episodes=args.episodes,
        encoder=args.encoder,
        protocols=args.protocols,
    )
    start = time.perf_counter()
    run_study(spec, args.out, device=args.device, from_demo=args.from_demo, workers=args.workers)
    print(f"wrote {args.out}/report.md ({(time.perf_counter() - start) / 60:.1f} min)")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from wmplan.hub import push_run

    url = push_run(args.run, args.repo_id, private=args.private)
    print(
        f"uploaded {args.run} to {url}; load it with WorldModel.from_pretrained({args.repo_id!r}) or --run {args.repo_id}"
    )
    return 0


def check_config_show(args: argparse.Namespace) -> None:
    """--env and --preset choose a preset's config, which --run replaces by the run's own: not both."""
    given = [flag for flag, value in (("--env", args.env), ("--preset", args.preset)) if value is not None]
    if args.run and given:
        verb = "does" if len(given) == 1 else "do"
        raise ValueError(f"{' and '.join(given)} {verb} not apply with --run, which shows the run's own config")
    args.env, args.preset = args.env or "wall", args.preset or "small"


def cmd_config_show(args: argparse.Namespace) -> int:
    """The resolved config of a run (as it was trained) or of a preset for a task, with --set applied."""
    from wmplan.config import apply_overrides, parse_set_args, preset

    if args.run:
        from wmplan.models.run_folder import RunFolder

        cfg = RunFolder(args.run).config()
    else:
        cfg = preset(args.preset, args.env)
    cfg = apply_overrides(cfg, parse_set_args(args.set))
    print(json.dumps(cfg.to_dict(), indent=2))
    return 0


def add_result_flags(p: argparse.ArgumentParser) -> None:
    """--overwrite | --resume: what to do with a finished result already in --out (wmplan.output_rule.output_folder)."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished result in --out (swapped in once the new one is whole)",
    )
    mode.add_argument("--resume", action="store_true", help="keep a finished result in --out and exit")


def add_device_flag(p: argparse.ArgumentParser, default: str | None = "auto", where: str = "default: auto") -> None:
    """--device, the same for every command that computes (train and finetune default to their config's)."""
    p.add_argument(
        "--device", type=device, default=default, help=f"auto (CUDA when present) | cpu | cuda | cuda:N ({where})"
    )


def add_log_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log",
        default="csv",
        choices=TRACKERS,
        help="also log to tensorboard (<out>/tensorboard) or wandb; the CSV/JSON files are always written (default: csv)",
    )


def add_allow_unfinished_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="use a run stopped before its last epoch, or still being written, as it is (the results record "
        "run_finished: false)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="wmplan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wmplan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collect", help="simulate episodes into a zarr dataset")
    p.add_argument("--env", default="wall", help="task name (default: wall)")
    p.add_argument("--episodes", type=positive_int, required=True)
    p.add_argument("--out", required=True, help="dataset path (a folder)")
    p.add_argument("--seed", type=seed, default=0)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    mode.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    p.add_argument(
        "--task-set", action="append", default=[], metavar="KEY=VALUE", help="task setting, e.g. random_layout=true"
    )
    p.add_argument(
        "--collector-set", action="append", default=[], metavar="KEY=VALUE", help="collector setting, e.g. steps=100"
    )
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("info", help="describe a dataset")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--verify", action="store_true", help="read every chunk back and list the missing or damaged ones")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="write a dataset in another tool's format (LeRobot v3.0, Hugging Face parquet)")
    p.add_argument("data", help="wmplan dataset path")
    p.add_argument("--to", dest="format", required=True, choices=["lerobot", "hf"])
    p.add_argument("--out", required=True, help="export folder (new)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export of the same format")
    p.add_argument(
        "--fps", type=positive_int, default=10, help="lerobot: frames per second in meta/info.json (default 10)"
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="read another tool's dataset into a new wmplan dataset")
    p.add_argument("source", help="dataset folder (a LeRobot or Hugging Face export, a DINO-WM folder, a .zarr)")
    p.add_argument(
        "--from", dest="source_format", required=True, choices=["lerobot", "hf", "dinowm", "diffusion-policy"]
    )
    p.add_argument("--out", required=True, help="wmplan dataset path (new)")
    p.add_argument("--env", help="wmplan task of the data (a wmplan export names its own)")
    p.add_argument(
        "--task-set", action="append", default=[], metavar="KEY=VALUE", help="task setting, e.g. image_size=224"
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="KEY=NAME",
        help="diffusion-policy: the data array of a wmplan key (obs, state, proprio, action, layout), e.g. obs=img",
    )
    p.add_argument("--resize", action="store_true", help="resize images to the task's image_size instead of refusing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing wmplan dataset at --out")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("train", help="train a world model on a dataset")
    p.add_argument("--data", required=True, help="dataset path")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument(
        "--preset",
        choices=["tiny", "small", "paper"],
        help="tiny | small | paper (default: small; with --resume: the run's)",
    )
    p.add_argument("--encoder", choices=ENCODERS)
    p.add_argument("--epochs", type=positive_int)
    add_device_flag(p, default=None, where="default: the preset's train.device, auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_log_flag(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any config field, e.g. train.batch_size=64"
    )
    p.set_defaults(func=cmd_train, check=check_run_flags)

    p = sub.add_parser("finetune", help="finetune a trained run (online or adversarial world modeling) into a new run")
    p.add_argument("--method", required=True, choices=["adversarial", "online"])
    # --parent: under torchrun, `--run` is taken for an abbreviation of torchrun's own --run-path.
    p.add_argument(
        "--run",
        "--parent",
        dest="run",
        required=True,
        type=run_location,
        help="run directory (or Hub id) of the trained parent model (alias --parent)",
    )
    p.add_argument("--out", required=True, help="run directory of the finetuned model (new)")
    p.add_argument(
        "--preset", default="small", choices=["tiny", "small", "paper"], help="finetuning length (default: small)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.*, adversarial.* or data.path, e.g. adversarial.eps_mode=adaptive",
    )
    p.add_argument("--data", help="the parent's dataset, if it moved since training (checked by its fingerprint)")
    add_device_flag(p, default=None, where="default: the parent run's train.device")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed finetuning in --out from its last checkpoint (same --method, --preset, --set)",
    )
    add_log_flag(p)
    p.set_defaults(func=cmd_finetune, check=check_run_flags)

    p = sub.add_parser("eval", help="plan with a trained model and score the plans in the simulator")
    # --model: under torchrun, `--run` is taken for an abbreviation of torchrun's own --run-path.
    p.add_argument(
        "--run",
        "--model",
        dest="run",
        required=True,
        type=run_location,
        help="run directory of a trained model, or a Hub id (alias --model, for torchrun)",
    )
    p.add_argument(
        "--planner",
        required=True,
        choices=PLANNERS,
        help="the paper's gd, adam, cem; beyond it: cem_best, hybrid (CEM then Adam), multistart (Adam, 8 starts)",
    )
    p.add_argument("--mpc", action="store_true", help="receding horizon (default: open loop)")
    p.add_argument(
        "--protocol",
        default="fixed",
        help="MPC protocol: fixed (a fixed number of replans, scored at the end; default) or paper (DINO-WM's loop: "
        "whole plans, replanned until the simulator's success test passes or mpc.max_replans, scored there)",
    )
    p.add_argument("--episodes", type=positive_int, default=50)
    p.add_argument("--seed", type=seed, default=99)
    p.add_argument(
        "--batch",
        type=positive_int,
        help="episodes planned at once (default: all; under torchrun, episodes / processes); the results depend "
        "on it, never on the number of processes",
    )
    p.add_argument("--video", type=non_negative_int, default=0, metavar="N", help="write GIFs of the first N episodes")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="planner.<field> or mpc.<field>, e.g. planner.lr=0.1",
    )
    p.add_argument("--out", required=True, help="results folder")
    add_result_flags(p)
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_eval, check=check_eval)

    p = sub.add_parser("demo", help="collect, train, finetune, plan, diagnose and report at CPU scale")
    p.add_argument("--env", default="wall", help="wall | pointmaze | pusht | rope | granular (default: wall)")
    p.add_argument(
        "--out", default="results/demo", help="output folder (an earlier demo there: --resume or --overwrite)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the data, models and eval cells a killed run with the same arguments finished",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier demo in --out (kept until the new one is finished)"
    )
    p.add_argument("--episodes", type=positive_int, help="start/goal pairs per cell (default 20)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="plan the eval cells in this many one-thread processes at once (default 1)",
    )
    p.add_argument("--full", action="store_true", help="the paper's 50 episodes per planner")
    p.add_argument("--seed", type=seed, default=0, help="seed of the data, and of training unless --seeds")
    p.add_argument(
        "--seeds",
        type=seeds,
        help="train every model with each of these seeds on the same data, e.g. 0,1,2; the report pools the cells",
    )
    add_device_flag(p)
    p.set_defaults(func=cmd_demo, check=check_demo)

    p = sub.add_parser(
        "sweep", help="the Table 1 grid (models x planners x modes x seeds), one eval per cell, in parallel, resumable"
    )
    p.add_argument(
        "--config", help="YAML or JSON file: models, planners, modes, seeds, episodes, planner, mpc, protocol"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="on top of --config, e.g. models=base:runs/wall,online:runs/wall-online planners=gd,adam,cem "
        "modes=open,mpc seeds=99,100 episodes=50 planner.steps=100 mpc.replans=5",
    )
    p.add_argument("--out", required=True, help="sweep folder (a rerun skips its finished cells)")
    p.add_argument(
        "--workers", type=positive_int, default=1, help="CPU processes planning cells side by side (default 1)"
    )
    add_device_flag(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("gap", help="open-loop error on expert vs planner trajectories (the train-test gap)")
    p.add_argument(
        "--run",
        action="append",
        required=True,
        type=run_location,
        help="run directory or Hub id; repeat to compare runs (the first plans)",
    )
    p.add_argument("--out", required=True, help="results folder")
    add_result_flags(p)
    p.add_argument("--episodes", type=positive_int, default=50, help="expert windows (default 50)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the windows and the planner (default 0)")
    p.add_argument("--data", help="the first run's dataset, if it moved since training (checked by its fingerprint)")
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_gap)

    p = sub.add_parser("landscape", help="2-D slice of the planning cost around a GD optimum, per run")
    p.add_argument(
        "--run",
        action="append",
        required=True,
        type=run_location,
        help="run directory or Hub id; repeat to compare runs (the first plans)",
    )
    p.add_argument("--out", required=True, help="results folder")
    add_result_flags(p)
    p.add_argument("--grid", type=landscape_grid, default=41, help="odd number of points per axis (default 41)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the start/goal pair and the directions (default 0)")
    add_device_flag(p)
    add_allow_unfinished_flag(p)
    add_log_flag(p)
    p.set_defaults(func=cmd_landscape)

    p = sub.add_parser("reference", help="planning in the simulator itself: what a perfect model could reach")
    p.add_argument(
        "--env", required=True, help="wall | pointmaze | pusht (CEM in the simulator) | rope | granular (greedy pushes)"
    )
    p.add_argument("--out", required=True, help="results folder")
    add_result_flags(p)
    p.add_argument(
        "--episodes", type=positive_int, default=20, help="start/goal pairs, as eval draws them (default 20)"
    )
    p.add_argument("--seed", type=seed, default=99, help="seed of the pairs, as eval's --seed (default 99)")
    p.add_argument(
        "--pushes", type=positive_int, help="rope, granular: pushes per episode (default 10, an MPC episode's)"
    )
    p.add_argument(
        "--candidates", type=positive_int, help="rope, granular: pushes tried in the simulator per step (default 100)"
    )
    p.add_argument("--mpc", action="store_true", help="wall, pointmaze, pusht: replan with MPC (default: open loop)")
    p.add_argument("--protocol", help="with --mpc: fixed (default) or paper, as `wmplan eval`")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --mpc: mpc.<field>, e.g. mpc.max_replans=50",
    )
    p.set_defaults(func=cmd_reference, check=check_reference)

    p = sub.add_parser(
        "study", help="finetuning across seeds, lengths and strengths: does the effect hold? (resumable)"
    )
    p.add_argument("--env", default="wall", help="wall | pointmaze | pusht | rope | granular (default: wall)")
    p.add_argument("--out", required=True, help="study folder (a rerun resumes it)")
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
    p.add_argument("--encoder", default="conv", choices=ENCODERS, help="(default: conv)")
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
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="plan each seed's eval cells in this many one-thread processes (default 1)",
    )
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("push", help="upload a trained run to a Hugging Face Hub model repository")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--repo-id", required=True, help="owner/name of the Hub model repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("config", help="print a resolved run config")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    p = config_sub.add_parser("show", help="the config a preset gives a task, or a run's own, with --set applied")
    p.add_argument("--env", help="wall | pointmaze | pusht | rope | granular (default: wall)")
    p.add_argument("--preset", choices=["tiny", "small", "paper"], help="(default: small)")
    p.add_argument("--run", type=run_location, help="show this run's config instead of a preset's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config field")
    p.set_defaults(func=cmd_config_show, check=check_config_show)
    return parser


def _recorded_dataset(run: str) -> str | None:
    """The dataset a local run names in its config.json (finetune and gap read it unless --data), if readable."""
    try:
        return json.loads((Path(run) / "config.json").read_text())["config"]["data"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sweep_models(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """The sweep's local model folders (a Hub id is fetched into the Hub client's cache, never into --out)."""
    from wmplan.experiments.sweep_spec import load_spec
    from wmplan.hub import is_hub_id

    models = load_spec(args.config, args.set).models.items()
    return [(f"the model {name}", run) for name, run in models if not is_hub_id(str(run))]


Reads = list[tuple[str, Any]]
# Per command that writes: the kind of output its --out holds (wmplan.output_rule.KINDS), the (role, path) of what
# it reads, and the flag that continues or keeps an output already there.
WRITERS: dict[str, Callable[[argparse.Namespace], tuple[str, Reads, str | None]]] = {
    "collect": lambda a: ("dataset", [], "--append to add episodes to it"),
    "import": lambda a: ("dataset", [("the source", a.source)], None),
    "export": lambda a: (a.format, [("the dataset", a.data)], None),
    "train": lambda a: ("run", [("the dataset", a.data)], "--resume to continue it"),
    "finetune": lambda a: (
        "run",
        [("the parent run", a.run), ("the dataset", a.data or _recorded_dataset(a.run))],
        None,
    ),
    "eval": lambda a: ("eval", [("the run", a.run)], "--resume to keep it"),
    "gap": lambda a: (
        "gap",
        [*(("the run", r) for r in a.run), ("the dataset", a.data or _recorded_dataset(a.run[0]))],
        "--resume to keep it",
    ),
    "landscape": lambda a: ("landscape", [("the run", r) for r in a.run], "--resume to keep it"),
    "reference": lambda a: ("reference", [], "--resume to keep it"),
    "demo": lambda a: ("demo", [], "--resume to continue it"),
    "study": lambda a: ("study", [("the demo", a.from_demo)], None),
    "sweep": lambda a: ("sweep", _sweep_models(a), None),
}


def changed_runs(args: argparse.Namespace) -> str | None:
    """For a finished eval, gap or landscape result that --resume would keep: the first of its runs whose
    fingerprint (models.run_folder.RunState) differs from the one the result recorded, else None."""
    from wmplan.models.run_folder import RunFolder

    files = {"eval": "summary.json", "gap": "gap.json", "landscape": "landscape.json"}
    if args.command not in files:
        return None
    result = json.loads((Path(args.out) / files[args.command]).read_text())
    if args.command == "eval":
        records = [result]
    else:  # one entry per run, in the order of --run (labelled by folder name), then "settings"
        records = [v for k, v in result.items() if k != "settings"]
    runs = [args.run] if args.command == "eval" else list(args.run)
    if len(records) != len(runs):
        return ", ".join(map(str, runs))  # another set of runs than the result's
    for run, record in zip(runs, records):
        if record.get("run_fingerprint") != RunFolder(run).state().fingerprint:
            return str(run)
    return None


def output_rule(args: argparse.Namespace) -> AbstractContextManager[Output | None]:
    """The writer rule of the command's --out (wmplan.output_rule.output_folder); none for a command that writes nothing."""
    from wmplan.output_rule import output_folder

    writer = WRITERS.get(args.command)
    if writer is None:
        return nullcontext(None)
    kind, reads, continue_with = writer(args)
    resume = getattr(args, "resume", False) or getattr(args, "append", False)
    overwrite = getattr(args, "overwrite", False)
    return output_folder(args.out, kind, inputs=reads, overwrite=overwrite, resume=resume, continue_with=continue_with)


def refuse(prog: str, exc: BaseException | str) -> int:
    """The one way a command refuses bad input: a one-line message naming the problem, exit status 2."""
    if sys.stderr is not None:  # a closed stderr: the exit status alone says it
        print(f"{prog}: error: {exc}", file=sys.stderr)
    return 2


def system_error(exc: OSError, out: str | None = None) -> str:
    """An operating-system failure in words that name the file (else the command's --out `out`, else its
    output) and the way out (a full disk, a read-only or missing folder, a name too long, a closed output)."""
    where = f" {exc.filename or out or 'the output'}"
    fixes = {
        errno.ENOSPC: "the disk is full: free space or write elsewhere (--out); finished files are kept",
        errno.EDQUOT: "the disk quota is used up: free space or write elsewhere (--out)",
        errno.EROFS: "the file system is read-only: choose a writable --out",
        errno.EACCES: "permission denied: choose a path you may write, or fix its permissions",
        errno.ENAMETOOLONG: "a name in the path is longer than the file system allows: choose a shorter --out",
        errno.ELOOP: "the path loops through symbolic links: choose another path",
        errno.EBADF: "the output is closed: give the command a stdout and stderr",
    }
    fix = fixes.get(exc.errno or 0, "check the path and the disk")
    return f"cannot use{where} ({exc.strerror or exc}); {fix}"


def _close_process_group() -> None:
    """Under torchrun: destroy the process group this command started, so that its backend's threads end
    while the interpreter is whole (wmplan.training.distributed.DistContext.close; eval closes its own)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except CommandLineError as exc:  # a value or a combination of options refused while parsing: nothing started
        return refuse(exc.prog, exc)
    if sys.stdout is None:  # started with stdout closed: what it prints would be lost without a word
        return refuse(f"wmplan {args.command}", "stdout is closed; give the command an output (e.g. > wmplan.log)")
    # Planning drives attention into regimes whose backward pass makes subnormal floats; on x86 CPUs
    # those run 5-40x slower (measured on PushT's Adam planner). Flushing them to zero costs no accuracy
    # a planner or a training step can see. (collect, info and reference compute nothing in torch.)
    if args.command not in ("collect", "info", "reference"):
        import torch

        torch.set_flush_denormal(True)
    try:
        with output_rule(args) as output:  # checked and locked before any work; swapped in when it succeeds
            if output is not None and output.kept:
                changed = changed_runs(args)
                if changed:  # --resume keeps a result only while it is a result of the runs as they are now
                    raise ValueError(
                        f"{args.out} holds a result of {changed}, which has changed since (its fingerprint differs "
                        "from the one the result recorded); pass --overwrite to make it again"
                    )
                print(output.kept)
                return 0
            args.write_to = None if output is None else output.target
            code = args.func(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe or a full disk shows here, inside the handlers below, not at exit
        return code
    except (
        DatasetError,
        ValueError,
        FileNotFoundError,
        RuntimeError,
        ImportError,
    ) as exc:  # ImportError: an optional package
        return refuse(f"wmplan {args.command}", exc)
    except BrokenPipeError:  # `wmplan info ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout at exit
        return 0
    except OSError as exc:  # the system refused: a full disk, a read-only folder, a name too long...
        if exc.errno == errno.ENOSPC and sys.stdout is not None and not exc.filename:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # stdout on a full device
        return refuse(f"wmplan {args.command}", system_error(exc, getattr(args, "out", None)))
    finally:
        _close_process_group()


if __name__ == "__main__":
    sys.exit(main())
