"""The dataset commands: collect, info, export, import."""

from __future__ import annotations

import argparse
import json
import time

from wmplan.cli.flags import add_env_flag, add_out_flag, add_seed_flag, add_set_flag
from wmplan.cli_types import positive_int


def cmd_collect(args: argparse.Namespace) -> int:
    from wmplan.data.collect import collect
    from wmplan.overrides import parse_set_args

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


def add_collect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="simulate episodes into a zarr dataset")
    add_env_flag(p)
    p.add_argument("--episodes", type=positive_int, required=True)
    add_out_flag(p, "dataset path (a folder)")
    add_seed_flag(p, 0)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    mode.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    add_set_flag(p, "task setting, e.g. random_layout=true", "--task-set")
    add_set_flag(p, "collector setting, e.g. steps=100", "--collector-set")
    p.set_defaults(func=cmd_collect)


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


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a dataset")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--verify", action="store_true", help="read every chunk back and list the missing or damaged ones")
    p.set_defaults(func=cmd_info)


def cmd_export(args: argparse.Namespace) -> int:
    from wmplan.data.interchange import export_dataset

    export_dataset(args.data, args.write_to, args.format, overwrite=args.overwrite, fps=args.fps, frames=args.frames)
    print(f"exported {args.data} to {args.out} ({args.format})")
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a dataset in another tool's format (LeRobot v3.0, Hugging Face parquet)")
    p.add_argument("data", help="wmplan dataset path")
    p.add_argument("--to", dest="format", required=True, choices=["lerobot", "hf"])
    add_out_flag(p, "export folder (new)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export of the same format")
    p.add_argument(
        "--fps", type=positive_int, default=None, help="lerobot: frames per second (default: the task's render_fps)"
    )
    p.add_argument(
        "--frames",
        choices=["png", "video"],
        default="png",
        help="lerobot: camera frames as PNG in the parquet files (lossless, default) or as MP4 videos in "
        "LeRobot's video layout (lossy; needs PyAV: pip install av)",
    )
    p.set_defaults(func=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from wmplan.data.interchange import import_dataset
    from wmplan.overrides import parse_set_args

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


def add_import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="read another tool's dataset into a new wmplan dataset")
    p.add_argument("source", help="dataset folder (a LeRobot or Hugging Face export, a DINO-WM folder, a .zarr)")
    p.add_argument(
        "--from", dest="source_format", required=True, choices=["lerobot", "hf", "dinowm", "diffusion-policy"]
    )
    add_out_flag(p, "wmplan dataset path (new)")
    add_env_flag(p, default=None, help="wmplan task of the data (a wmplan export names its own)")
    add_set_flag(p, "task setting, e.g. image_size=224", "--task-set")
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
