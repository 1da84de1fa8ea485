"""Short connections to one DuckDB file, taken in turn by threads and processes.

DuckDB lets one process at a time hold the file open for writing, and while it
does, no other process can open it at all. So every access is a short
connect → work → close, serialized inside a process by one lock per file and
across nbtrack processes by a lock on a side file (``runs.duckdb.lock``, see
``_Turn``); other programs holding the file are retried with jittered exponential
backoff. Nothing keeps the file open between calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from .. import settings
from ..duckdb_config import connect_duckdb
from ..exceptions import NotAStoreError, StoreBusyError, StoreVersionError
from . import integrity, schema

BACKGROUND_PATIENCE = 1.0  # seconds a background ingester gives way to waiting readers

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()
_turns: dict[str, _Turn] = {}


def _lock_for(path: Path) -> threading.RLock:
    with _process_locks_guard:
        return _process_locks.setdefault(str(path), threading.RLock())


class _Turn:
    """This process's turn at one store file, among nbtrack processes.

    DuckDB's lock can only be retried, and a failed ``duckdb.connect`` costs
    milliseconds, so a process listing runs in a loop got the file nearly every
    time and writers waited past any timeout. A lock on a side file is cheap to
    poll, so a waiter takes its turn in the short gap between another process's
    connections. POSIX locks (``lockf``), not ``flock``: a forked child does not
    inherit them. Re-entrant; used with the per-process lock of the file held.

    Readers first: byte 0 of the side file is the turn; a foreground caller (a
    reader, a user's command) holds a shared lock on byte 1 while it waits, and a
    background ingester does not compete while anyone does, for up to
    ``BACKGROUND_PATIENCE`` seconds (then it queues as a reader would, or a reader in a
    tight loop would starve it). So a reader waits for about one bounded transaction,
    never for a queue of ingesters.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self.depth = 0
        self.fd = -1

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
        deadline = begin + timeout
        waiting = False
        try:
            while True:
                if background and time.monotonic() - begin > BACKGROUND_PATIENCE:
                    background = False  # readers in a tight loop must not starve it
                if not background and not waiting:
                    with contextlib.suppress(OSError):
                        fcntl.lockf(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 1)
                        waiting = True
                if background and self._readers_waiting():
                    pass
                else:
                    try:
                        fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
                        return
                    except OSError:
                        pass
                if time.monotonic() >= deadline:
                    self.release()
                    raise StoreBusyError(
                        f"{self.path.with_suffix('')} stayed busy with other nbtrack processes "
                        f"for {timeout:.0f} s (set {settings.LOCK_TIMEOUT.name} to wait longer)"
                    ) from None
                time.sleep(0.002 if background else 0.0005)
        finally:
            if waiting and self.fd >= 0:
                with contextlib.suppress(OSError):
                    fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 1)

    def _readers_waiting(self) -> bool:
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 1)
        except OSError:
            return True
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, 1)
        return False

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd >= 0:
            os.close(self.fd)  # drops the lock
            self.fd = -1


def _turn_for(path: Path) -> _Turn:
    with _process_locks_guard:
        return _turns.setdefault(str(path), _Turn(path))


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


class Connection:
    """Short-lived connections to one ``runs.duckdb`` file, schema checked first."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self._lock = _lock_for(self.path)
        self._turn = _turn_for(self.path)
        self.lock_timeout = settings.lock_timeout()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this store's turn across several connections (a reader's catch-up and
        its read), so nobody slips in between them."""
        with self._lock:
            self._turn.acquire(self.lock_timeout)
            try:
                yield
            finally:
                self._turn.release()

    @contextmanager
    def connect(
        self, *, safe: bool = False, read_only: bool = False, background: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection, after the files and the schema were checked.

        ``safe`` turns off DuckDB's file access (for SQL that arrives over HTTP);
        ``read_only`` opens the file so that nothing can change it; ``background``:
        wait while a foreground caller waits (see ``_Turn``). Waits for other
        processes holding the file, up to the lock timeout. A DuckDB error that no
        caller turned into its own (a damaged block, a short read) becomes one
        ``StoreError`` line here.
        """
        with self._lock:
            self._turn.acquire(self.lock_timeout, background=background)
            try:
                integrity.check_files(self.path)
                try:
                    config = {"enable_external_access": False} if safe else {}
                    # The first connection of a process checks the schema, and is kept
                    # when it is the kind asked for.
                    checked = self._ensure_schema(keep=not config and not read_only)
                    con = checked or self._open(config, read_only=read_only)
                    try:
                        yield con
                    finally:
                        con.close()
                except duckdb.Error as exc:
                    raise integrity.damaged(self.path, exc) from exc
            finally:
                self._turn.release()

    @contextmanager
    def transaction(self, *, background: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect(background=background) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open(
        self, config: dict[str, Any] | None = None, read_only: bool = False
    ) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                return connect_duckdb(str(self.path), read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if _is_lock_error(exc):
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"{self.path} stayed locked by another process for "
                            f"{self.lock_timeout:.0f} s (set {settings.LOCK_TIMEOUT.name} to wait longer)"
                        ) from exc
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.1)
                    continue
                if "not a valid DuckDB database file" in str(exc):
                    raise NotAStoreError(
                        f"{self.path} is not an nbtrack store ({integrity.first_line(exc)}); "
                        f"it was left untouched; {integrity.DOCTOR}"
                    ) from exc
                raise integrity.damaged(self.path, exc) from exc
            except duckdb.SerializationException as exc:  # written by a newer DuckDB
                raise StoreVersionError(
                    f"cannot open {self.path}: {integrity.first_line(exc)}"
                ) from exc
            except duckdb.Error as exc:
                raise integrity.damaged(self.path, exc) from exc

    def _ensure_schema(self, keep: bool = False) -> duckdb.DuckDBPyConnection | None:
        return schema.ensure(self.path, self._open, keep=keep)
