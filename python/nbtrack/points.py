"""A run's metric points, durable the moment ``log_metric`` returns.

Points go straight into a shared memory mapping (``MAP_SHARED``) of the run's
``<run_id>.points`` file: a store into such a mapping is in the kernel's page cache
at once, and the page cache outlives the process, so a SIGKILL (the out-of-memory
killer, a crashed kernel) loses no point whose call returned. Only a machine crash
needs ``fsync``, as for any file. A point costs a few memory stores, no system call,
so ``log_metric`` stays well above a million points a second.

The file is a sequence of 32-byte records, ``i64 key | i64 step | f64 value | f64 ts``,
where ``key`` is the series' index + 1 (the names are events in the run's spool,
written before the first point of the series). ``key`` is stored last: a record
whose key is 0 was never completed. The file appears with the first point and grows
by windows (64 KiB, doubling up to 4 MiB, so a run of ten points takes 64 KiB),
each reserved with ``posix_fallocate`` first: a full disk is an ``OSError`` at the
reservation, never a ``SIGBUS`` on a store into the mapping.

Readers (another thread or process) read the file, never the mapping: records up to
the first incomplete one while the writer lives; every complete record once it is
done or dead (a slot reserved by a call interrupted before it stored its key stays
0 and is skipped).
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORD = 32
FIRST_WINDOW = 1 << 16  # bytes: a multiple of the page size, as every window boundary
MAX_WINDOW = 1 << 22
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1


class Window:
    """One mapped window: int64 and float64 views of the same bytes, and its slot counter."""

    __slots__ = ("q", "d", "slots", "cap", "base", "_map")

    def __init__(self, buffer: Any, base: int) -> None:
        self._map = buffer
        view = memoryview(buffer)
        self.q: Any = view.cast("q")  # (in a forked child: a ``_Handing`` of it)
        self.d = view.cast("d")
        self.slots = itertools.count()
        self.cap = len(buffer) // RECORD  # records in this window
        self.base = base  # index of the window's first record in the whole file


_logs: weakref.WeakSet[PointLog] = weakref.WeakSet()


class PointLog:
    """The writer's side of ``<run_id>.points``. Thread-safe.

    A forked child (a ``fork`` Pool, a DataLoader worker) shares the mapping but not
    the slot counters: its points overwrote the parent's. So in a child every point is
    handed to ``hand`` (the run's spool) instead, in a window of one point that hands
    itself as its key is stored: before the call returns, since a child often leaves by
    ``os._exit`` or a signal (a Pool's ``terminate``), and no exit handler runs then.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.child = False
        self.hand: Callable[[Window], None] | None = None
        _logs.add(self)
        self._lock = threading.Lock()
        self._fd = -1
        self._closed = False
        self._next_base = 0
        self._size = FIRST_WINDOW
        # Windows that could not be put on disk (a full disk): kept in memory, in order,
        # until ``spill`` manages to write them.
        self.unspooled: list[Window] = []
        self.error: OSError | None = None
        self.window = Window(bytearray(0), 0)  # full from the start: the first point maps one

    def _new_window(self) -> Window:
        base, size = self._next_base, self._size
        self._next_base += size // RECORD
        self._size = min(size * 2, MAX_WINDOW)
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.posix_fallocate(self._fd, base * RECORD, size)
            return Window(mmap.mmap(self._fd, size, offset=base * RECORD), base)
        except OSError as exc:
            # No room (or no file): the points still count, in memory, and reach the
            # file when there is room again (``spill``). Durable against a kill only then.
            self.error = exc
            self._drop_if_empty()
            win = Window(bytearray(size), base)
            self.unspooled.append(win)
            return win

    def roll(self, full: Window) -> Window:
        """The window after ``full`` (called by the one logging call that found it full)."""
        with self._lock:
            if self.window is full:
                if self._closed:  # (a point logged into a stored run: it goes nowhere)
                    self.window = Window(bytearray(FIRST_WINDOW), 0)
                elif self.child:  # (``full`` handed itself, or holds no complete point)
                    self.window = self._child_window()
                else:
                    self.window = self._new_window()
            return self.window

    def _forked(self) -> None:
        self._lock = threading.Lock()  # (another thread of the parent may have held it)
        self.child, self._fd, self.unspooled = True, -1, []
        self.window = Window(bytearray(0), 0)

    def _child_window(self) -> Window:
        win = Window(bytearray(RECORD), 0)
        win.q = _Handing(win.q, lambda: self._hand(win))
        return win

    def _hand(self, win: Window) -> None:
        if self.hand is not None:
            self.hand(win)

    def spill(self, *, final: bool = False) -> bool:
        """Write windows kept in memory into the file; True when none is left.

        The window being logged into is written only when ``final`` (no call logs
        any more): a point stored into it during the copy would be lost.
        """
        with self._lock:
            try:
                for win in list(self.unspooled):
                    if win is self.window and not final:
                        continue
                    if self._fd < 0:
                        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                    os.posix_fallocate(self._fd, win.base * RECORD, len(win.q) * 8)
                    os.pwrite(self._fd, win.q.tobytes(), win.base * RECORD)
                    self.unspooled.remove(win)
                if final and self._fd >= 0:
                    self._relink()
            except OSError as exc:
                self.error = exc
                self._drop_if_empty()
                return False
            if not self.unspooled:
                self.error = None
            return not self.unspooled

    def _relink(self) -> None:
        # Ingestion reads the file by name: one deleted or replaced meanwhile (a cleanup
        # script sweeping ``*.points``) is put back; every point is in the one held open.
        self._fd = put_back(self._fd, self.path)

    def _drop_if_empty(self) -> None:
        # A file that never got a byte is not left behind (a full disk at the first point).
        if self._fd >= 0 and os.fstat(self._fd).st_size == 0:
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def close(self) -> None:
        """Close the file and let go of its mapping: the mapping holds a descriptor of
        its own, and a writer kept alive (a user's list of runs, a pending callback)
        must not keep one file per run open."""
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if not self.child:
                self.window = Window(bytearray(0), 0)


def put_back(fd: int, path: Path, flags: int = os.O_RDWR) -> int:
    """Copy the file open as ``fd`` back under ``path`` when that name no longer leads
    to it (deleted or replaced while its writer lives); returns the descriptor to go on
    with, opened with ``flags`` (``fd`` itself when nothing was to be done, or could be).
    """
    if fd < 0:
        return fd
    held = os.fstat(fd)
    try:
        named = os.stat(path)
        if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            return fd
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.back")
    try:
        # Through /proc: the writer's descriptor may be write-only (a spool's).
        src = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                while data := os.read(src, 1 << 22):
                    os.write(out, data)
            finally:
                os.close(out)
        finally:
            os.close(src)
        os.replace(tmp, path)
        fresh = os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return fd
    os.close(fd)
    return fresh


class _Handing:
    """A child's window's int64 view: storing the key (the record's last store, at
    index 0 of a one-record window) hands the point over at once."""

    __slots__ = ("view", "done")

    def __init__(self, view: memoryview, done: Callable[[], None]) -> None:
        self.view, self.done = view, done

    def __getitem__(self, index: int) -> int:
        return int(self.view[index])

    def __setitem__(self, index: int, value: int) -> None:
        self.view[index] = value
        if index == 0:
            self.done()


def _after_fork() -> None:
    for log in list(_logs):
        log._forked()


os.register_at_fork(after_in_child=_after_fork)


def read_points(
    path: Path, start: int, *, final: bool, limit: int | None = None
) -> tuple[Any, int, bool]:
    """Complete records from record ``start`` on (a numpy structured array), the next
    start, and whether ``limit`` cut the read short.

    Live (``final`` false): up to the first incomplete record. Final (the writer is
    done or dead): every complete record, incomplete ones skipped. ``limit`` bounds
    the number of records read (a bounded ingestion slice).
    """
    import numpy as np

    dtype = np.dtype([("key", "<i8"), ("step", "<i8"), ("value", "<f8"), ("ts", "<f8")])
    want = -1 if limit is None else limit * RECORD
    try:
        with open(path, "rb") as fh:
            fh.seek(start * RECORD)
            # Most runs log a few points into a 64 KiB window: read a page first, the
            # rest only if the page is full of complete records.
            data = fh.read(4096 if want < 0 or want > 4096 else want)
            if len(data) == 4096 and data[-RECORD : -RECORD + 8] != bytes(8) and want != 4096:
                data += fh.read(-1 if want < 0 else want - 4096)
    except FileNotFoundError:
        return np.zeros(0, dtype), start, False
    n = len(data) // RECORD
    more = limit is not None and n == limit
    recs = np.frombuffer(data, dtype, count=n)
    done = recs["key"] > 0
    if final:
        return recs[done], start + n, more
    incomplete = np.flatnonzero(~done)
    upto = int(incomplete[0]) if incomplete.size else n
    return recs[:upto], start + upto, more
