"""The commands that read a run without computing: push (upload it to the Hub), config show (its config, or a
preset's)."""

from __future__ import annotations

import argparse
import json

from wmplan.cli.flags import add_env_flag, add_preset_flag, add_run_flag, add_set_flag


def cmd_push(args: argparse.Namespace) -> int:
    from wmplan.hub import push_run

    where = push_run(
        args.run,
        args.repo_id,
        private=args.private,
        token=args.token,
        revision=args.revision,
        evals=args.eval,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        print(f"wrote what a push of {args.run} to {args.repo_id} would upload into {where}; nothing was uploaded")
        return 0
    print(
        f"uploaded {args.run} to {where}; load it with WorldModel.from_pretrained({args.repo_id!r}) or --run {args.repo_id}"
    )
    return 0


def add_push_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="upload a trained run to a Hugging Face Hub model repository")
    add_run_flag(p, "run directory", hub=False)
    p.add_argument("--repo-id", required=True, help="owner/name of the Hub model repository (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", help="upload to this branch of the repository (created if needed; default: main)")
    p.add_argument("--token", help="a Hub access token (default: the Hub client's login or HF_TOKEN)")
    p.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="DIR",
        help="the --out folder of a `wmplan eval` of this run; its success rate goes into the card (repeatable)",
    )
    p.add_argument("--dry-run", metavar="DIR", help="write the folder that would be uploaded into DIR; upload nothing")
    p.set_defaults(func=cmd_push)


def check_config_show(args: argparse.Namespace) -> None:
    """--env and --preset choose a preset's config, which --run replaces by the run's own: not both."""
    given = [flag for flag, value in (("--env", args.env), ("--preset", args.preset)) if value is not None]
    if args.run and given:
        verb = "does" if len(given) == 1 else "do"
        raise ValueError(f"{' and '.join(given)} {verb} not apply with --run, which shows the run's own config")
    args.env, args.preset = args.env or "wall", args.preset or "small"


def cmd_config_show(args: argparse.Namespace) -> int:
    """The resolved config of a run (as it was trained) or of a preset for a task, with --set applied."""
    from wmplan.config import apply_overrides, preset
    from wmplan.overrides import parse_set_args

    if args.run:
        from wmplan.models.run_folder import RunFolder

        cfg = RunFolder(args.run).config()
    else:
        cfg = preset(args.preset, args.env)
    cfg = apply_overrides(cfg, parse_set_args(args.set))
    print(json.dumps(cfg.to_dict(), indent=2))
    return 0


def add_config_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print a resolved run config")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    p = config_sub.add_parser("show", help="the config a preset gives a task, or a run's own, with --set applied")
    add_env_flag(p, default=None)
    add_preset_flag(p, "(default: small)")
    add_run_flag(p, "show this run's config instead of a preset's", required=False)
    add_set_flag(p, "any config field")
    p.set_defaults(func=cmd_config_show, check=check_config_show)
