"""Moving spooled runs into DuckDB, in the background, in bounded transactions.

A ``RunWriter`` appends every event to its run's spool and every metric point to
its point log at once; the one ``Ingestor`` thread per process moves them into the
store, so the ~20-40 ms a DuckDB write costs is never on a cell's critical path.
Each transaction holds at most ``SLICE_RUNS`` runs, ``SLICE_POINTS`` points and
``SLICE_SECONDS`` of reading; a round keeps the store's turn from slice to slice
while nobody else waits and passes it on between slices when someone does, so
nobody waits long behind it. This
module knows writers only through the small ``Spooled`` protocol, so it sits below
``tracking`` (which holds the writers and the fluent API).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .spools import Spool, warm_up

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("nbtrack")

INGEST_INTERVAL = 1.0  # seconds between background ingestions while a run is going
KICK_DELAY = 0.05  # seconds the ingestor waits after a run ends, to batch its neighbours
SLICE_RUNS = 200  # runs per transaction
SLICE_POINTS = 50_000  # metric points per transaction (~0.05 s of DuckDB's time)
SLICE_SECONDS = 0.1  # reading spools per transaction, so a waiting reader waits little
SLICE_SECONDS_ALONE = 0.5  # ... when nobody waits for the store
MAX_SLICES = 40  # transactions per round before the thread looks at its list again


class SpoolFile(Protocol):
    path: Path

    @property
    def on_disk(self) -> bool: ...


class Spooled(Protocol):
    """What the ingestor needs of a run being recorded (``tracking.RunWriter``)."""

    run_id: str
    client: Client
    finished: bool
    pending: int

    @property
    def spool(self) -> SpoolFile: ...

    def retry(self) -> bool: ...

    def close(self) -> None: ...


def ingest_writers(writers: Sequence[Spooled]) -> list[Spooled]:
    """Ingest the spools of runs of one store, one bounded transaction at a time;
    returns the writers that are all in (their spools removed)."""
    if not writers:
        return []
    done: list[Spooled] = []
    live = []
    for w in writers:
        on_disk = w.retry()
        if not w.spool.path.exists():
            if on_disk:
                done.append(w)  # nothing left (brought in and removed)
            continue
        live.append(w)
    if not live:
        return done
    client = live[0].client
    warm_up()
    # One turn at the store for the whole round while nobody else waits: the file is
    # attached once, not once per slice; between slices the turn goes to whoever waits.
    with client.store_turn(background=True):
        for _ in range(MAX_SLICES):
            if not live:
                break
            chunk = live[:SLICE_RUNS]
            # Seen before the spool is read: a run that ended (its end in the spool) with
            # no fact still being gathered is all in once what is read now is in.
            last = {w.run_id: w.finished and not w.pending and w.spool.on_disk for w in chunk}
            todo = [Spool(w.spool.path, w.run_id, None, w.finished, False, 0.0) for w in chunk]
            # A short slice when someone waits for the store, a longer one (fewer
            # commits, more runs a second) when nobody does.
            seconds = SLICE_SECONDS if client.others_waiting() else SLICE_SECONDS_ALONE
            complete = set(
                client.ingest_spools(
                    todo, max_points=SLICE_POINTS, max_seconds=seconds, background=True
                )
            )
            for w in chunk:
                if w.run_id in complete:
                    live.remove(w)
                    if last[w.run_id]:
                        w.close()
                        done.append(w)
            if not live:
                break
            client.pass_turn()
    return done


class Ingestor:
    """The one background thread per process that moves spools into DuckDB."""

    def __init__(self) -> None:
        self._writers: list[Spooled] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.problems: dict[str, Exception] = {}  # per store: why the last round failed
        self._stopping = threading.Event()
        # One round at a time: drain() runs rounds in its caller's thread, and a drain
        # beside the thread's own round over the same writers sliced on to MAX_SLICES
        # (40 slices, 80 DuckDB connections: ~8 s to drain 5 runs, 0.5 s alone).
        self._one_round = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="nbtrack-ingestor", daemon=True)
        self._thread.start()
        atexit.register(self.close, 20.0)

    def add(self, writer: Spooled) -> None:
        with self._lock:
            self._writers.append(writer)
            self._idle.clear()

    def kick(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        mark_own_thread()
        warm_up()  # now, in this thread, not later while holding the store's turn
        while not self._stopping.is_set():
            if self._wake.wait(INGEST_INTERVAL):
                # A run just ended: wait a moment so runs ending together (cells run
                # back to back, a loop of tracked calls) share one transaction.
                time.sleep(KICK_DELAY)
            self._wake.clear()
            self._round()

    def _round(self) -> None:
        with self._one_round:
            self._round_now()

    def _round_now(self) -> None:
        with self._lock:
            writers = list(self._writers)
        by_store: dict[str, list[Spooled]] = {}
        for w in writers:
            by_store.setdefault(str(w.client.project.db_path), []).append(w)
        for store, group in by_store.items():
            try:
                done = ingest_writers(group)
            except Exception as exc:  # keep the spools; the next round (or recovery) retries
                # Said once, under the next tracked cell (see ``problem``), not in a log
                # line that lands in whichever cell happens to be running.
                self.problems[store] = exc
                log.debug("nbtrack: could not store runs yet: %s", exc)
                continue
            self.problems.pop(store, None)
            with self._lock:
                for w in done:
                    if w in self._writers:
                        self._writers.remove(w)
        with self._lock:
            if not self._writers:
                self._idle.set()

    def close(self, timeout: float = 20.0) -> None:
        """At exit: ingest what is pending, then stop the thread and wait for it.

        A daemon thread still inside DuckDB when the interpreter finalizes is unwound
        by force, and the C++ runtime aborts the process ("exception not rethrown").
        """
        self.drain(timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

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
