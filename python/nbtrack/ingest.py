"""Moving spooled runs into DuckDB, in the background, one transaction per round.

A ``RunWriter`` appends every event to its run's spool at once; the one
``Ingestor`` thread per process moves spooled events into the store, so the
~20-40 ms a DuckDB write costs is never on a cell's critical path. This module
knows writers only through the small ``Spooled`` protocol, so it sits below
``tracking`` (which holds the writers and the fluent API).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .client import Client
    from .models import Batch

log = logging.getLogger("nbtrack")

INGEST_INTERVAL = 1.0  # seconds between background ingestions while a run is going
KICK_DELAY = 0.05  # seconds the ingestor waits after a run ends, to batch its neighbours


@dataclass
class Pending:
    """What one writer spooled since its last ingestion."""

    batch: Batch
    offset: int  # spool offset after this batch
    ended: bool  # the run's end record is in this batch or before it
    held: int  # background facts (git, snapshot) still being gathered when read
    fresh: bool  # holds something the store does not have yet


class Spooled(Protocol):
    """What the ingestor needs of a run being recorded (``tracking.RunWriter``)."""

    run_id: str
    client: Client
    finished: bool
    ingest_lock: threading.Lock

    def flush(self) -> None: ...

    def read_pending(self) -> Pending | None: ...

    def ingested(self, p: Pending) -> bool: ...


def ingest_together(writers: Sequence[Spooled]) -> list[Spooled]:
    """Ingest the spools of runs of one store in one transaction; returns those all in.

    Cells run back to back end many runs a second: one DuckDB connection for all of
    them, instead of one each, keeps the background thread's share of the GIL small.
    """
    if not writers:
        return []
    done: list[Spooled] = []
    with contextlib.ExitStack() as stack:
        for w in writers:
            stack.enter_context(w.ingest_lock)
        read: list[tuple[Spooled, Pending]] = []
        for w in writers:
            p = w.read_pending()
            if p is None:
                done.append(w)
            else:
                read.append((w, p))
        fresh = [p.batch for _, p in read if p.fresh]
        if fresh:
            writers[0].client.write_batches(fresh)
        for w, p in read:
            if w.ingested(p):
                done.append(w)
    return done


class Ingestor:
    """The one background thread per process that moves spools into DuckDB."""

    def __init__(self) -> None:
        self._writers: list[Spooled] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="nbtrack-ingestor", daemon=True)
        self._thread.start()
        atexit.register(self.drain, 20.0)

    def add(self, writer: Spooled) -> None:
        with self._lock:
            self._writers.append(writer)
            self._idle.clear()

    def kick(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        mark_own_thread()
        while True:
            if self._wake.wait(INGEST_INTERVAL):
                # A run just ended: wait a moment so runs ending together (cells run
                # back to back, a loop of tracked calls) share one transaction.
                time.sleep(KICK_DELAY)
            self._wake.clear()
            self._round()

    def _round(self) -> None:
        with self._lock:
            writers = list(self._writers)
        # Spool every run's points first: durability must not wait for a DuckDB
        # write that may be queued behind another process's lock.
        for w in writers:
            if not w.finished:
                try:
                    w.flush()
                except Exception as exc:  # a full disk, say: the points stay in memory
                    log.warning("nbtrack: could not spool run %s: %s", w.run_id[:8], exc)
        by_store: dict[str, list[Spooled]] = {}
        for w in writers:
            by_store.setdefault(str(w.client.project.db_path), []).append(w)
        for group in by_store.values():
            try:
                done = ingest_together(group)
            except Exception as exc:  # keep the spools; the next round (or recovery) retries
                ids = ", ".join(w.run_id[:8] for w in group)
                log.warning("nbtrack: could not store runs %s yet: %s", ids, exc)
                continue
            with self._lock:
                for w in done:
                    if w in self._writers:
                        self._writers.remove(w)
        with self._lock:
            if not self._writers:
                self._idle.set()

    def drain(self, timeout: float = 20.0) -> bool:
        """Ingest everything pending now (at exit, or when a caller must read its own runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._round()
            if self._idle.is_set():
                return True
            time.sleep(0.05)
        return False


_ingestor: Ingestor | None = None
_ingestor_lock = threading.Lock()
_own_threads: set[int] = set()
_executor: ThreadPoolExecutor | None = None


def ingestor() -> Ingestor:
    global _ingestor
    with _ingestor_lock:
        if _ingestor is None:
            _ingestor = Ingestor()
        return _ingestor


def background(fn: Any, *args: Any) -> Future[Any]:
    """Run ``fn`` on nbtrack's helper thread (its file reads are not the user's)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="nbtrack-capture", initializer=mark_own_thread
        )
    return _executor.submit(fn, *args)


def mark_own_thread() -> None:
    _own_threads.add(threading.get_ident())


def is_own_thread() -> bool:
    """True on nbtrack's own threads (their file reads are not the user's)."""
    return threading.get_ident() in _own_threads
