"""The files a tracked cell's forked workers read (a DataLoader's, a fork Pool's).

A worker forked by the kernel has its audit hook but its own memory: while a tracked
cell runs, it appends each path it reads to the kernel's log, and the cell reads the log
at its end (``filewatch``). The log exists only while a cell runs that may have workers:
made at the cell's start once the kernel has forked (a pool kept from an earlier cell,
tracked or not: the sixteenth trial's `pool.map` in a second cell recorded no input), or
just before the cell's first fork, so the many cells of a kernel that never forks make
no file; removed at the cell's end. Its first line is a token of the cell, so a worker
that reads a file in two cells reports it in both. A kernel killed in the middle of such
a cell leaves its log behind: the next kernel's first tracked cell removes the logs of
processes that are gone (and any under its own pid, a reused one's).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time

PREFIX = "nbtrack-forked-"


class ForkLog:
    """The kernel's log. ``child``: this copy is a forked worker's."""

    def __init__(self) -> None:
        self.path = ""
        self.made = False  # (in the kernel) the log exists: a cell runs
        self.forked = False  # (in the kernel) workers it forked may still run
        self.child = False
        self.skip: tuple[str, ...] = ()  # folders whose files are never data
        self._token = b""
        self._seen: set[str] = set()
        self._busy = threading.local()  # (the log's own open, in a worker)

    def begin(self) -> None:
        """In the kernel, at a tracked cell's start: the log, if workers may be alive."""
        if self.forked:
            self._make()

    def before_fork(self, in_cell: bool) -> None:
        """In the kernel, just before a fork: the log, if a cell runs and has none yet."""
        if not self.child:
            self.forked, self.path = True, _log_path()
            if in_cell:
                self._make()

    def after_fork_in_child(self) -> None:
        self.child, self._token, self._seen = True, b"", set()
        self._busy = threading.local()

    def _make(self) -> None:
        if self.made:
            return
        self.path = _log_path()
        new = f"{self.path}.{threading.get_ident()}"
        try:  # (whole before a worker may open it: its token written, then renamed)
            with open(new, "wb") as fh:
                fh.write(b"%d\n" % time.time_ns())
            os.replace(new, self.path)
        except OSError:
            return  # no log: the workers' reads are not seen
        self.made = True

    def tell(self, path: str) -> None:
        """In a worker: one line appended (``O_APPEND``: lines of workers reading at once
        do not interleave), once per path and cell. No log: no tracked cell runs, and
        this worker's reads reach nobody."""
        if getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:  # (first: outside a cell, one failed open per read, no more)
            fd = os.open(self.path or "", os.O_RDWR | os.O_APPEND)
        except OSError:
            return
        finally:
            self._busy.on = False
        try:
            path = os.path.realpath(path)
            if path.startswith(self.skip):
                return
            token = os.pread(fd, 32, 0).split(b"\n", 1)[0]
            if token != self._token:
                self._token, self._seen = token, set()
            if path not in self._seen:
                self._seen.add(path)
                os.write(fd, os.fsencode(path) + b"\n")
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)

    def take(self) -> list[str]:
        """In the kernel, at the cell's end: the paths the workers read; the log removed."""
        if not self.made:
            return []
        self.made = False
        try:
            with open(self.path, "rb") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            lines = []
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        return [os.fsdecode(p) for p in dict.fromkeys(lines)]


def _log_path() -> str:
    return os.path.join(tempfile.gettempdir(), f"{PREFIX}{os.getpid()}-log")


def sweep(folder: str | None = None) -> None:
    """Remove the logs left by killed kernels: a process that is gone, or this pid (no
    log of this process exists yet: it belonged to an earlier one of the same number)."""
    import psutil  # (imported by the run's spool already: a writer's start time)

    folder = folder or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or (int(pid) != os.getpid() and psutil.pid_exists(int(pid))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
