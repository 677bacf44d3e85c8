"""The writer rule every command that writes applies to its --out, before any work:
`output_folder(out, kind, inputs=..., overwrite=..., resume=...)` refuses an --out that is, holds or lies
inside one of the command's inputs, or holds another kind of output (KINDS: how each is recognised, the
one place that says so), or a finished result without --overwrite or --resume; then takes the folder's
writer lock (wmplan.writing.claim_folder). With --overwrite the new output is built beside the old one
and swapped in only when complete, so a failure leaves the old one whole. docs/usage.md states the rule.

Example:
    >>> with output_folder("results/eval", "eval", inputs=[("the run", "runs/wall")]) as out:  # doctest: +SKIP
    ...     write_into(out.target)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from wmplan.writing import LOCK_NAME, MANIFEST, OutputError, WriterLock, claim_folder, is_empty


@dataclass(frozen=True)
class Kind:
    """What an output folder holds, recognised by marker files at its top (glob patterns, any one)."""

    name: str
    markers: tuple[str, ...]
    finished: str | None = None
    """A result's last file: a rerun onto a finished one needs --overwrite (replace) or --resume (keep)."""
    continues: bool = False
    """A rerun without flags goes on in it (a study, a sweep; a run, whose trainer checks it)."""
    owns_folder: bool = False
    """Its writer needs the folder to itself (a store wants it empty; a demo deletes stale stages in it)."""
    in_place: bool = False
    """--overwrite moves the old one aside and builds at --out itself, not beside it: the files record
    their own absolute paths (a demo's runs name its dataset and their parents)."""


# The one place that says how each output is recognised; the first kind with a marker present wins.
KINDS = {
    "sweep": Kind("a sweep folder", ("sweep.json",), continues=True),
    # a study writes study.json first and grid.json later (study_grid.json before grid.json existed): listed
    # before the demo, whose marker grid.json a study folder holds too
    "study": Kind("a study folder", ("study.json", "study_grid.json"), continues=True, owns_folder=True),
    "demo": Kind("a demo folder", ("demo.json", "grid.json"), owns_folder=True, in_place=True),
    "dataset": Kind("a wmplan dataset", (".zgroup", ".zattrs", "zarr.json"), owns_folder=True),
    "run": Kind(
        "a run", (MANIFEST, "config.json", "model.safetensors", "encoder.json", ".checkpoint-*"), continues=True
    ),
    "eval": Kind("an eval result", ("episodes.jsonl", "cell.json"), finished="summary.json"),
    "reference": Kind("a reference result", ("summary.json",), finished="summary.json"),
    "gap": Kind("a gap result", ("gap.json", "gap.png"), finished="gap.json"),
    "landscape": Kind("a landscape result", ("landscape.json", "landscape.png"), finished="landscape.json"),
    "lerobot": Kind("a LeRobot export", ("meta/info.json",), owns_folder=True),
    "hf": Kind("a Hugging Face export", ("data/*.parquet",), owns_folder=True),
}
OTHER_FILES = Kind("other files", ())


def folder_kind(folder: str | Path) -> Kind | None:
    """What `folder` holds: one of KINDS, OTHER_FILES, or None when it is missing or empty."""
    folder = Path(folder)
    if is_empty(folder):
        return None
    for kind in KINDS.values():
        if any(next(folder.glob(marker), None) is not None for marker in kind.markers):
            return kind
    return OTHER_FILES


@dataclass
class Output:
    """Where a command writes: `path` is its --out; `target` the folder to write into (--out itself, or a
    sibling swapped in when the command succeeds); `kept` a message when --resume found a finished result
    and there is nothing to write."""

    path: Path
    target: Path
    kept: str | None = None


@contextmanager
def output_folder(
    out: str | Path,
    kind: str,
    *,
    inputs: Iterable[tuple[str, str | Path | None]] = (),
    overwrite: bool = False,
    resume: bool = False,
    continue_with: str | None = None,
) -> Iterator[Output]:
    """The writer rule of a command that writes `kind` (a key of KINDS) into `out`, applied before any work.
    Refused, each with an OutputError naming the paths: an empty --out or a file; an --out that is, holds or
    lies inside one of `inputs` ((role, path) pairs: what the command reads); one holding another kind, or
    other files where the writer needs the folder to itself or --overwrite would replace them; one holding
    the same kind without --overwrite or `resume` (unless the kind continues, or is an unfinished result).
    `continue_with` names the command's resume flag and what it does ("--resume to keep it"). Then the
    folder's writer lock is taken and held until the block ends. --overwrite builds the new output in a
    sibling folder and swaps it in when the block ends without error (Kind.in_place: moves the old one
    aside and puts it back on error), so a failure leaves the old output whole. Under torchrun, rank 0
    alone checks and writes."""
    if not str(out).strip():
        raise OutputError("--out is empty; name the folder to write into (an empty name is the current folder)")
    flag = (continue_with or "--resume").split()[0]
    if overwrite and resume:
        raise OutputError(f"--overwrite and {flag} exclude each other; pass one of them")
    folder, wanted = Path(out), KINDS[kind]
    if int(os.environ.get("RANK", "0")) != 0:  # another rank of a torchrun job whose rank 0 owns --out
        yield Output(folder, folder, _kept(folder, wanted, overwrite, resume))
        return
    reads = [(role, path) for role, path in inputs if path is not None]
    plan = _plan(folder, wanted, reads, overwrite, resume, continue_with)
    if plan == "keep":  # nothing to write, not even a lock file
        yield Output(folder, folder, _kept(folder, wanted, overwrite, resume))
        return
    created = None if folder.exists() else next(p for p in (folder, *folder.parents) if p.parent.exists())
    had_lock = (folder / LOCK_NAME).exists()
    locks = [claim_folder(folder, wanted.name)]
    try:
        plan = _plan(folder, wanted, reads, overwrite, resume, continue_with)  # again, now that no one else writes
        target = _prepare(folder, wanted, plan, locks)
        try:
            yield Output(folder, target)
        except BaseException:
            _undo(folder, target, plan, created, had_lock)
            raise
        _complete(folder, target, wanted, locks)
    finally:
        for lock in locks:
            lock.release()


def _kept(folder: Path, kind: Kind, overwrite: bool, resume: bool) -> str | None:
    if not resume or overwrite or kind.finished is None or not (folder / kind.finished).exists():
        return None
    return f"{folder} already holds {kind.name} ({kind.finished}); kept it as it is (--overwrite replaces it)"


def _sibling(folder: Path, tag: str) -> Path:
    """A hidden folder beside `folder` (".NAME.<tag>"), named from its resolved path ("." has no name)."""
    folder = folder.resolve()
    return folder.with_name(f".{folder.name}.{tag}")


def _aside(folder: Path) -> Path:
    """Where an in-place --overwrite keeps the old output until the new one is complete."""
    return _sibling(folder, "replaced")


def _relation(out: Path, source: Path) -> str | None:
    out, source = out.resolve(), source.resolve()
    if out == source:
        return "is"
    return "holds" if out in source.parents else "lies inside" if source in out.parents else None


def _plan(folder: Path, kind: Kind, inputs: list, overwrite: bool, resume: bool, continue_with: str | None) -> str:
    """How to write `kind` into `folder`: "fresh", "in place", "replace" or "keep"; else an OutputError
    naming the folder and what stands in the way."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder; choose another --out")
    for role, path in inputs:
        relation = _relation(folder, Path(path))
        if relation:
            raise OutputError(
                f"--out must differ from what the command reads: {folder} {relation} {role} {path}; "
                "choose another --out"
            )
    here = Path.cwd().resolve()
    if overwrite and folder.exists() and _relation(folder, here) in ("is", "holds"):
        raise OutputError(f"--overwrite would delete {folder}, which holds the current folder; choose another --out")
    again = "pass --overwrite to replace it" + (f" or {continue_with}" if continue_with else "")
    if kind.in_place and _aside(folder).exists():  # an --overwrite killed before it finished
        if overwrite or resume:
            return "replace" if overwrite else "in place"
        raise OutputError(
            f"{folder} holds {kind.name} that an interrupted --overwrite left unfinished, and {_aside(folder)} the "
            f"one it replaces; {again}, or move {_aside(folder)} back yourself"
        )
    held = folder_kind(folder)
    if held is None:
        return "fresh"
    if held is OTHER_FILES:
        if not (overwrite or kind.owns_folder):
            return "in place"  # the command adds its files beside them and deletes nothing
        names = sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME)
        listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        why = f"--overwrite only replaces {kind.name}" if overwrite else "this command needs --out to itself"
        raise OutputError(
            f"{folder} is not empty: it holds files that are not {kind.name} ({listed}); {why}: choose another "
            "--out or empty it yourself"
        )
    if held is not kind:
        raise OutputError(f"{folder} holds {held.name}, not {kind.name}; choose another --out")
    finished = kind.finished is not None and (folder / kind.finished).exists()
    if overwrite:
        return "replace"
    if resume:
        return "keep" if finished else "in place"
    if kind.continues or (kind.finished is not None and not finished):
        return "in place"  # continued, or an unfinished result written again
    raise OutputError(f"{folder} already holds {kind.name}{f' ({kind.finished})' if finished else ''}; {again}")


def _prepare(folder: Path, kind: Kind, plan: str, locks: list[WriterLock]) -> Path:
    """The folder the command writes into: --out itself, or for a replace a fresh sibling (Kind.in_place:
    --out again, its old content moved aside first)."""
    if plan != "replace":
        return folder
    if not kind.in_place:
        stale = _sibling(folder, "new-*")  # left by a killed --overwrite; the lock is ours now
        for left in stale.parent.glob(stale.name):
            shutil.rmtree(left, ignore_errors=True)
        target = _sibling(folder, f"new-{os.getpid()}")
        target.mkdir()
        return target
    if _aside(folder).exists():  # the old one is aside already; `folder` holds an unfinished new one
        for child in folder.iterdir():
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        return folder
    locks[0].release()  # its lock file goes aside with the old output; the new folder gets its own
    folder.rename(_aside(folder))
    locks.append(claim_folder(folder, kind.name))
    return folder


def _complete(folder: Path, target: Path, kind: Kind, locks: list[WriterLock]) -> None:
    """The command succeeded: swap the new output in and drop the old one."""
    if kind.in_place:
        shutil.rmtree(_aside(folder), ignore_errors=True)
    if target == folder:
        return
    locks.append(claim_folder(target, kind.name))  # the new folder's own lock file, held across the swap
    old = _sibling(folder, f"old-{os.getpid()}")
    folder.rename(old)
    target.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _undo(folder: Path, target: Path, plan: str, created: Path | None, had_lock: bool) -> None:
    """The command failed: keep the old output whole, and leave no folder it created only to fail in."""
    if plan == "replace" and target != folder:
        shutil.rmtree(target, ignore_errors=True)
    elif plan == "replace":
        shutil.rmtree(folder, ignore_errors=True)
        _aside(folder).rename(folder)
    elif plan == "fresh" and created is not None:
        if all(p.name == LOCK_NAME for p in created.rglob("*") if not p.is_dir()):
            shutil.rmtree(created, ignore_errors=True)
    if not had_lock and folder.is_dir():  # the lock file this claim added to a folder that had none
        (folder / LOCK_NAME).unlink(missing_ok=True)
