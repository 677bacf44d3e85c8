"""Safe writing: one writer per folder, files that appear whole, and checkpoints that switch as a set.

- `claim_folder(folder, what)`: create the folder, prove it writable and take its writer lock (an OS
  lock on FOLDER/.wmplan-writer.lock, held until the process ends, kill -9 included). A second process
  that claims the folder is refused at once with the holder's pid; readers never take the lock.
- `atomic_write(path, write)`: write a temp file, then rename it over `path`.
- The writer rule every command applies to its --out (what may be written where, --overwrite built
  beside the old output): wmplan.output_rule.
- `commit_checkpoint(run_dir, epoch, write_files)`: an epoch's files are written into a staging
  folder with a manifest of their hashes, renamed to RUN/.checkpoint-<epoch> (the commit point), then
  hard-linked into the run folder, the manifest (checkpoint.json) last. `checkpoint_source(run_dir)`
  finds the files to read: the run folder when its manifest verifies, else the newest committed
  .checkpoint-* folder (a kill fell inside the switch); `restore_checkpoint` repairs the run folder.

Example:
    >>> lock = claim_folder("runs/wall", "the run")     # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import weakref
from collections.abc import Callable
from pathlib import Path

LOCK_NAME = ".wmplan-writer.lock"
MANIFEST = "checkpoint.json"
CHECKPOINT_PREFIX = ".checkpoint-"
STAGING_PREFIX = ".staging-"
TEMP_MARK = ".tmp-"


class OutputError(RuntimeError):
    """An output folder cannot be written: not creatable, not writable, or another process writes it."""


def _file_mode() -> int:
    """The mode a plain new file gets here (0666 less the umask), for every file we write."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


class WriterLock:
    """A held writer lock; released by `release()`, when collected, or when the process ends."""

    def __init__(self, folder: Path, handle):
        self.folder, self._handle = folder, handle

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the flock
            self._handle = None

    def __del__(self):
        self.release()


_held: weakref.WeakValueDictionary[str, WriterLock] = weakref.WeakValueDictionary()


def claim_folder(folder: str | Path, what: str) -> WriterLock:
    """Create `folder` (and parents), check it is writable and take its writer lock; `what` names the
    folder's role in messages ("the dataset", "the run"). Re-claiming a folder this process holds
    returns the same lock. Raises OutputError before any work is done."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        raise OutputError(
            f"{folder} is a symbolic link that leads nowhere (a loop, or a target that is gone); choose another "
            f"path for {what}"
        )
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder; choose another path for {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+")
    except OSError as exc:
        raise OutputError(f"cannot write {what} to {folder} ({exc.strerror}); choose a writable path") from exc
    key = str(folder.resolve())
    held = _held.get(key)
    if held is not None and held.held:
        handle.close()
        return held
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "unknown"
        handle.close()
        raise OutputError(
            f"{folder} is being written by another process (pid {pid}); wait for it to finish, "
            f"or write {what} elsewhere"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    lock = WriterLock(folder, handle)
    _held[key] = lock
    return lock


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp_path) then rename over `path`: a reader never sees a half-written file. The file gets
    the ordinary mode (0666 less the umask) whatever the writer used."""
    tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")
    write(tmp)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def is_empty(folder: str | Path) -> bool:
    """Whether `folder` is missing or holds nothing but its writer lock (claimed, not yet written)."""
    folder = Path(folder)
    return not folder.is_dir() or all(p.name == LOCK_NAME for p in folder.iterdir())


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path, data: bytes | None = None) -> dict:
    """`folder`'s checkpoint.json (or its bytes `data`, already read), checked for its shape ({"epoch":
    int, "files": {name: sha256}}); an OutputError naming the file and the key otherwise
    (FileNotFoundError when there is none)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_bytes() if data is None else data)
    except ValueError as exc:
        raise OutputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("epoch"), int):
        raise OutputError(f"{path}: key 'epoch' is missing or not a whole number")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise OutputError(f"{path}: key 'files' is missing or not a table of file hashes")
    return manifest


def manifest_problem(folder: Path, manifest: dict | None = None) -> str | None:
    """What is wrong with `folder`'s checkpoint set, in words naming the file (None: every file its
    manifest lists is present with its hash). `manifest`: one already read (else read here)."""
    try:
        manifest = manifest if manifest is not None else read_manifest(folder)
    except FileNotFoundError:
        return f"{folder / MANIFEST} is missing"
    except (OSError, OutputError) as exc:
        return str(exc)
    for name, digest in manifest["files"].items():
        try:
            if file_hash(folder / name) != digest:
                return f"{folder / name} does not match its hash in {MANIFEST} (damaged or changed since)"
        except OSError:
            return f"{folder / name} (listed in {MANIFEST}) is missing"
    return None


def _manifest_verifies(folder: Path) -> dict | None:
    """The manifest of `folder` if it names files that are all present with their hashes, else None."""
    try:
        manifest = read_manifest(folder)
    except (OSError, OutputError):
        return None
    return manifest if manifest_problem(folder, manifest) is None else None


def _committed(run_dir: Path) -> list[Path]:
    """The run's committed checkpoint folders, newest epoch first."""
    found = []
    for p in run_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = p.name[len(CHECKPOINT_PREFIX) :]
        if p.is_dir() and suffix.isdigit():
            found.append((int(suffix), p))
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_source(run_dir: str | Path) -> Path:
    """The folder to read a run's checkpoint files from: `run_dir` itself when its manifest verifies
    (or when it has no checkpoint sets at all: a run written before them); else the newest committed
    set whose manifest verifies. A run folder torn with no complete set to fall back to is an error."""
    run_dir = Path(run_dir)
    if _manifest_verifies(run_dir) is not None:
        return run_dir
    for folder in _committed(run_dir):
        if _manifest_verifies(folder) is not None:
            return folder
    if (run_dir / MANIFEST).exists():
        raise OutputError(
            f"{manifest_problem(run_dir)}, and no complete checkpoint is left to fall back to; the run is "
            f"damaged: train it again"
        )
    return run_dir


def _promote(source: Path, run_dir: Path, manifest: dict) -> None:
    """Link the set's files into run_dir one by one, each atomically, the manifest last."""
    for name in [*manifest["files"], MANIFEST]:
        tmp = run_dir / f".{name}{TEMP_MARK}{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source / name, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(source / name, tmp)
        os.replace(tmp, run_dir / name)


def remove_stray_files(run_dir: Path, keep_epoch: int | None = None) -> None:
    """Temp files and staging folders left by a killed writer, and committed sets older than the one
    in use. Call only while holding the folder's writer lock."""
    for p in run_dir.iterdir():
        if TEMP_MARK in p.name and p.is_file():
            p.unlink(missing_ok=True)
        elif p.name.startswith(STAGING_PREFIX) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    for folder in _committed(run_dir):
        if keep_epoch is None or int(folder.name[len(CHECKPOINT_PREFIX) :]) != keep_epoch:
            shutil.rmtree(folder, ignore_errors=True)


def commit_checkpoint(run_dir: Path, epoch: int, write_files: Callable[[Path], None]) -> None:
    """write_files(staging) writes the epoch's files into a fresh folder; they then replace the run's
    current set as a whole (see the module docstring). Call only while holding the writer lock."""
    staging = run_dir / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write_files(staging)
    for p in staging.iterdir():
        os.chmod(p, FILE_MODE)
    manifest = {"epoch": epoch, "files": {p.name: file_hash(p) for p in sorted(staging.iterdir())}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    committed = run_dir / f"{CHECKPOINT_PREFIX}{epoch}"
    shutil.rmtree(committed, ignore_errors=True)  # a set of this epoch left by a killed run: superseded
    os.replace(staging, committed)  # the commit point
    _promote(committed, run_dir, manifest)
    remove_stray_files(run_dir, keep_epoch=epoch)


def restore_checkpoint(run_dir: Path) -> dict | None:
    """Make the run folder hold its last complete checkpoint set again (after a kill inside a switch)
    and drop stray files; returns that set's manifest (None for a run without checkpoint sets). Call
    only while holding the writer lock."""
    source = checkpoint_source(run_dir)
    manifest = _manifest_verifies(source)
    if manifest is not None and source != run_dir:
        _promote(source, run_dir, manifest)
    remove_stray_files(run_dir, keep_epoch=None if manifest is None else manifest["epoch"])
    return manifest


def writer_pid(folder: str | Path) -> int | None:
    """The pid of another live process that holds `folder`'s writer lock (0 where the system does not
    say which), else None; the lock dies with its process, so a killed writer holds nothing. Read from
    /proc/locks where there is one: probing with a lock of our own would, for that instant, refuse a
    writer that starts then."""
    folder = Path(folder)
    try:
        lock_file = (folder / LOCK_NAME).stat()
    except OSError:
        return None
    mine = _held.get(str(folder.resolve()))
    if mine is not None and mine.held:
        return None
    try:
        table = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return _probe_writer(folder / LOCK_NAME)
    for line in table:  # "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"; "->" marks a waiter
        fields = line.split()
        if "FLOCK" not in fields or "->" in fields:
            continue
        at = fields.index("FLOCK")
        try:
            pid, (major, minor, inode) = int(fields[at + 3]), fields[at + 4].split(":")
            same = int(inode) == lock_file.st_ino and os.makedev(int(major, 16), int(minor, 16)) == lock_file.st_dev
        except (IndexError, ValueError):
            continue
        if same and pid != os.getpid():
            return pid
    return None


def _probe_writer(path: Path) -> int | None:
    """writer_pid without /proc/locks: try a shared lock for an instant."""
    try:
        handle = open(path)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
