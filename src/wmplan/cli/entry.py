"""The `wmplan` command line: a thin layer over the Python API.

wmplan collect --env wall --episodes 1920 --out data/wall [--seed 0] [--overwrite | --append]
wmplan info data/wall [--json]
wmplan export data/wall --to lerobot|hf --out exports/wall [--overwrite] [--fps 10] [--frames png|video]
wmplan import SOURCE --from lerobot|hf|dinowm|diffusion-policy --out data/x [--env pusht] [--task-set k=v]
              [--map obs=img ...] [--resize] [--overwrite]
wmplan train --data data/wall --out runs/wall [--preset tiny|small|paper] [--encoder conv|patch|state|dinov2]
             [--epochs N] [--device auto|cpu|cuda] [--resume] [--config FILE.yaml] [--set key=value ...]
wmplan finetune --method adversarial|online --run runs/wall --out runs/wall-adv [--preset tiny|small|paper]
                [--set adversarial.lambda_action=0.1 ...] [--resume]
wmplan eval --run runs/wall --planner gd|adam|cem|cem_best|hybrid|multistart [--mpc] [--episodes 50] [--seed 99] [--video N]
            [--batch N] [--set planner.lr=0.1 ...] [--allow-unfinished] --out DIR [--overwrite | --resume]
torchrun --nproc_per_node N -m wmplan.cli eval --model runs/wall ...   (the episodes split across N processes or GPUs)
wmplan demo [--env wall] [--out results/demo] [--episodes 20 | --full] [--seeds 0,1,2] [--resume | --overwrite] [--workers N]
wmplan sweep [--config sweep.yaml] [--set models=base:runs/wall,... --set planners=gd,adam,cem ...] --out DIR [--workers N]
             [--launcher local|submitit] [--cells-per-job K] [--set slurm.partition=gpu ...]
wmplan gap --run runs/wall [--run runs/wall-adv ...] --out DIR [--episodes 50] [--allow-unfinished] [--overwrite | --resume]
wmplan landscape --run runs/wall [--run runs/wall-adv ...] --out DIR [--grid 41] [--allow-unfinished] [--overwrite | --resume]
wmplan study [--env wall] --out DIR [--seeds 0,1,2] [--adversarial-epochs 1,3,10] [--online-steps 200,1000,3000] [--from-demo DIR] [--workers N]
             [--code-versions SEED]
wmplan reference --env wall --out DIR [--episodes 20] [--mpc] [--overwrite | --resume]
wmplan config show [--env wall] [--preset tiny|small|paper] [--run RUN] [--set key=value ...]
wmplan push --run runs/wall --repo-id OWNER/NAME [--private]
(every --run also takes a Hub id OWNER/NAME; every --out follows one writer rule: wmplan.output_rule.output_folder)
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from wmplan import __version__
from wmplan.cli import data, evaluation, experiments, reference, runs, training
from wmplan.cli.writers import changed_runs, output_rule
from wmplan.cli_types import CommandLineError, CommandParser
from wmplan.data.store import DatasetError

ADD_PARSERS = (
    data.add_collect_parser,
    data.add_info_parser,
    data.add_export_parser,
    data.add_import_parser,
    training.add_train_parser,
    training.add_finetune_parser,
    evaluation.add_eval_parser,
    experiments.add_demo_parser,
    experiments.add_sweep_parser,
    evaluation.add_gap_parser,
    evaluation.add_landscape_parser,
    reference.add_reference_parser,
    experiments.add_study_parser,
    runs.add_push_parser,
    runs.add_config_parser,
)
"""Every command's parser, in the order `wmplan --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="wmplan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wmplan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in ADD_PARSERS:
        add_parser(sub)
    return parser


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
