"""The active run: recording a run as it happens, and the fluent ``log_*`` calls.

A ``RunWriter`` appends every event to the run's spool file at once (cheap, and
safe if the process is killed) and a single background ``Ingestor`` thread per
process moves spooled events into DuckDB, so the ~20-40 ms a DuckDB write costs is
never on a cell's critical path.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .client import Client, build_metric, build_param
from .exceptions import NbtrackError, NoActiveRunError, UsageError
from .models import DataVersion, Environment, Run
from .project import Project
from .spool import SpoolWriter, read_spool

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("nbtrack")

INGEST_INTERVAL = 1.0
KICK_DELAY = 0.05  # seconds the ingestor waits after a run ends, to batch its neighbours  # seconds between background ingestions while a run is going
FLUSH_POINTS = 200_000  # metric points buffered in memory before they are spooled


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


_env_dicts: dict[str, dict[str, Any]] = {}


def _env_dict(env: Environment) -> dict[str, Any]:
    # asdict() deep-copies hundreds of packages: once per environment, not once per cell.
    found = _env_dicts.get(env.env_id)
    if found is None:
        found = _env_dicts[env.env_id] = env.to_dict()
    return found


class RunWriter:
    """Records one run: events go to its spool at once and into DuckDB soon after.

    Example (outside a kernel, e.g. a pipeline)::

        w = RunWriter.start(project, kind="notebook", name="train", params={"lr": 0.1})
        w.log_metrics({"acc": 0.93})
        w.finish("finished")
        w.wait()  # in DuckDB now
    """

    def __init__(self, project: Project, run_id: str, spool: SpoolWriter, run: Run) -> None:
        self.project = project
        self.client = Client(project)
        self.run_id = run_id
        self.spool = spool
        self.snapshot = run  # what the run holds so far, in memory (for the summary)
        self.finished = False
        # Points as a flat list (key, value, step, ts, key, ...): one extend per
        # point, and the spool encodes each column from a C-level slice.
        self._points: list[Any] = []
        self._steps: dict[str, int] = {}
        self._offset = 0
        self._end_stored = False
        self._pending = 0  # background facts (git, snapshot) still to be spooled
        self._ingest_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()

    # ---------------------------------------------------------------- creating
    @classmethod
    def start(
        cls,
        project: Project,
        *,
        kind: str = "cell",
        name: str | None = None,
        params: dict[str, Any] | None = None,
        param_source: str = "flag",
        parent_id: str | None = None,
        rerun_of: str | None = None,
        notebook_path: str | None = None,
        environment: Environment | None = None,
        run_id: str | None = None,
        background: bool = False,
        **fields: Any,
    ) -> RunWriter:
        """Begin a run. ``background``: ingest from this process's background thread."""
        from .capture import environment as current_environment

        if kind not in ("cell", "notebook"):
            raise UsageError(f"kind must be 'cell' or 'notebook', not {kind!r}")
        run_id = run_id or uuid.uuid4().hex
        started = _now()
        nb_path = None
        if notebook_path:
            nb_path, _ = project.relative(notebook_path)
        env = environment or current_environment()
        run = Run(
            run_id=run_id,
            kind=kind,
            name=name,
            status="running",
            started_at=started.replace(tzinfo=timezone.utc),
            parent_id=parent_id,
            rerun_of=rerun_of,
            notebook_path=nb_path,
            env_id=env.env_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            environment=env,
        )
        for k, v in fields.items():
            setattr(run, k, v)
        spool = SpoolWriter(project.spool_dir / f"{run_id}.spool", run_id)
        row = {
            "run_id": run_id,
            "kind": kind,
            "name": name,
            "status": "running",
            "started_at": started.isoformat(),
            "parent_id": parent_id,
            "rerun_of": rerun_of,
            "notebook_path": nb_path,
            "env_id": env.env_id,
            "host": run.host,
            "pid": run.pid,
            **fields,
        }
        spool.event({"e": "start", "run": row, "environment": _env_dict(env)})
        writer = cls(project, run_id, spool, run)
        if params:
            writer.log_params(params, source=param_source)
        if background:
            ingestor().add(writer)
        return writer

    # ---------------------------------------------------------------- logging
    def log_params(self, params: dict[str, Any], source: str = "flag") -> None:
        rows = [build_param(k, v, source) for k, v in params.items()]
        self.spool.event({"e": "params", "params": rows})
        for k, v in params.items():
            self.snapshot.params[k] = v
            self.snapshot.param_sources[k] = source

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        _log_into(self, key, value, step)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.log_metric(k, v, step)

    def log_data(self, versions: list[DataVersion], profiles: dict[str, Any] | None = None) -> None:
        if not versions:
            return
        self.spool.event({"e": "data", "data": [d.to_dict() for d in versions]})
        if profiles:
            self.spool.event({"e": "profiles", "profiles": profiles})
        known = {(d.path, d.role) for d in versions}
        self.snapshot.data = [d for d in self.snapshot.data if (d.path, d.role) not in known]
        self.snapshot.data.extend(versions)

    def set_tags(self, tags: dict[str, str]) -> None:
        clean = {str(k): str(v) for k, v in tags.items()}
        self.spool.event({"e": "tags", "tags": clean})
        self.snapshot.tags.update(clean)

    def update(self, **fields: Any) -> None:
        """Record facts learned after the start (git state, notebook snapshot...)."""
        if fields:
            self.spool.event({"e": "update", "fields": fields})
            for k, v in fields.items():
                setattr(self.snapshot, k, v)

    def hold(self) -> None:
        """A fact is being gathered for this run: do not close its spool yet."""
        with self._pending_lock:
            self._pending += 1

    def release(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def flush(self) -> None:
        """Move buffered metric points to the spool file (durable against a kill).

        The ingestor thread flushes while the cell keeps appending, so the buffer
        list is never swapped for a new one (a point appended to the old list
        after the swap was lost, or tore the chunk being encoded): the first
        ``n`` points are copied out and deleted, each step atomic under the GIL,
        and points appended meanwhile wait for the next flush.
        """
        with self._flush_lock:
            points = self._points
            n = len(points)
            if not n:
                return
            chunk = points[:n]
            del points[:n]
            self.spool.metrics_flat(chunk)

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        if self.finished:
            return
        if status not in ("finished", "failed", "crashed"):
            raise UsageError(f"a run ends finished, failed or crashed, not {status!r}")
        self.flush()
        ended = _now()
        self.spool.event(
            {"e": "end", "status": status, "error": error, "ended_at": ended.isoformat()}
        )
        self.snapshot.status = status
        self.snapshot.error = error
        self.snapshot.ended_at = ended.replace(tzinfo=timezone.utc)
        self.finished = True

    # ---------------------------------------------------------------- ingesting
    def ingest(self) -> bool:
        """Move what was spooled since the last ingestion into DuckDB. True when all is in."""
        return self in ingest_together([self])

    def wait(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is in DuckDB."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                done = self.ingest()
            except NbtrackError:
                if deadline is not None and time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                continue
            if done or not self.finished:
                return


def ingest_together(writers: list[RunWriter]) -> list[RunWriter]:
    """Ingest the spools of runs of one store in one transaction; returns those all in.

    Cells run back to back end many runs a second: one DuckDB connection for all of
    them, instead of one each, keeps the background thread's share of the GIL small.
    """
    if not writers:
        return []
    done: list[RunWriter] = []
    with contextlib.ExitStack() as stack:
        for w in writers:
            stack.enter_context(w._ingest_lock)
        read = []
        for w in writers:
            if not w.finished:
                w.flush()
            if not w.spool.path.exists():
                done.append(w)
                continue
            pending_before = w._pending
            batch, offset, state = read_spool(w.spool.path, w.run_id, w._offset)
            read.append((w, batch, offset, state, pending_before))
        fresh = [batch for w, batch, offset, _, _ in read if offset > w._offset]
        if fresh:
            writers[0].client.store.write(fresh)
        for w, _, offset, state, pending_before in read:
            if offset > w._offset:
                w._offset = offset
                w._end_stored = w._end_stored or state["ended"]
            if w._end_stored and pending_before == 0:
                w.spool.close()
                with contextlib.suppress(FileNotFoundError):
                    w.spool.path.unlink()
                done.append(w)
    return done


class Ingestor:
    """The one background thread per process that moves spools into DuckDB."""

    def __init__(self) -> None:
        self._writers: list[RunWriter] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="nbtrack-ingestor", daemon=True)
        self._thread.start()
        atexit.register(self.drain, 20.0)

    def add(self, writer: RunWriter) -> None:
        with self._lock:
            self._writers.append(writer)
            self._idle.clear()

    def kick(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        _own_threads.add(threading.get_ident())
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
        by_store: dict[str, list[RunWriter]] = {}
        for w in writers:
            by_store.setdefault(str(w.client.store.path), []).append(w)
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
            max_workers=1, thread_name_prefix="nbtrack-capture", initializer=_mark_own_thread
        )
    return _executor.submit(fn, *args)


def _mark_own_thread() -> None:
    _own_threads.add(threading.get_ident())


# ---------------------------------------------------------------- the active run
_active: RunWriter | None = None


def set_active(writer: RunWriter | None) -> None:
    global _active
    _active = writer


def active_run() -> Run | None:
    return None if _active is None else _active.snapshot


def _require() -> RunWriter:
    if _active is None:
        raise NoActiveRunError(
            "no active run: nbtrack.log_* works inside a cell that starts with %%track "
            "(after %load_ext nbtrack)"
        )
    return _active


def _log_into(w: RunWriter, name: str, value: Any, step: int | None) -> None:
    # The hot path of a training loop: a few lookups and one extend (atomic under
    # the GIL, so the buffer always holds whole points when the ingestor flushes).
    if type(value) is not float or type(name) is not str:
        value = build_metric(name, value)
    steps = w._steps
    nxt = steps.get(name, 0)
    if step is None:
        step = nxt
    elif type(step) is not int:
        raise UsageError(f"step must be an integer, not {step!r}")
    if step >= nxt - 1:
        # The latest value of a series is the one at its highest step (as in the store).
        steps[name] = step + 1
        w.snapshot.metrics[name] = value
    points = w._points
    points.extend((name, value, step, time.time()))
    if len(points) >= FLUSH_POINTS * 4:
        w.flush()


def log_metric(name: str, value: Any, step: int | None = None) -> None:
    """Log one metric point to the active run (the ``%%track`` cell executing now).

    ``step`` defaults to the next step of that series (0, 1, 2, ...); NaN and
    infinities are legal values. Raises ``NoActiveRunError`` outside a tracked cell.

    >>> for epoch in range(3):  # doctest: +SKIP
    ...     nbtrack.log_metric("loss", 1 / (epoch + 1))
    """
    _log_into(_active or _require(), name, value, step)


def log_metrics(metrics: dict[str, Any], step: int | None = None) -> None:
    """Log several metrics, at one step, to the active run."""
    w = _require()
    for k, v in metrics.items():
        _log_into(w, k, v, step)


def log_params(params: dict[str, Any]) -> None:
    _require().log_params(params, source="api")


def log_dataset(df: pd.DataFrame, name: str) -> None:
    """Record an in-memory DataFrame as a data version of the active run."""
    w = _require()
    from .versioning import version_dataframe

    if not isinstance(name, str) or not name:
        raise UsageError("log_dataset needs a name for the DataFrame")
    version, profile = version_dataframe(df, name, cache=w.client.cache)
    w.log_data([version], {version.hash: profile} if version.hash and profile else None)


def is_own_thread() -> bool:
    return threading.get_ident() in _own_threads
