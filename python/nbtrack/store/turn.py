"""The store's turn among nbtrack processes: first come, first served, readers first.

DuckDB lets one process at a time open the file, and its own lock can only be
retried: whoever retries at the right moment wins, so a reader could wait behind a
stream of writers for minutes. nbtrack processes queue on a side file instead
(``runs.duckdb.lock``), with POSIX record locks (``lockf``: a process that dies
drops them, a forked child does not inherit them) on single bytes:

- byte 0 guards the ticket counter (the file's first 8 bytes);
- byte 2 is the turn itself: held by the one process at the store;
- each waiter holds the byte of its ticket, ``FOREGROUND + t`` for a caller someone
  waits on (a reader, a command), ``BACKGROUND + t`` for a background ingester.

A foreground waiter with ticket ``t`` tries for the turn once no foreground ticket
before it is held: it waits for the holder and for earlier readers, never for
background ingesters queued before it. A background waiter tries once no earlier
ticket of any kind is held and no reader waits at all; after ``BACKGROUND_PATIENCE``
it stops giving way to later readers (or readers polling without pause would
starve it). Tickets are tested as ranges (``lockf`` of ``[FOREGROUND, FOREGROUND+t)``
fails while any byte in it is held), so a waiter that gives up or dies leaves no gap
to repair. Holders keep their turn short (bounded slices) and pass it on when
someone waits (``others_waiting``). DuckDB's own lock stays the guard of the file:
this queue only decides who tries first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import threading
import time
from pathlib import Path

from .. import settings
from ..exceptions import StoreBusyError

BACKGROUND_PATIENCE = 1.0  # seconds a background ingester gives way to later readers
GUARD, TURN = 0, 2  # bytes of the lock file: the ticket counter's guard, the turn
FOREGROUND = 1 << 40  # byte of foreground ticket 0
BACKGROUND = 1 << 41  # byte of background ticket 0
POLL_MIN, POLL_MAX = 0.0005, 0.005  # seconds between looks at the queue
STOPPED_LOOK = 0.5  # seconds between looks for a stopped process ahead in the queue

_stopping = threading.Event()


def stop_waiting() -> None:
    """Make every wait for a turn in this process fail at once (the process is stopping)."""
    _stopping.set()


SPAN = FOREGROUND  # tickets of one kind: [base, base + SPAN)


def _free(fd: int, start: int, length: int) -> bool:
    """Whether no other process holds a byte of ``[start, start+length)``.

    Never called on a range holding one of this process's own locks: the test lock
    and its removal would change them."""
    if length <= 0:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, length, start)
    except OSError:
        return False
    fcntl.lockf(fd, fcntl.LOCK_UN, length, start)
    return True


def _try(fd: int, byte: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
    except OSError:
        return False
    return True


def holder(fd: int, start: int, length: int) -> int:
    """The pid of a process holding a lock on a byte of ``[start, start+length)``, 0 if
    none (``F_GETLK``; Linux's ``struct flock``: two shorts, two 64-bit offsets, a pid)."""
    if length <= 0 or not sys.platform.startswith("linux"):
        return 0  # (another system's struct flock is laid out otherwise: no guess)
    query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return 0
    kind, _, _, _, pid = struct.unpack("hhqqi4x", answer)
    return pid if kind != fcntl.F_UNLCK else 0


def stopped(pid: int) -> bool:
    """Whether ``pid`` is stopped by a signal or a debugger (alive, running nothing)."""
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except psutil.Error:
        return False


def process_name(pid: int) -> str:
    """The command a process runs, short: ``nbtrack sql SELECT …``."""
    import psutil

    try:
        argv = psutil.Process(pid).cmdline()
    except psutil.Error:
        return "?"
    if argv and "python" in os.path.basename(argv[0]):
        argv = argv[1:]  # the interpreter says nothing; its script or module does
    # (whitespace folded: a ``python -c`` program's lines would break the one line)
    text = " ".join(" ".join([os.path.basename(argv[0]), *argv[1:]]).split()) if argv else "?"
    return text if len(text) <= 60 else text[:59] + "…"


class Turn:
    """This process's turn at one store file. Re-entrant; used by one thread at a time
    (the caller holds the file's per-process lock)."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self.depth = 0
        self.fd = -1
        self.background = False
        self.waited = 0.0  # seconds the last acquisition waited
        self.ticket = 0
        self._timeout = 0.0
        self._next_look, self._seen = 0.0, 0  # the next look for a stopped process ahead

    def acquire(self, timeout: float, *, background: bool = False) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            self.fd = -1  # a read-only folder: DuckDB's own lock still guards the file
            return
        begin = time.monotonic()
        self._timeout = timeout
        try:
            self._wait(begin, begin + timeout, background)
        except BaseException:
            self._drop()
            raise
        self.background = background
        self.waited = time.monotonic() - begin

    def _wait(self, begin: float, deadline: float, background: bool) -> None:
        delay = POLL_MIN
        self._next_look, self._seen = begin + STOPPED_LOOK, 0
        ticket = self._ticket(deadline, background)
        # Readers that came later hold a background waiter up only for its patience.
        ahead = [(TURN, 1), (FOREGROUND, ticket)]
        if background:
            ahead.append((BACKGROUND, ticket))
        base = BACKGROUND if background else FOREGROUND
        while True:
            if not background:
                ready = _free(self.fd, FOREGROUND, ticket)
            else:
                patient = time.monotonic() - begin < BACKGROUND_PATIENCE
                ready = _free(self.fd, BACKGROUND, ticket) and _free(
                    self.fd, FOREGROUND, SPAN if patient else ticket
                )
            if ready and _try(self.fd, TURN):
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, base + ticket)  # out of the queue
                self.ticket = ticket
                return
            self._check(deadline, ahead)
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)

    def _ticket(self, deadline: float, background: bool) -> int:
        """Take the next ticket and hold its byte (so later waiters see it)."""
        delay = POLL_MIN
        while not _try(self.fd, GUARD):
            self._check(deadline, [(GUARD, 1)])
            time.sleep(delay)
            delay = min(delay * 1.5, POLL_MAX)
        try:
            raw = os.pread(self.fd, 8, 0)
            ticket = int.from_bytes(raw, "little") if len(raw) == 8 else 0
            # Tickets below 2**40 keep the two ranges apart; the counter wraps long after
            # any waiter of the old range is gone.
            ticket %= FOREGROUND
            # Another process's look at the queue (``_free`` over a whole span) holds a
            # shared lock on this byte for an instant: wait it out, never fail on it.
            byte = (BACKGROUND if background else FOREGROUND) + ticket
            while not _try(self.fd, byte):
                self._check(deadline, [(byte, 1)])
                time.sleep(POLL_MIN)
            os.pwrite(self.fd, (ticket + 1).to_bytes(8, "little"), 0)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, GUARD)
        return ticket

    def _check(self, deadline: float, ahead: list[tuple[int, int]]) -> None:
        """Fail when nbtrack stops, the wait reached ``deadline``, or a process holding a
        byte of ``ahead`` is stopped (see ``_stopped_ahead``)."""
        if time.monotonic() >= self._next_look:
            self._next_look = time.monotonic() + STOPPED_LOOK
            self._seen = self._stopped_ahead(ahead, self._seen)
        if _stopping.is_set():
            raise StoreBusyError(f"{self.path.with_suffix('')}: nbtrack is stopping")
        if time.monotonic() >= deadline:
            raise StoreBusyError(
                f"{self.path.with_suffix('')} stayed busy with other nbtrack processes "
                f"for {self._timeout:.0f} s (set {settings.LOCK_TIMEOUT.name} to wait longer)"
            )

    def _stopped_ahead(self, ahead: list[tuple[int, int]], seen: int) -> int:
        """Fail when a process ahead (the holder, an earlier waiter, or one stopped while
        it took a ticket or looked at the queue, holding those bytes) was found stopped
        (Ctrl-Z, SIGSTOP) on two looks in a row: it keeps its place until resumed, and
        everyone behind it would wait out the lock timeout blaming "busy". Returns the
        stopped process seen this look, 0 when none."""
        for start, length in ahead:
            pid = holder(self.fd, start, length)
            if pid and stopped(pid):
                if pid == seen:
                    where = "holds" if start == TURN else "waits ahead of this one for"
                    raise StoreBusyError(
                        f"{self.path.with_suffix('')}: process {pid} ({process_name(pid)}) {where} "
                        f"the store and is stopped (Ctrl-Z or SIGSTOP): resume it (`fg` in "
                        f"its shell, or `kill -CONT {pid}`) or end it"
                    )
                return pid
        return 0

    def others_waiting(self) -> bool:
        """Whether another process waits for the turn (the holder should pass it on)."""
        if self.fd < 0:
            return False
        return not (_free(self.fd, FOREGROUND, SPAN) and _free(self.fd, BACKGROUND, SPAN))

    def readers_waiting(self) -> bool:
        """Whether a foreground caller of another process waits for the turn."""
        return self.fd >= 0 and not _free(self.fd, FOREGROUND, SPAN)

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0:
            self._drop()

    def _drop(self) -> None:
        self.depth = 0
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # drops every lock this process holds on the file
            self.fd = -1
