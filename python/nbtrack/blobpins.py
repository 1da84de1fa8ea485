"""Blobs a command counts on, kept from a ``gc`` running at the same time.

An import or a pull that finds a blob already in the cache does not copy it again and
later stores runs that name it. A ``gc`` deciding in between sees no run naming the
blob (an orphan, or a blob of runs it drops) and removes it: the imported run then
points at nothing. So both hold ``<cache>/.pins``: an import or pull a shared lock
from its first look at the cache until its runs are committed, ``gc`` an exclusive
one while it decides what is live and removes blobs. A ``gc`` thus waits for the
imports in progress (and then sees their runs), and an import waits for a ``gc`` in
progress. Kernels never take it: a cell must not wait for a ``gc``; ``gc`` reads
their spools instead.

``flock``, not POSIX record locks: those belong to the process, so a second lock of
the same file in another thread (the server runs an import and a ``gc`` side by side)
would not conflict, and closing any descriptor of the file would drop both.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from . import settings
from .exceptions import StoreBusyError

PINS = ".pins"


@contextlib.contextmanager
def _held(cache_root: Path, mode: int, what: str) -> Iterator[None]:
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache_root / PINS, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        yield  # a read-only cache: nothing can be added or removed there anyway
        return
    try:
        timeout = settings.lock_timeout()
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{cache_root}: {what} for {timeout:.0f} s "
                        f"(set {settings.LOCK_TIMEOUT.name} to wait longer)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # drops the lock


def pinned(cache_root: Path) -> contextlib.AbstractContextManager[None]:
    """Blobs found in the cache meanwhile stay there (no ``gc`` removes any)."""
    return _held(cache_root, fcntl.LOCK_SH, "a garbage collection held the cache")


def sweeping(cache_root: Path) -> contextlib.AbstractContextManager[None]:
    """No import or pull is between its look at the cache and storing its runs."""
    return _held(cache_root, fcntl.LOCK_EX, "an import or pull held the cache")
