"""Connections to one DuckDB file, taken in turn by threads and processes.

DuckDB lets one process at a time hold the file open for writing, and while it
does, no other process can open it at all. So every access is a short turn at the
file: serialized inside a process by one lock per file, across nbtrack processes by
a first-come-first-served queue with readers first (``turn.py``), and retried with
jittered exponential backoff against other programs holding it. Nothing keeps the
file open between turns.

Opening a DuckDB database costs ~20 ms of CPU (a new instance: every built-in
function registered), more than most reads. So each process keeps one in-memory
DuckDB instance per store and, for a turn, ``ATTACH``-es the file (~2 ms) and
``DETACH``-es it at the end of the turn (which checkpoints and releases DuckDB's lock,
as a close did; a reader whose catch-up wrote leaves the checkpoint to the store's
ingestion process, see ``turn``, and an ingester whose turn ends while a reader waits
leaves it to its own next turn, see ``_reader_first``). Everything done in one turn (a reader's catch-up and its read, an
ingester's slices) shares that one attachment. Queries that arrive over HTTP
(``safe``) use a second instance with external access off, allowed only the store's
own files.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from .. import settings
from ..duckdb_config import connect_duckdb, keep_forever
from ..exceptions import NotAStoreError, StoreBusyError, StoreError, StoreVersionError
from . import integrity, schema
from .turn import BACKGROUND_PATIENCE, Turn, process_name, stop_waiting

__all__ = ["BACKGROUND_PATIENCE", "Connection", "stop"]

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()
_turns: dict[str, Turn] = {}
_attachments: dict[str, _Attachment] = {}
_HOLDER = re.compile(r"\(PID (\d+)\)")  # in DuckDB's "Conflicting lock is held in …"
NOTICE_AFTER = 2.0  # seconds of waiting for another program before saying whom


def _forget_after_fork() -> None:
    # A forked child inherits none of the parent's POSIX locks, may inherit a thread
    # lock held by another thread, and must not touch the parent's DuckDB instances
    # (their threads did not come along): it starts with none of them.
    global _process_locks_guard
    _process_locks_guard = threading.Lock()
    _process_locks.clear()
    _turns.clear()
    for attachment in _attachments.values():
        keep_forever(attachment)
    _attachments.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _lock_for(path: Path) -> threading.RLock:
    with _process_locks_guard:
        return _process_locks.setdefault(str(path), threading.RLock())


def _turn_for(path: Path) -> Turn:
    with _process_locks_guard:
        return _turns.setdefault(str(path), Turn(path))


def _attachment_for(path: Path) -> _Attachment:
    with _process_locks_guard:
        return _attachments.setdefault(str(path), _Attachment(path))


def stop() -> None:
    """The process is stopping (a server got SIGTERM): waits for the store fail at once
    and queries running now are interrupted, so no thread holds up the exit."""
    stop_waiting()
    with _process_locks_guard:
        attachments = list(_attachments.values())
    for a in attachments:
        a.interrupt()


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: Exception) -> str:
    """Who holds the file, from DuckDB's lock error: ``process 12 (python -c …)``."""
    found = _HOLDER.search(str(exc))
    return f"process {found[1]} ({process_name(int(found[1]))})" if found else "another process"


class _Attachment:
    """The store file attached to this process's DuckDB instance for one turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.alias = path.stem or "store"
        self._bases: dict[bool, duckdb.DuckDBPyConnection] = {}  # safe -> instance
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.mode: tuple[bool, bool] | None = None  # (safe, read_only) of the attachment
        # False for a turn whose writes stay in the write-ahead log at the detach: the
        # store's ingestion process checkpoints them (see ``Connection.turn``).
        self.checkpoint = True

    def _base(self, safe: bool) -> duckdb.DuckDBPyConnection:
        base = self._bases.get(safe)
        if base is None:
            base = connect_duckdb()
            # Spilled intermediates go where DuckDB puts them for a file database.
            base.execute("SET temp_directory = ?", [str(self.path) + ".tmp"])
            if safe:
                files = [str(f) for f in integrity.store_files(self.path)]
                base.execute("SET allowed_paths = ?", [files])
                base.execute("SET enable_external_access = false")
            self._bases[safe] = base
        return base

    def prepare(self, safe: bool) -> None:
        """Make the DuckDB instance before the turn: its start (~20 ms, far more on a
        starved machine) is then not spent while other processes wait for the file."""
        if safe not in self._bases:
            self._base(safe)

    def get(self, *, safe: bool, read_only: bool) -> duckdb.DuckDBPyConnection:
        """The attached store (attached now if it is not, or not in this mode)."""
        if self.cursor is not None and self.mode == (safe, read_only):
            return self.cursor
        self.detach()
        cursor = self._base(safe).cursor()
        try:
            quoted = str(self.path).replace("'", "''")
            alias = '"' + self.alias.replace('"', '""') + '"'
            cursor.execute(f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
            cursor.execute(f"USE {alias}")
        except BaseException:
            cursor.close()
            self._forget(safe)
            raise
        self.cursor, self.mode = cursor, (safe, read_only)
        return cursor

    def detach(self) -> None:
        """Checkpoint (unless ``checkpoint`` is off) and let go of the file (DuckDB's
        lock with it)."""
        cursor, mode = self.cursor, self.mode
        if cursor is None or mode is None:
            return
        self.cursor = self.mode = None
        try:
            with suppress(duckdb.Error):
                cursor.execute("ROLLBACK")  # a transaction left open by an error
            if not self.checkpoint:  # (a setting of this cursor only)
                cursor.execute("SET checkpoint_on_detach = 'DISABLED'")
            cursor.execute("USE memory")
            cursor.execute('DETACH "' + self.alias.replace('"', '""') + '"')
        except BaseException:
            self._forget(mode[0])  # closing the instance lets go of the file in any case
            raise
        finally:
            cursor.close()

    def _forget(self, safe: bool) -> None:
        base = self._bases.pop(safe, None)
        if base is not None:
            with suppress(duckdb.Error):
                base.close()

    def interrupt(self) -> None:
        cursor = self.cursor
        if cursor is not None:
            with suppress(duckdb.Error):
                cursor.interrupt()


class Connection:
    """Turns at one ``runs.duckdb`` file, schema checked first."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self.lock_timeout = settings.lock_timeout()
        if not str(self.path).isascii():
            try:
                str(self.path).encode()
            except UnicodeEncodeError:  # DuckDB opens UTF-8 paths only (else a traceback)
                raw = str(self.path).encode("utf-8", "backslashreplace").decode()
                raise StoreError(
                    f"the store path {raw} is not UTF-8 text, which DuckDB cannot open: "
                    f"rename the folder, or set {settings.STORE.name} to a UTF-8 path"
                ) from None

    # Looked up per use, not kept: a forked child gets fresh ones (``_forget_after_fork``).
    @property
    def _lock(self) -> threading.RLock:
        return _lock_for(self.path)

    @property
    def _turn(self) -> Turn:
        return _turn_for(self.path)

    @property
    def _attached(self) -> _Attachment:
        return _attachment_for(self.path)

    @contextmanager
    def turn(self, *, background: bool = False, checkpoint: bool = True) -> Iterator[None]:
        """Hold this store's turn across several connections (a reader's catch-up and
        its read, an ingester's slices), so nobody slips in between them.

        ``checkpoint=False``: what the turn writes stays in the write-ahead log when it
        ends (the caller has the store's ingestion process checkpoint it: a checkpoint
        rewrites whole row groups and indexes, ~50-80 ms however little was written)."""
        with self._lock:
            self._attached.prepare(False)
            self._acquire(background)
            outer = self._turn.depth == 1
            if outer:
                self._attached.checkpoint = checkpoint
            try:
                yield
            finally:
                if outer:
                    self._reader_first()
                try:
                    self._release()
                finally:
                    if outer:
                        self._attached.checkpoint = True

    def others_waiting(self) -> bool:
        """Whether another process waits for the turn this thread holds."""
        return self._turn.others_waiting()

    def readers_waiting(self) -> bool:
        """Whether a reader (a foreground caller) of another process waits for the turn
        this thread holds: a background ingester stops reading and passes it on."""
        return self._turn.readers_waiting()

    def pass_turn(self) -> None:
        """Between two slices of work: if another process waits, let it go first
        (the file is checkpointed and let go), then queue again."""
        with self._lock:
            if self._turn.depth != 1 or not self._turn.others_waiting():
                return
            background, checkpoint = self._turn.background, self._attached.checkpoint
            self._reader_first()
            try:
                self._release()
            finally:
                self._attached.checkpoint = checkpoint
            self._acquire(background)

    def _reader_first(self) -> None:
        """An ingester's turn ends while a reader of another process waits: the reader
        gets the store now, not after a checkpoint it does not need (~50-80 ms of a
        10,000-run store; bench_sustained.py: the reader waited 57 ms of its 223). What
        the ingester wrote stays in the write-ahead log; it checkpoints in a turn of its
        own (ingestd's round), which queues behind the reader."""
        if self._turn.background and self._turn.readers_waiting():
            self._attached.checkpoint = False

    def _acquire(self, background: bool) -> None:
        self._turn.acquire(self.lock_timeout, background=background)

    def _release(self) -> None:
        try:
            if self._turn.depth == 1:
                self._attached.detach()
        except duckdb.Error as exc:
            # The detach's checkpoint on a full disk, say: what is written stays in the
            # write-ahead log, and the error is a line like any other of the store's.
            raise integrity.damaged(self.path, exc) from exc
        finally:
            self._turn.release()

    @contextmanager
    def connect(
        self, *, safe: bool = False, read_only: bool = False, background: bool = False
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the store for the length of the block, after the files and
        the schema were checked.

        ``safe`` turns off DuckDB's file access (for SQL that arrives over HTTP);
        ``read_only`` attaches the file so that nothing can change it; ``background``:
        queue behind readers (see ``turn``). Waits for other processes holding the
        file, up to the lock timeout. A DuckDB error that no caller turned into its own
        (a damaged block, a short read) becomes one ``StoreError`` line here.
        """
        with self._lock:
            self._attached.prepare(safe)
            self._acquire(background)
            try:
                integrity.check_files(self.path)
                try:
                    yield self._checked_attach(safe=safe, read_only=read_only)
                except duckdb.Error as exc:
                    raise integrity.damaged(self.path, exc) from exc
            finally:
                self._release()

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

    def _checked_attach(self, *, safe: bool, read_only: bool) -> duckdb.DuckDBPyConnection:
        """The attached store, its schema checked: on the attachment itself when the
        file is at this version (one DuckDB instance per command, not two), else by
        ``schema.ensure`` (create, upgrade or refuse) on a connection of its own."""
        if not schema.checked(self.path) and integrity.is_duckdb_file(self.path):
            con = self._attach(safe=safe, read_only=read_only)
            if schema.current(self.path, con):
                return con
            self._attached.detach()
        self._ensure_schema()
        return self._attach(safe=safe, read_only=read_only)

    def _attach(self, *, safe: bool, read_only: bool) -> duckdb.DuckDBPyConnection:
        return self._retrying(lambda: self._attached.get(safe=safe, read_only=read_only))

    def _open(
        self, config: dict[str, Any] | None = None, read_only: bool = False
    ) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the file (the schema check, once per process)."""
        return self._retrying(
            lambda: connect_duckdb(str(self.path), read_only=read_only, config=config)
        )

    def _retrying(self, open_: Any) -> duckdb.DuckDBPyConnection:
        # Another program holding the file (a notebook's own `duckdb.connect`) is named
        # once it held it for a moment, and in the error: before, a command waited a
        # silent minute and blamed "another process", leaving the user to guess which.
        notice = time.monotonic() + NOTICE_AFTER
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                con: duckdb.DuckDBPyConnection = open_()
                return con
            except duckdb.IOException as exc:
                if _is_lock_error(exc):
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"{self.path} stayed locked by {_holder(exc)} for "
                            f"{self.lock_timeout:.0f} s: close its connection to the file or "
                            f"end it (set {settings.LOCK_TIMEOUT.name} to wait longer)"
                        ) from exc
                    if time.monotonic() >= notice:
                        notice = float("inf")  # (said once)
                        logging.getLogger("nbtrack").warning(
                            "nbtrack: %s holds %s open; waiting up to %.0f s for it to close it",
                            _holder(exc),
                            self.path,
                            self.lock_timeout,
                        )
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
