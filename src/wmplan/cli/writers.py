"""What each command's --out holds and what the command reads: the writer rule of the command line
(wmplan.output_rule.output_folder), and the check that a result --resume keeps still matches its runs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wmplan.output_rule import Output


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
    "train": lambda a: ("run", [("the dataset", a.data), ("the config file", a.config)], "--resume to continue it"),
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
