"""The active run: recording a run as it happens, and the fluent ``log_*`` calls.

A ``RunWriter`` appends every event to the run's spool file at once and every
metric point to its point log (a shared memory mapping): both are safe against a
kill the moment the call returns. A single background ``Ingestor`` thread per
process moves them into DuckDB, so the ~20-40 ms a DuckDB write costs is never on a
cell's critical path; a reader in any process brings in ended runs before it reads.
Bad values are refused at the call (``BadValueError``, a ``ValueError``), so
nothing a run spooled can fail later.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from . import ingest
from .client import Client
from .exceptions import BadValueError, NoActiveRunError, UsageError
from .ingest import ingestor
from .models import DataVersion, Environment, NamedInput, Run
from .points import STEP_MAX, STEP_MIN, PointLog, Window
from .project import Project
from .spool import SpoolWriter, points_path
from .validation import build_metric, build_param, check_key, check_step

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("nbtrack")

ERROR_LIMIT = 20_000  # characters of a failed run's error kept


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


_env_json: dict[str, str] = {}


def _env_encoded(env: Environment) -> str:
    # Hundreds of packages, copied by asdict() and encoded (~0.1-0.2 ms): once per
    # environment, not once per cell.
    found = _env_json.get(env.env_id)
    if found is None:
        found = _env_json[env.env_id] = json.dumps(env.to_dict(), default=str, allow_nan=True)
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
        self.points = PointLog(points_path(spool.path))
        self.points.hand = self._spool_points
        self.snapshot = run  # what the run holds so far, in memory (for the summary)
        self.finished = False
        self._end: dict[str, Any] | None = None  # an end held back by points in memory
        self._end_lock = threading.RLock()  # the cell's finish and a background retry
        self._key_ids: dict[str, int] = {}  # series name -> its key in the point log
        self._steps: dict[str, int] = {}
        self.pending = 0  # background facts (git, snapshot) still to be spooled
        self.sealed = False  # the spool's last record is written (see ``_seal``)
        self._sealing = False
        self.background = False  # ingested by the process's Ingestor (or its daemon)
        self.ingest_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._key_lock = threading.Lock()

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
        spool.event({"e": "start", "run": row}, environment=_env_encoded(env))
        writer = cls(project, run_id, spool, run)
        if params:
            writer.log_params(params, source=param_source)
        if background:
            writer.background = True
            ingestor().add(writer)
        return writer

    # ---------------------------------------------------------------- logging
    def log_params(self, params: dict[str, Any], source: str = "flag") -> None:
        if not isinstance(params, dict):
            raise BadValueError(f"parameters are a dict of name -> value, not {params!r}")
        rows = [build_param(k, v, source) for k, v in params.items()]
        self.spool.event({"e": "params", "params": rows})
        for row in rows:
            # What the store will hold (a value JSON cannot carry is its repr), not the object.
            self.snapshot.params[row[0]] = json.loads(row[1])
            self.snapshot.param_sources[row[0]] = source

    def log_inputs(self, inputs: list[NamedInput]) -> None:
        """The values the cell read from the kernel namespace (see ``lineage``)."""
        if inputs:
            self.spool.event({"e": "inputs", "inputs": [i.to_dict() for i in inputs]})
            self.snapshot.named_inputs = list(inputs)

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        _log_into(self, key, value, step)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        _log_many(self, metrics, step)

    def log_metrics_once(self, metrics: dict[str, Any]) -> None:
        """Metrics logged once, as the run ends (its system totals), each at its series'
        next step, in one spool record: a run that logs no other point never makes its
        point log (a file created, sized and mapped: ~0.3 ms of a short cell, and one
        file more for the ingestion to read and remove)."""
        checked = {k: build_metric(k, v) for k, v in metrics.items()}
        ts = _time()
        flat: list[Any] = []
        with self._key_lock:
            for k, v in checked.items():
                step = self._steps.get(k, 0)
                self._steps[k] = step + 1
                self.snapshot.metrics[k] = v
                flat += (k, v, step, ts)
        self.spool.metrics_flat(flat)

    def _new_key(self, name: str) -> int:
        """The point log's key of a new series, its name spooled first."""
        return self._new_keys([name])[name]

    def _new_keys(self, names: list[str]) -> dict[str, int]:
        for name in names:
            check_key(name)
        with self._key_lock:
            unknown = [n for n in dict.fromkeys(names) if n not in self._key_ids]
            fresh = {n: len(self._key_ids) + i for i, n in enumerate(unknown)}
            if fresh:
                if not self.points.child:  # a child's points carry their names
                    self.spool.keys(fresh)
                self._key_ids.update((n, i + 1) for n, i in fresh.items())
            return {n: self._key_ids[n] for n in names}

    def _spool_points(self, win: Window) -> None:
        """A forked child's points, as a spool record of named points (``points.py``);
        a child that outlived its cell raises, as the parent does after it (its points
        went to the removed spool of a stored run: lost; the thirteenth trial)."""
        if self.spool.on_disk and not self.spool.path.exists():
            why = "this forked process outlived its cell, so the point was not recorded"
            raise NoActiveRunError(f"run {self.run_id[:8]} has ended and is stored: {why}")
        names = {i: n for n, i in self._key_ids.items()}
        flat: list[Any] = []
        for r in range(win.cap):
            if win.q[4 * r]:
                flat += (names[win.q[4 * r]], win.d[4 * r + 2], win.q[4 * r + 1], win.d[4 * r + 3])
        self.spool.metrics_flat(flat)

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
            self.pending += 1

    def release(self) -> None:
        with self._pending_lock:
            self.pending -= 1
        self._seal()

    def _seal(self) -> None:
        """Once the end and every background fact are spooled: the spool's last record,
        and the spool handed over to whoever ingests (``Ingestor.sealed``)."""
        with self._pending_lock:
            if not self.finished or self.pending or self._sealing:
                return
            self._sealing = True
        self.spool.seal()
        self.sealed = True  # only now: the ingestor's thread may close the spool once it sees this
        if self.background:
            ingestor().sealed(self)

    def retry(self) -> bool:
        """Write what a full disk held back in memory; True when all is on disk."""
        if self._end is not None:
            self._write_end()
        spooled = self.spool.retry()
        return self.points.spill(final=self.finished) and spooled and self._end is None

    @property
    def finishing(self) -> bool:
        """``finish`` was called (its end may still be held back in memory)."""
        return self.finished or self._end is not None

    @property
    def disk_error(self) -> OSError | None:
        """Why part of this run is only in memory (a full disk), if it is."""
        return self.spool.error or self.points.error

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        if self.finished or self._end is not None:
            return
        if status not in ("finished", "failed", "crashed"):
            raise UsageError(f"a run ends finished, failed or crashed, not {status!r}")
        ended = _now()
        self.snapshot.status = status
        self.snapshot.error = error
        self.snapshot.ended_at = ended.replace(tzinfo=timezone.utc)
        with self._end_lock:
            self._end = {
                "e": "end",
                "status": status,
                "error": error,
                "ended_at": ended.isoformat(),
            }
        self._write_end()

    def _write_end(self) -> bool:
        """Spool the end once every point is in the point log; True when it is.

        Points a full disk keeps in memory hold the end back (``retry`` writes it): an
        ingester that reads the end takes the point log for all there is, stores the run
        and removes its files, and the points in memory were lost."""
        with self._end_lock:  # (once: a retry in the background may race the finish)
            if self._end is None or not self.points.spill(final=True):
                return False
            self.spool.event(self._end)
            self._end = None
            # Only now: an ingester that sees ``finished`` may remove the spool once what
            # it read is in, so the end must be in the spool before.
            self.finished = True
        self._seal()
        return True

    # ---------------------------------------------------------------- ingesting
    def ingest(self) -> bool:
        """Move what was spooled since the last ingestion into DuckDB. True when all is in."""
        return self in ingest.ingest_writers([self])

    def close(self) -> None:
        """Everything is in the store: remove the spool and the point log."""
        self.let_go()
        from .spools import remove

        remove(self.spool.path)

    def let_go(self) -> None:
        """Close the spool and the point log, which stay for their ingester to remove."""
        self.spool.close()
        self.points.close()

    def wait(self, timeout: float | None = None) -> None:
        """Block until everything logged so far is in DuckDB (``runwait``)."""
        from .runwait import wait_stored

        wait_stored(self, timeout)


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
    # The hot path of a training loop: a few lookups and four stores into the point
    # log's shared mapping, the key last (a record is complete once its key is in).
    # Durable against a kill as soon as they are done; no system call.
    if type(value) is not float or type(name) is not str:
        value = build_metric(name, value)
    key = w._key_ids.get(name)
    if key is None:
        key = w._new_key(name)
    steps = w._steps
    nxt = steps.get(name, 0)
    if step is None:
        step = nxt
    elif type(step) is not int or not STEP_MIN <= step <= STEP_MAX:
        step = check_step(name, step)
    if step >= nxt - 1:
        # The latest value of a series is the one at its highest step (as in the store).
        steps[name] = step + 1
        w.snapshot.metrics[name] = value
    win = w.points.window
    i = next(win.slots)
    while i >= win.cap:
        win = w.points.roll(win)
        i = next(win.slots)
    i <<= 2
    q = win.q
    q[i + 1] = step
    d = win.d
    d[i + 2] = value
    d[i + 3] = _time()
    q[i] = key


_time = time.time


def _log_many(w: RunWriter, metrics: dict[str, Any], step: int | None) -> None:
    if not isinstance(metrics, dict):
        raise BadValueError(f"metrics are a dict of name -> number, not {metrics!r}")
    # All or nothing: one bad entry refuses the call before any point is logged.
    checked = {k: build_metric(k, v) for k, v in metrics.items()}
    new = [k for k in checked if k not in w._key_ids]
    if len(new) > 1:
        w._new_keys(new)  # one spool record for all, not one each
    if step is not None and (type(step) is not int or not STEP_MIN <= step <= STEP_MAX):
        step = check_step(next(iter(metrics), "?"), step)
    for k, v in checked.items():
        _log_into(w, k, v, step)


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
    _log_many(_require(), metrics, step)


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
