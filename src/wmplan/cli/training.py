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


def config_file_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run config keys of train's --config file (wmplan.settings_file), nested mappings flattened to dotted
    keys; none without the flag. A key left without a value is refused: no run setting takes null."""
    from wmplan.settings_file import dotted_settings, read_settings_file

    path = getattr(args, "config", None)
    if path is None:
        return {}
    values = dotted_settings(read_settings_file(path, "run config keys"), path)
    empty = [key for key, value in values.items() if value is None]
    if empty:
        raise ValueError(f"{path} gives {empty[0]} no value; give it one or remove the line")
    return values


def check_run_flags(args: argparse.Namespace) -> None:
    """Refuse a run config key that two of a flag of RUN_FLAGS, the --config file (train) and --set give different
    values, naming both (train, finetune); the same value given twice is fine. Unknown keys are left to
    apply_overrides, which refuses them as it does a --set's."""
    from wmplan.config import RunConfig
    from wmplan.overrides import cast_value, key_type, parse_set_args, valid_keys

    path = getattr(args, "config", None)
    given: list[dict[str, tuple[str, str, Any]]] = [  # per source, key -> (its name, the name with its value, value)
        {
            key: (f"--{flag}", f"--{flag} {v}", v)
            for flag, key in RUN_FLAGS.items()
            if (v := getattr(args, flag, None)) is not None
        },
        {
            key: (f"{key} in --config {path}", f"{key}={v} in --config {path}", v)
            for key, v in config_file_settings(args).items()
        },
        {key: (f"--set {key}", f"--set {key}={v}", v) for key, v in parse_set_args(args.set).items()},
    ]
    known = set(valid_keys(RunConfig()))
    for key, (name, _, value) in given[1].items():  # a value of the wrong type, named with its file
        if key in known:
            cast_value(value, key_type(RunConfig, key), name)
    for i, first in enumerate(given):
        for second in given[i + 1 :]:
            for key in [k for k in first if k in second and k in known]:
                (name_a, shown_a, a), (name_b, shown_b, b) = first[key], second[key]
                kind = key_type(RunConfig, key)
                if cast_value(a, kind, name_a) != cast_value(b, kind, name_b):
                    raise ValueError(f"{shown_a} and {shown_b} give {key} two values; give it once")


def train_config(args: argparse.Namespace):
    """The run config of `wmplan train`: the preset for the dataset's task (default small), then the --config
    file, flags and --set (check_run_flags has made sure they agree). With --resume and none of --preset,
    --encoder, --config, --set: the run's stored config (train rechecks any other against it)."""
    from wmplan.config import apply_overrides, preset
    from wmplan.data.store import TrajectoryStore
    from wmplan.overrides import parse_set_args

    task = TrajectoryStore.open(args.data).task_name
    overrides = flag_settings(args)
    if args.resume and args.preset is None and args.encoder is None and args.config is None and not args.set:
        from wmplan.training.trainer import stored_config

        return apply_overrides(stored_config(args.out), overrides)
    given = {**config_file_settings(args), **overrides, **parse_set_args(args.set)}
    return apply_overrides(preset(args.preset or "small", task), given)


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
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a YAML (.yaml, .yml) or JSON file of the keys --set takes, dotted (train.epochs: 2) or nested "
        "(train: {epochs: 2}); a key it shares with --set or a flag must have the same value there",
    )
    add_set_flag(p, "any config field, e.g. train.batch_size=64")
    p.set_defaults(func=cmd_train, check=check_run_flags)


def cmd_finetune(args: argparse.Namespace) -> int:
    from wmplan.models.run_folder import RunFolder
    from wmplan.overrides import parse_set_args
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
