"""A kernel's line to its store's ingestion process (``ingestd``).

The process reads a FIFO in the store's folder (``.nbtrack/ingestd.fifo``); opening
its writing end fails (``ENXIO``) exactly while no process reads it, so a write of
one byte is both the probe "is it running?" and the kick "a run is sealed, come
now" (or, from a reader, ``hurry``: "a reader waits for ended runs: come at once,
without the batch delay"). When nobody reads it, ``Link.start`` starts one, detached: nobody's child (a
shell starts it and exits), its own session, no stdin, stdout or stderr (it logs what
goes wrong to ``.nbtrack/ingestd.log``).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import threading
import time
from pathlib import Path

# The ingestion process's files, in the store's folder (see ``ingestd``).
LOCK_FILE = "ingestd.lock"  # flock'ed by the one process of the store (holds its pid)
# "<started> <done>": the number of its last round started, and of the last one that
# left nothing behind (``rounds``), for readers waiting on it.
ROUNDS_FILE = "ingestd.rounds"
FIFO_FILE = "ingestd.fifo"  # a byte: b"k" a run is sealed, b"p" a probe, b"h" hurry
LOG_FILE = "ingestd.log"  # what went wrong in it (made at its first line)
# Why its rounds fail now (one line; gone after a round that works): a kernel says it
# under the next tracked cell, as it said its own ingestion thread's failures.
PROBLEM_FILE = "ingestd.problem"
KICK, PROBE, HURRY = b"k", b"p", b"h"
RESPAWN_AFTER = 1.0  # seconds between two starts of the process by one kernel
# Seconds of starts with still nobody reading the FIFO before a kernel gives up on the
# process and ingests in its own thread (a process starts in ~0.3 s, ~2 s when busy).
GIVE_UP_AFTER = 10.0

# Seconds between a kick and the round it asks for: runs sealed meanwhile (cells back
# to back, several kernels) share its transaction. A round costs ~50 ms of CPU
# whatever it holds (attach, four inserts, commit, checkpoint): one a run was most of
# the process's CPU. A reader waiting for ended runs says ``hurry``: the round starts
# at once (a reader never waits out the delay). 1 s, not 0.2 s: under papermill a
# realistic cell ends every 0.1-0.5 s, and a round per cell cost 51.5 ms of this
# process's CPU per cell beside the notebook (37.5 ms at 1 s; bench_capture.py a).
BATCH_DELAY = 1.0


def open_fifo(path: Path) -> int:
    """The FIFO's writing end; ENXIO when nobody reads it (no process runs)."""
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # a file in its place: the process fixes it
        os.close(fd)
        raise OSError(errno.ENXIO, "not a FIFO")
    return fd


def hurry(folder: Path, byte: bytes = HURRY) -> bool:
    """Ask the store's ingestion process (``folder`` is the store's) for a round at once,
    without its batch delay: a reader waits for runs that ended (``byte=PROBE``: only
    whether it runs). False when no process reads the FIFO (none runs, or it is on its
    way out): then nobody will come."""
    try:
        fd = open_fifo(folder / FIFO_FILE)
    except OSError:
        return False
    try:
        os.write(fd, byte)
    except BlockingIOError:
        pass  # a full pipe: the process has bytes to read, a round is coming
    except OSError:
        return False  # EPIPE: it closed its end just now
    finally:
        os.close(fd)
    return True


def rounds(folder: Path) -> tuple[int, int] | None:
    """``(started, done)``: the numbers of the ingestion process's last round started and
    of its last round that brought in all it found (None when it says nothing).
    Everything that ended before a look is in once ``done`` passes that look's
    ``started``: the next round started after the look, and scans the folder anew."""
    try:
        with open(folder / ROUNDS_FILE, "rb") as f:
            fields = f.read(64).split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(folder: Path) -> float | None:
    """The CPU time the store's ingestion process has spent so far (its pid is in the
    lock file), None when unknown: a process working through a backlog spends some
    between two looks, a stopped or hung one none."""
    import psutil

    try:
        times = psutil.Process(int((folder / LOCK_FILE).read_text())).cpu_times()
    except (OSError, ValueError, psutil.Error):
        return None
    return float(times.user + times.system)


def say_problem(folder: Path, text: str | None) -> None:
    """Write (or, with None, remove) the ingestion process's current problem."""
    path = folder / PROBLEM_FILE
    try:
        if text is None:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_name(f"{PROBLEM_FILE}.{os.getpid()}")
        tmp.write_text(text.splitlines()[0] if text else "an unknown error")
        os.replace(tmp, path)
    except OSError:
        pass  # a full disk, say: the log has it, and the next round tries again


def problem(folder: Path) -> str | None:
    """Why the store's ingestion process cannot store runs now, if it cannot."""
    try:
        return (folder / PROBLEM_FILE).read_text().strip() or None
    except OSError:
        return None


class Link:
    """A kernel's line to its store's ingestion process: starts it when nobody reads
    the FIFO, and writes it a byte (a probe, or a kick when a run is sealed)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.folder = db_path.parent
        self.fifo = self.folder / FIFO_FILE
        self._fd = -1
        self._lock = threading.Lock()
        self._started = -RESPAWN_AFTER  # monotonic time of the last start
        self._first_start: float | None = None  # of the starts since a reader was seen
        self.failed: str | None = None  # why the process cannot run here
        self.wanted = False  # nobody read the FIFO: a process is to be started

    def send(self, byte: bytes) -> bool:
        """Write ``byte`` to the process, starting it if it is not running; True when
        it was delivered (a full pipe counts: the process has kicks to read)."""
        with self._lock:
            for _ in range(2):
                if self._fd < 0:
                    try:
                        self._fd = open_fifo(self.fifo)
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE):
                            # A passing shortage, not a reason to give the process up:
                            # the run waits in its spool for the next kick or a reader.
                            return False
                        if exc.errno not in (errno.ENXIO, errno.ENOENT):
                            self.failed = f"{self.fifo}: {exc.strerror or exc}"
                            return False
                        self._check_starts()
                        self.wanted = True  # nobody reads it: ``start`` one (off this thread)
                        return False
                    self._first_start = None  # a process reads it
                try:
                    os.write(self._fd, byte)
                    return True
                except BlockingIOError:
                    return True
                except OSError:  # EPIPE: the process is gone; look again, then start one
                    os.close(self._fd)
                    self._fd = -1
            return False

    def start(self) -> None:
        """Start the process (it leaves at once if another one runs meanwhile)."""
        with self._lock:
            self.wanted = False
            if time.monotonic() - self._started < RESPAWN_AFTER:
                return  # started a moment ago: give it time to open its FIFO
            self._started = time.monotonic()
            self._spawn()

    def _spawn(self) -> None:
        # Through a shell that exits at once: the process is nobody's child (it goes to
        # init), so no kernel counts its CPU as a cell's, lists it among its children
        # or keeps it as a zombie. posix_spawn, not subprocess: no Popen object to
        # outlive, no fork of a large kernel. Its own session; no stdin, stdout or
        # stderr (it logs to LOG_FILE).
        null = os.devnull
        try:
            pid = os.posix_spawn(
                "/bin/sh",
                ["sh", "-c", '"$0" -m nbtrack.ingestd "$1" &', sys.executable, str(self.db_path)],
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
                ],
                setsid=True,
            )
            os.waitpid(pid, 0)  # the shell, gone at once (on the ingestor's thread)
        except OSError as exc:
            self.failed = f"cannot start the ingestion process: {exc.strerror or exc}"
            return
        if self._first_start is None:
            self._first_start = time.monotonic()

    def _check_starts(self) -> None:
        """Nobody reads the FIFO: if processes were started for GIVE_UP_AFTER seconds
        and none came to read it, it cannot run here (its log says why)."""
        first = self._first_start
        if first is not None and time.monotonic() - first > GIVE_UP_AFTER:
            self.failed = (
                f"the ingestion process did not start in {GIVE_UP_AFTER:.0f} s "
                f"(see {self.folder / LOG_FILE})"
            )

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
