"""The store's one ingestion process: ``python -m nbtrack.ingestd <store.duckdb>``.

Started detached (its own session, stdin, stdout and stderr closed; what goes wrong
is appended to ``.nbtrack/ingestd.log``) by the first kernel with a run to ingest (``ingest.Link``),
it moves the spools of every process of this host into the store: runs going,
about once a second; sealed or ended ones as soon as a kernel kicks it (a byte on
``.nbtrack/ingestd.fifo``). It uses the same bounded slices and the same fair turn
as every ingester (``ingest.ingest_round``), so readers still come first, and it
batches the runs of all kernels into each transaction.

One per store: an exclusive ``flock`` on ``.nbtrack/ingestd.lock``, which dies with
the process. A second one started meanwhile leaves at once when the FIFO has a
reader, and otherwise (the first is on its way out, or not reading yet) waits a
moment for the lock. It exits on its own after ``IDLE_EXIT`` seconds with no spool
to ingest and no kick, closing its FIFO before its last look at the spool folder
(so a kernel that kicks it then starts a new one), and at once when its ``.nbtrack``
folder disappears. Killed, it loses nothing: what it stored is committed, the rest
is in the spools, and the next one (started by the next probe or kick of any
kernel, or by a reader's catch-up) goes on from the positions the store holds.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import stat
import sys
import time
from pathlib import Path

from .client import Client
from .ingest import INGEST_INTERVAL, ingest_round
from .ingestlink import (
    BATCH_DELAY,
    FIFO_FILE,
    HURRY,
    KICK,
    LOCK_FILE,
    LOG_FILE,
    ROUNDS_FILE,
    say_problem,
)
from .ingestlink import open_fifo as open_writer
from .project import project_at
from .spools import Spool, scan, warm_up

log = logging.getLogger("nbtrack.ingestd")

IDLE_EXIT = 5.0  # seconds with nothing to ingest before the process exits
TAKEOVER_WAIT = 5.0  # seconds a newcomer waits for the lock of one on its way out
SLICE_SECONDS_ALONE = (
    0.25  # reading per transaction while nobody waits (a reader arriving waits it out)
)
ERROR_PAUSE = 1.0, 30.0  # seconds before a failed round is retried: first, at most


def _has_reader(fifo: Path) -> bool:
    """Whether a process reads ``fifo`` (the running ingestion process does)."""
    try:
        fd = open_writer(fifo)
    except OSError:
        return False  # ENXIO: nobody reads it; ENOENT: never made
    os.close(fd)
    return True


def take_lock(folder: Path) -> int | None:
    """The store's ingestion lock (a descriptor to keep open), or None when another
    process has it and reads the FIFO."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    deadline = time.monotonic() + TAKEOVER_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            with contextlib.suppress(OSError):  # who runs (for a person, a test); a full
                os.ftruncate(fd, 0)  # disk does not stop it
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        if _has_reader(folder / FIFO_FILE) or time.monotonic() > deadline:
            os.close(fd)
            return None
        time.sleep(0.05)


def _say_rounds(fd: int, started: int, done: int) -> None:
    """This process's rounds, for readers waiting on it (``ingestlink.rounds``); a full
    disk does not stop it (readers then wait their bounded time)."""
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.pwrite(fd, f"{started} {done}\n".encode().ljust(40), 0)  # one length


def open_fifo(path: Path) -> int:
    """Our end of the FIFO: read-write, so it never reads end-of-file, and writers
    see a reader exactly while this process holds it."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            os.unlink(path)  # not ours (a file where the FIFO goes): writers would fill it
    with contextlib.suppress(FileExistsError):
        os.mkfifo(path, 0o600)
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def _fifo_replaced(fd: int, path: Path) -> bool:
    """Whether ``path`` is no longer the FIFO open as ``fd`` (deleted, or another file)."""
    try:
        named = os.lstat(path)
    except OSError:  # gone, or its folder is (the caller looks which)
        return True
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino)


def _kicked(fd: int, timeout: float, wanted: tuple[bytes, ...] = (KICK, HURRY)) -> bytes | None:
    """Wait up to ``timeout`` for one of the ``wanted`` bytes (a kick or a hurry; a hurry
    when both came); the others (probes) are read and dropped. None when none came."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            continue
        for byte in sorted(wanted, key=lambda b: b != HURRY):
            if byte in data:
                return byte


def _drain_fifo(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


class Daemon:
    """The ingestion loop of one store (see the module's docstring)."""

    def __init__(self, db_path: Path, idle: float = IDLE_EXIT) -> None:
        self.project = project_at(db_path)
        self.folder = self.project.folder
        self.idle = idle
        self.host = socket.gethostname()
        self.client = Client(self.project)
        self._folder_id = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.folder)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def folder_gone(self) -> bool:
        return self._identity() != self._folder_id

    def todo(self) -> list[Spool]:
        """This host's spools (another machine's on a shared folder are its own)."""
        return [
            sp
            for sp in scan(self.project.spool_dir)
            if sp.header is None or sp.header.get("host") == self.host
        ]

    def round(self, hurried: bool = False) -> tuple[bool, bool]:
        """One ingestion round over every spool: whether there was any, and whether
        some is left for the next round (a backlog longer than a round). ``hurried``: a
        reader waits for it (see ``ingest_round``)."""
        todo = self.todo()
        more = bool(todo) and ingest_round(
            self.client, todo, lambda done: None, alone=SLICE_SECONDS_ALONE, hurried=hurried
        )
        # A reader's catch-up left its writes in the write-ahead log for this process
        # (``catchup.reading``); a round that wrote checkpointed them already.
        self.client.checkpoint()
        return bool(todo), more

    def run(self) -> int:
        if self._folder_id is None:
            return 0
        lock = take_lock(self.folder)
        if lock is None:
            return 0  # another one runs
        fifo_path = self.folder / FIFO_FILE
        fifo = open_fifo(fifo_path)
        warm_up()  # before any turn: nobody waits for this process's imports
        # Nor for DuckDB's (~60 ms of CPU): else its first round, beside the first
        # tracked cells, imports it.
        import duckdb  # noqa: F401

        quiet_since = time.monotonic()
        started = done = 0  # rounds (said in ROUNDS_FILE: readers wait on them)
        try:
            rounds_fd = os.open(self.folder / ROUNDS_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        except OSError:
            rounds_fd = -1  # a full disk: readers wait their bounded time
        # What the last failed round said ("?": an earlier process may have said something).
        pause, said = ERROR_PAUSE[0], "?"
        hurried = False  # a reader waits for the next round
        try:
            while not self.folder_gone():
                began = time.monotonic()
                started += 1
                _say_rounds(rounds_fd, started, done)
                try:
                    busy, more = self.round(hurried)
                    if not more:
                        done = started
                        _say_rounds(rounds_fd, started, done)
                    if said:
                        say_problem(self.folder, None)
                    pause, said = ERROR_PAUSE[0], ""
                    if more:
                        continue  # a backlog: on at once (readers get turns between slices)
                except Exception as exc:  # the spools stay; the next round retries
                    if str(exc) != said:  # once per cause, not once per retry
                        log.warning("%s", exc)
                        say_problem(self.folder, str(exc))
                        said = str(exc)
                    # Not work done: a process that cannot store (a newer or damaged
                    # store) leaves once idle like any other, the problem said in its
                    # file, and the next kick starts one that tries again.
                    busy = False
                    time.sleep(pause)
                    pause = min(2 * pause, ERROR_PAUSE[1])
                now = time.monotonic()
                if busy:
                    quiet_since = now
                elif now - quiet_since >= self.idle:
                    # Close the FIFO first: a kernel kicking from now on starts a new
                    # process (which waits for this one's lock); then one last look.
                    os.close(fifo)
                    fifo = -1
                    if said or not self.todo() or self.folder_gone():
                        return 0
                    fifo = open_fifo(fifo_path)
                    quiet_since = now
                    continue
                if _fifo_replaced(fifo, fifo_path) and not self.folder_gone():
                    # Deleted or replaced (`rm .nbtrack/ingestd.*`): kernels and readers
                    # opening it by name would find no reader and start processes that
                    # wait for this one's lock. Made again (a folder that takes no new
                    # file keeps the old one); a round at once for the kicks that went
                    # to the old one.
                    with contextlib.suppress(OSError):
                        fresh = open_fifo(fifo_path)
                        os.close(fifo)
                        fifo = fresh
                        continue
                got = _kicked(fifo, INGEST_INTERVAL)
                if got == KICK:
                    # Rounds start at most BATCH_DELAY apart: runs sealed meanwhile share a
                    # transaction. A round that took that long already gathered the next
                    # batch (a stream of runs), so the next starts at once: a fixed pause
                    # after every round left ~100 runs behind a stream of 200 a second.
                    # A reader's hurry cuts the pause short.
                    got = _kicked(fifo, BATCH_DELAY - (time.monotonic() - began), (HURRY,))
                    _drain_fifo(fifo)
                hurried = got == HURRY
        finally:
            if fifo >= 0:
                os.close(fifo)
            if rounds_fd >= 0:
                os.close(rounds_fd)
            os.close(lock)  # (the lock goes with the process in any case)
        return 0


class _WithoutPandas:
    """An import finder that refuses pandas. Arrow imports pandas the first time it
    builds an array, if it can (~0.25 s of CPU: a third of this process's start, paid
    beside the notebook that started it); ingestion never needs it."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded in nbtrack's ingestion process")


def main(argv: list[str] | None = None) -> int:
    sys.meta_path.insert(0, _WithoutPandas())
    parser = argparse.ArgumentParser(prog="python -m nbtrack.ingestd", description=__doc__)
    parser.add_argument("store", type=Path, help="the store file (.nbtrack/runs.duckdb)")
    parser.add_argument("--idle", type=float, default=IDLE_EXIT, help="seconds idle before exit")
    args = parser.parse_args(argv)
    store = args.store.resolve()
    os.chdir("/")  # pin no folder of the kernel that started it (its paths are absolute)
    # The log file is made only when there is something to say (no empty file left).
    handler = logging.FileHandler(store.parent / LOG_FILE, delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s ingestd %(process)d: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    try:
        return Daemon(store, args.idle).run()
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return 0  # the store's folder went away under us: nothing left to do
        log.exception("cannot ingest %s", store)
        return 1
    except Exception:
        log.exception("cannot ingest %s", store)
        return 1


if __name__ == "__main__":
    sys.exit(main())
