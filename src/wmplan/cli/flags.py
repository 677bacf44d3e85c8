"""The options several `wmplan` commands share, each declared here once.

A command's parser calls these and passes only what is its own: its help text, or a default that differs from
the other commands' (named at the call, and in the docstring of the function that declares the flag).
"""

from __future__ import annotations

import argparse
from typing import Any

from wmplan.cli_types import device, positive_int, seed
from wmplan.tasks import task_names
from wmplan.tracking import TRACKERS

PRESETS = ["tiny", "small", "paper"]


def run_location(text: str) -> str:
    """--run: a local run folder, or a Hub id (owner/name) fetched into the Hub client's cache."""
    from wmplan.hub import local_run

    try:
        return str(local_run(text))
    except (FileNotFoundError, ImportError) as exc:  # argparse names the option and exits with status 2
        raise argparse.ArgumentTypeError(" ".join(str(exc).split())) from None


def add_run_flag(
    p: argparse.ArgumentParser, help: str, alias: str | None = None, required: bool = True, hub: bool = True
) -> None:
    """--run, a trained run: a folder or a Hub id (run_location). Under torchrun, `--run` is taken for an
    abbreviation of torchrun's own --run-path, so the commands run there take an `alias` (finetune --parent,
    eval --model). push alone takes a local folder only (hub=False): it uploads that folder."""
    names = ["--run"] if alias is None else ["--run", alias]
    kind: dict[str, Any] = {"type": run_location} if hub else {}
    p.add_argument(*names, dest="run", required=required, help=help, **kind)


def add_runs_flag(p: argparse.ArgumentParser) -> None:
    """--run, repeated: the runs a diagnosis compares (gap, landscape)."""
    p.add_argument(
        "--run",
        action="append",
        required=True,
        type=run_location,
        help="run directory or Hub id; repeat to compare runs (the first plans)",
    )


def add_out_flag(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    """--out, where the command writes (wmplan.output_rule.output_folder): required, except where a command has a
    default (demo)."""
    p.add_argument("--out", required=default is None, default=default, help=help)


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


def add_workers_flag(p: argparse.ArgumentParser, what: str) -> None:
    """--workers, processes planning cells side by side (demo, sweep, study); `what` says what each one plans."""
    p.add_argument("--workers", type=positive_int, default=1, help=f"{what} (default 1)")


def add_set_flag(p: argparse.ArgumentParser, help: str, flag: str = "--set") -> None:
    """--set KEY=VALUE, repeated (wmplan.overrides.parse_set_args reads them); also --task-set and --collector-set."""
    p.add_argument(flag, action="append", default=[], metavar="KEY=VALUE", help=help)


def add_preset_flag(p: argparse.ArgumentParser, help: str, default: str | None = None) -> None:
    """--preset, a size of wmplan.config's presets. finetune alone has a default here (small); train and config
    show leave it None, because their default depends on other options (train --resume: the run's own; config
    show --run refuses it)."""
    p.add_argument("--preset", default=default, choices=PRESETS, help=help)


def add_seed_flag(p: argparse.ArgumentParser, default: int, help: str | None = None) -> None:
    """--seed: 0 for a command that makes data or models (collect, demo, gap, landscape),
    wmplan.defaults.REPORT_PAIR_SEED (99) for one that draws the start/goal pairs a report scores (eval, reference)."""
    p.add_argument("--seed", type=seed, default=default, help=help)


def task_name(text: str) -> str:
    """--env: a task registered when the parser is built (wmplan.tasks.register_task)."""
    if text not in task_names():  # argparse names the option and exits with status 2
        raise argparse.ArgumentTypeError(f"unknown task {text!r}; available: {', '.join(task_names())}")
    return text


def add_env_flag(
    p: argparse.ArgumentParser, default: str | None = "wall", help: str | None = None, required: bool = False
) -> None:
    """--env, the task (wmplan.tasks); its help lists every registered task unless the command gives its own.
    Default wall, except: import (the export names its own), reference (required: the task picks the kind of
    reference) and config show (None: --run refuses it; its check fills in wall)."""
    names = " | ".join(task_names())
    p.add_argument("--env", type=task_name, default=default, required=required, help=help or f"{names} (default: wall)")
