"""Files that appear whole or not at all, and work done once across processes.

Every file the project writes for someone else to read (bronze Parquet, plans, caches of SUMO
runs, built networks) is written under a staging name in the same folder, flushed to disk,
renamed into place and its folder flushed: a reader, or a crash, sees the old file or the new
one, never half of one. ``durable=False`` skips the fsyncs where losing the file in a power cut
costs only a recomputation (caches), since an fsync can take tens of milliseconds.

:func:`produce_once` is the lock-recheck-produce-replace of a cache shared by processes (the
seed processes of one evaluation all wanting the same demand file); the lock is ``filelock``'s.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

T = TypeVar("T")


def fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries (so that a rename into it survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_name(path: Path) -> Path:
    """The hidden sibling a file (or folder) is written under before it is renamed into place."""
    return path.with_name(f".{path.name}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a staging path to write; when the block ends without error, it becomes ``path``.

    On an error the staging file is removed and ``path`` is left as it was. The staging name is
    fixed (a crash's leftover is found and replaced), so writers that may run at once take
    :func:`file_lock` or go through :func:`produce_once`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_name(path)
    staging.unlink(missing_ok=True)
    try:
        yield staging
        if durable:
            fsync(staging)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    if durable:
        fsync(path.parent)


def write_atomic(path: Path, content: str | bytes, *, durable: bool = True) -> Path:
    """Write ``content`` (text as UTF-8 with ``\\n`` line ends) to ``path`` whole or not at all."""
    with atomic_path(path, durable=durable) as staging:
        if isinstance(content, bytes):
            staging.write_bytes(content)
        else:
            staging.write_text(content, encoding="utf-8", newline="\n")
    return Path(path)


@contextlib.contextmanager
def atomic_dir(folder: Path) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error, it becomes ``folder``.

    A folder already at ``folder`` is replaced (removed first: a rename cannot replace a folder
    that has entries). On an error the staging folder is removed.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_name(folder)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def file_lock(path: Path) -> FileLock:
    """An exclusive lock across processes, held on the hidden ``.<name>.lock`` beside ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(f".{path.name}.lock"))


def existing(path: Path) -> Path | None:
    """The ``read`` for :func:`produce_once` of a file that is valid once it is there: its path."""
    return path if Path(path).is_file() else None


def produce_once(
    path: Path,
    produce: Callable[[Path], T],
    read: Callable[[Path], T | None],
    *,
    durable: bool = False,
) -> T:
    """What ``read(path)`` gives; if it gives None (absent, torn, stale), ``produce`` writes it first.

    ``produce`` receives the staging path to write and returns the value it wrote, so the one
    process that computes it need not read it back. Other processes wait on the lock and then
    read what it wrote, so the work is done once.
    """
    found = read(path)
    if found is not None:
        return found
    with file_lock(path):
        found = read(path)  # another process produced it while we waited
        if found is not None:
            return found
        with atomic_path(path, durable=durable) as staging:
            return produce(staging)
