"""The commands that make a run: train, finetune."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from wmplan.cli.flags import add_device_flag, add_log_flag, add_out_flag, add_preset_flag, add_run_flag, add_set_flag
from wmplan.cli_types import positive_int
from wmplan.models.encoder_registry import encoder_names

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


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a world model on a dataset")
    p.add_argument("--data", required=True, help="dataset path")
    add_out_flag(p, "run directory")
    add_preset_flag(p, "tiny | small | paper (default: small; with --resume: the run's)")
    p.add_argument("--encoder", choices=encoder_names())
    p.add_argument("--epochs", type=positive_int)
    add_device_flag(p, default=None, where="default: the preset's train.device, auto")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_log_flag(p)
    add_set_flag(p, "any config field, e.g. train.batch_size=64")
    p.set_defaults(func=cmd_train, check=check_run_flags)


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


def add_finetune_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="finetune a trained run (online or adversarial world modeling) into a new run")
    p.add_argument("--method", required=True, choices=["adversarial", "online"])
    add_run_flag(p, "run directory (or Hub id) of the trained parent model (alias --parent)", alias="--parent")
    add_out_flag(p, "run directory of the finetuned model (new)")
    add_preset_flag(p, "finetuning length (default: small)", default="small")
    add_set_flag(p, "train.*, adversarial.* or data.path, e.g. adversarial.eps_mode=adaptive")
    p.add_argument("--data", help="the parent's dataset, if it moved since training (checked by its fingerprint)")
    add_device_flag(p, default=None, where="default: the parent run's train.device")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a killed finetuning in --out from its last checkpoint (same --method, --preset, --set)",
    )
    add_log_flag(p)
    p.set_defaults(func=cmd_finetune, check=check_run_flags)
