"""Moving spooled runs into DuckDB, in the background, in bounded transactions.

A ``RunWriter`` appends every event to its run's spool and every metric point to
its point log at once; the store's one ingestion process (``ingestd``) moves them
into the store, so neither the ~20-40 ms a DuckDB write costs nor its CPU is on a
kernel's time. A kernel's ``Ingestor`` only makes sure that process runs (``Link``:
a byte written to its FIFO, which fails when nobody reads it), tells it when a run
is sealed, and writes what a full disk held back in memory. With
``NBTRACK_INGEST=thread``, or when the process cannot start, the ``Ingestor``'s
thread ingests its own runs as before. Each transaction holds at most ``SLICE_RUNS``
runs, ``SLICE_POINTS`` points and ``SLICE_SECONDS`` of reading; a round keeps the
store's turn from slice to slice while nobody else waits and passes it on between
slices when someone does, so nobody waits long behind it (``ingest_round``, the
daemon's and the thread's). This module knows writers only through the small
``Spooled`` protocol, so it sits below ``tracking`` (which holds the writers and
the fluent API).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import settings
from .ingestlink import KICK, PROBE, Link
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
# Under plain papermill or ``jupyter execute`` the ingestion process starts at exit or
# after this many seconds: a short notebook pays neither its start (~0.3 s of CPU) nor
# its rounds (~10 ms of CPU a cell) beside its cells. See ``Ingestor.defer``.
HEADLESS_DEFER = 30.0


class SpoolFile(Protocol):
    path: Path

    @property
    def on_disk(self) -> bool: ...


class Spooled(Protocol):
    """What the ingestor needs of a run being recorded (``tracking.RunWriter``)."""

    run_id: str
    client: Client
    finished: bool
    sealed: bool
    pending: int

    @property
    def spool(self) -> SpoolFile: ...

    def retry(self) -> bool: ...

    def close(self) -> None: ...

    def let_go(self) -> None: ...


def ingest_round(
    client: Client,
    todo: list[Spool],
    done: Callable[[list[str]], None],
    *,
    alone: float = SLICE_SECONDS_ALONE,
    hurried: bool = False,
) -> bool:
    """Ingest ``todo`` (spools of one store) in bounded slices, all in one turn at the
    store while nobody else waits; ``done`` gets each slice's runs now all in. True
    when ``MAX_SLICES`` left some of it for the next round.

    One turn for the whole round: the file is attached once, not once per slice;
    between slices the turn goes to whoever waits. ``hurried``: a reader waits for
    this round, so it queues in order as readers do, instead of giving way to them."""
    warm_up()
    with client.store_turn(background=not hurried):
        for _ in range(MAX_SLICES):
            chunk = todo[:SLICE_RUNS]
            # A short slice when someone waits for the store, a longer one (fewer
            # commits, more runs a second) when nobody does.
            seconds = SLICE_SECONDS if client.others_waiting() else alone
            complete = client.ingest_spools(
                chunk, max_points=SLICE_POINTS, max_seconds=seconds, background=True
            )
            done(complete)
            finished = set(complete)
            todo = [sp for sp in todo if sp.run_id not in finished]
            if not todo:
                return False
            client.pass_turn()
    return True


def ingest_writers(writers: Sequence[Spooled]) -> list[Spooled]:
    """Ingest the spools of runs of one store, one bounded transaction at a time;
    returns the writers that are all in (their spools removed)."""
    done: list[Spooled] = []
    live: dict[str, Spooled] = {}
    for w in writers:
        on_disk = w.retry()
        if not w.spool.path.exists():
            if on_disk:
                w.close()  # nothing left (brought in and removed by another process)
                done.append(w)
            continue
        live[w.run_id] = w
    if not live:
        return done
    # Seen before the spool is read: a run that ended (its end in the spool) with no
    # fact still being gathered is all in once what is read now is in.
    last = {w.run_id: w.finished and not w.pending and w.spool.on_disk for w in live.values()}
    todo = [Spool(w.spool.path, w.run_id, None, w.finished, False, 0.0) for w in live.values()]

    def brought_in(complete: list[str]) -> None:
        for run_id in complete:
            w = live[run_id]
            if last[run_id]:
                w.close()
                done.append(w)

    ingest_round(live[todo[0].run_id].client, todo, brought_in)
    return done


class Ingestor:
    """The one background thread per process that moves spools into DuckDB, or, with
    the ingestion process, hands sealed spools to it and retries what a full disk held."""

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
        try:
            self.threaded = settings.ingest() == "thread"
        except Exception:  # a bad value: the diagnostic mode, said in the log
            log.warning("nbtrack: %s", sys.exc_info()[1])
            self.threaded = True
        self._links: dict[str, Link] = {}
        self._pruned = 0
        self._orphaned: set[Client] = set()  # stores whose handed runs the thread recovers
        # Sealed spools handed to the process and not seen removed yet (for ``drain``).
        self._handed: dict[Path, Client] = {}
        self._deferred_until: float | None = None  # see ``defer``
        self._thread = threading.Thread(target=self._loop, name="nbtrack-ingestor", daemon=True)
        self._thread.start()
        atexit.register(self.close, 20.0)

    def link(self, db_path: Path) -> Link:
        key = str(db_path)
        with self._lock:
            found = self._links.get(key)
            if found is None:
                found = self._links[key] = Link(db_path)
            return found

    def _send(self, w: Spooled, byte: bytes) -> None:
        self._send_to(w.client.project.db_path, byte)

    def _send_to(self, db_path: Path, byte: bytes) -> None:
        if self._deferred_until is not None:
            if time.monotonic() < self._deferred_until:
                return  # the process starts later (``defer``); the spools wait for it
            self._undefer()
        lk = self.link(db_path)
        lk.send(byte)
        if lk.wanted:
            if threading.current_thread() is self._thread:
                lk.start()
            else:
                self._wake.set()  # started by the thread: a fork is not the cell's time
        if lk.failed is not None and not self.threaded:
            # The process cannot run here: this kernel ingests its runs itself.
            log.warning("nbtrack: %s; ingesting in the kernel instead", lk.failed)
            with self._lock:
                self.threaded = True
                # What was handed over is sealed: the thread's recovery brings it in.
                self._orphaned.update(self._handed.values())
                self._handed.clear()
                self._idle.clear()
            self._wake.set()

    def defer(self, seconds: float = HEADLESS_DEFER) -> None:
        """Start the ingestion process only at exit, or once ``seconds`` have passed, or
        when a caller drains: until then sealed runs wait in their spools (a reader of
        the store, in this kernel or another process, brings in what it reads)."""
        if not self.threaded:
            self._deferred_until = time.monotonic() + seconds

    def _undefer(self) -> None:
        """The deferral is over: kick the process of each store with runs handed."""
        self._deferred_until = None
        with self._lock:
            stores = {c.project.db_path for c in self._handed.values()}
        for db_path in stores:
            self._send_to(db_path, KICK)

    def prepare(self, db_path: Path) -> None:
        """A kernel is about to track runs into ``db_path``: start the store's ingestion
        process now (if it is not running), not beside the first tracked cells, whose
        time its start (~0.3 s of CPU) would share. A store not created yet waits for
        its first run."""
        if not self.threaded and db_path.parent.is_dir():
            self._send_to(db_path, PROBE)

    def add(self, writer: Spooled) -> None:
        with self._lock:
            self._writers.append(writer)
            self._idle.clear()
        if not self.threaded:
            self._send(writer, PROBE)  # starts the process now if it is not running

    def sealed(self, writer: Spooled) -> None:
        """``writer``'s spool got its last record: once all of it is on disk (a full disk
        keeps it, retried), its files are let go and it is handed to the process."""
        if not writer.retry():
            return
        if self.threaded:  # (the thread reads them by their paths, however long it waits)
            writer.let_go()
            return
        with self._lock:
            if writer not in self._writers:
                return
            self._writers.remove(writer)
            self._handed[writer.spool.path] = writer.client
            if len(self._handed) > 2 * self._pruned + 256:
                self._prune()
            if not self._writers:
                self._idle.set()
        writer.let_go()
        self._send(writer, KICK)

    def kick(self) -> None:
        if self.threaded:
            self._wake.set()

    def _loop(self) -> None:
        mark_own_thread()
        if self.threaded:
            warm_up()  # now, in this thread, not later while holding the store's turn
        while not self._stopping.is_set():
            if self._wake.wait(INGEST_INTERVAL) and self.threaded:
                # A run just ended: wait a moment so runs ending together (cells run
                # back to back, a loop of tracked calls) share one transaction.
                time.sleep(KICK_DELAY)
            self._wake.clear()
            if self.threaded:
                self._round()
            else:
                self._look()

    def _look(self) -> None:
        """With the process: write what a full disk held back, hand over what is sealed,
        and make sure the process runs while runs are going or handed ones not all in."""
        if self._deferred_until is not None and time.monotonic() >= self._deferred_until:
            self._undefer()
        with self._lock:
            writers, links = list(self._writers), list(self._links.values())
            self._prune()  # handed spools not all in yet: their process must run too
            waiting = {c.project.db_path for c in self._handed.values()}
        for lk in links:
            if lk.wanted:
                lk.start()
        waiting |= {w.client.project.db_path for w in writers if not w.sealed}
        for w in writers:
            w.retry()
            if w.sealed:
                self.sealed(w)
        for db_path in waiting:  # a process killed meanwhile is started again
            self._send_to(db_path, PROBE)

    def _prune(self) -> None:  # (called holding ``_lock``)
        self._handed = {p: c for p, c in self._handed.items() if p.exists()}
        self._pruned = len(self._handed)

    def _round(self) -> None:
        with self._one_round:
            self._round_now()

    def _round_now(self) -> None:
        with self._lock:
            writers = list(self._writers)
            orphaned = list(self._orphaned)
        for client in orphaned:
            try:
                client.recover()
            except Exception as exc:  # the next round retries
                log.debug("nbtrack: could not store runs yet: %s", exc)
                continue
            with self._lock:
                self._orphaned.discard(client)
        by_store: dict[str, list[Spooled]] = {}
        for w in writers:
            by_store.setdefault(str(w.client.project.db_path), []).append(w)
        for store, group in by_store.items():
            try:
                done = ingest_writers(group)
            except Exception as exc:  # kept; the next round (or recovery) retries. Said
                # once, under the next tracked cell (``problem``), not in a log line.
                self.problems[store] = exc
                log.debug("nbtrack: could not store runs yet: %s", exc)
                continue
            self.problems.pop(store, None)
            with self._lock:
                gone = {id(w) for w in done}
                self._writers = [w for w in self._writers if id(w) not in gone]
        with self._lock:
            if not self._writers and not self._orphaned:
                self._idle.set()

    def close(self, timeout: float = 20.0) -> None:
        """At exit: with the process, nothing to wait for (it brings in what is sealed,
        and marks what was not ``crashed`` once this process is gone); in the thread,
        ingest what is pending, then stop the thread and wait for it.

        A daemon thread still inside DuckDB when the interpreter finalizes is unwound
        by force, and the C++ runtime aborts the process ("exception not rethrown").
        """
        self.at_exit(timeout)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        for lk in list(self._links.values()):
            lk.close()

    def at_exit(self, timeout: float = 20.0) -> None:
        """The process is ending: the facts still being gathered for its runs (git state,
        the saved notebook, the session code: gathered after a cell's reply) are spooled
        first, which seals those runs; then, when this thread ingests, what is pending is
        ingested; with the process, nothing more to wait for."""
        finish_background(min(timeout, 10.0))
        if self._deferred_until is not None:
            # Start the process here: the thread may not run again before the end.
            self._undefer()
            for lk in list(self._links.values()):
                if lk.wanted:
                    lk.start()
        if self.threaded:
            self.drain(timeout)

    def drain(self, timeout: float = 20.0) -> bool:
        """Ingest everything pending now (at exit, or when a caller must read its own
        runs); with the process, wait until it has brought in what this process sealed
        (a run still going is not waited for)."""
        deadline = time.monotonic() + timeout
        if self._deferred_until is not None:
            self._undefer()  # a caller waits for the runs: no more waiting for exit
        while time.monotonic() < deadline:
            if self.threaded:
                self._round()
                if self._idle.is_set():
                    return True
            else:
                self._look()  # (probes the process of each store with a run going)
                with self._lock:
                    self._prune()
                    # A run still going (a papermill notebook's own run, open until
                    # the kernel ends) is not sealed: nothing to wait for yet.
                    if not self._handed and not any(w.sealed for w in self._writers):
                        return True
                    clients = {c.project.db_path: c for c in self._handed.values()}
                for db_path in clients:
                    self._send_to(db_path, PROBE)  # (re)starts it if it is not running
                if self.threaded:
                    continue  # the process could not start: ingest here
            time.sleep(0.05)
        return False


_ingestor: Ingestor | None = None
_ingestor_lock = threading.Lock()
_own_threads: set[int] = set()
_executor: ThreadPoolExecutor | None = None
_reader: ThreadPoolExecutor | None = None


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
        _executor = _helper("nbtrack-capture")
    return _executor.submit(fn, *args)


def read_in_background(fn: Any, *args: Any) -> Future[Any]:
    """Run a store read on a helper thread of its own: a read can wait its turn behind
    other processes' writes for seconds, and the facts queued on ``background`` (which a
    kernel's exit handler waits for) must not wait behind it."""
    global _reader
    if _reader is None:
        _reader = _helper("nbtrack-read")
    return _reader.submit(fn, *args)


def _helper(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=mark_own_thread)


def finish_background(timeout: float) -> None:
    """Wait (up to ``timeout``) for the work queued on nbtrack's helper thread: a kernel
    shut down right after a cell must still spool that cell's facts."""
    if _executor is None:
        return
    # One worker: a no-op submitted now runs after everything queued before it.
    with contextlib.suppress(Exception):
        _executor.submit(lambda: None).result(timeout)


def mark_own_thread() -> None:
    _own_threads.add(threading.get_ident())


def is_own_thread() -> bool:
    """True on nbtrack's own threads (their file reads are not the user's)."""
    return threading.get_ident() in _own_threads
