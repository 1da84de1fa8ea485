"""The files a tracked cell's forked workers read (a DataLoader's, a fork Pool's).

A worker forked while the cell runs has the kernel's audit hook but its own memory: it
appends each path it reads to a log file, and the cell reads the log at its end
(``filewatch``). The log is made just before the cell's first fork, so the many cells
that never fork make no file, and removed at the cell's end. A kernel killed in the
middle of such a cell leaves its log behind: the next kernel's first tracked cell
removes the logs of processes that are gone (and any under its own pid, a reused one's).
"""

from __future__ import annotations

import contextlib
import os
import tempfile

PREFIX = "nbtrack-forked-"


class ForkLog:
    """One cell's log. ``child``: this copy is a forked worker's."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.child = False
        self.failed = False  # the log could not be made: workers' reads are not seen

    def before_fork(self) -> None:
        """In the kernel, just before a fork: make the log if this cell has none yet."""
        if self.path is None and not self.child and not self.failed:
            try:
                fd, self.path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-")
                os.close(fd)
            except OSError:
                self.failed = True

    def tell(self, path: str) -> None:
        """In a worker: one line appended (``O_APPEND``: lines of workers reading at once
        do not interleave). No log any more: the cell has ended (a pool kept for later
        cells), and this worker's reads reach nobody."""
        try:
            fd = os.open(self.path or "", os.O_WRONLY | os.O_APPEND)
        except OSError:
            self.path = None
            return
        try:
            os.write(fd, os.fsencode(path) + b"\n")
        finally:
            os.close(fd)

    def take(self) -> list[str]:
        """In the kernel, at the cell's end: the paths the workers read; the log removed."""
        path, self.path = self.path, None
        if path is None:
            return []
        try:
            with open(path, "rb") as fh:
                lines = fh.read().splitlines()
        except OSError:
            lines = []
        with contextlib.suppress(OSError):
            os.unlink(path)
        return [os.fsdecode(p) for p in dict.fromkeys(lines)]


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
