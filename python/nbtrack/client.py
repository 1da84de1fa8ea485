"""The core every door goes through: validates requests and builds recorded values."""

from __future__ import annotations

import datetime as dt
import json
import numbers
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import Cache, GcResult
from .exceptions import UsageError
from .models import (
    MAX_PAGE,
    RUN_KINDS,
    RUN_STATUSES,
    Batch,
    MetricPoint,
    Run,
    RunPage,
    RunQuery,
    json_float,
)
from .project import Project, resolve_project
from .spool import recover_orphans
from .store import Store

if TYPE_CHECKING:
    import pandas as pd

    from .diff import RunDiff

RECOVER_EVERY = 2.0  # seconds between looks for spools of dead processes
PARAM_SOURCES = ("auto", "flag", "papermill", "api")


# ---------------------------------------------------------------- value building
def _plain(value: Any) -> Any:
    """A value made of JSON types, or raise TypeError (numpy scalars become numbers)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return json_float(float(value))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def build_param(key: str, value: Any, source: str) -> tuple[str, str, float | None, str, str]:
    """The stored form of a parameter: ``(key, JSON, number or None, text, source)``.

    Values JSON cannot carry are stored by their ``repr`` (a string).
    """
    if not isinstance(key, str) or not key:
        raise UsageError(f"a parameter name must be a non-empty string, not {key!r}")
    if source not in PARAM_SOURCES:
        raise UsageError(f"unknown parameter source {source!r}")
    try:
        plain = _plain(value)
    except (TypeError, RecursionError):
        plain = repr(value)
    number: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) or isinstance(value, bool):
        number = float(value)
    text = plain if isinstance(plain, str) else json.dumps(plain)
    return key, json.dumps(plain), number, text, source


def build_metric(key: str, value: Any) -> float:
    """A metric value as a float (NaN and infinities are legal)."""
    if not isinstance(key, str) or not key:
        raise UsageError(f"a metric name must be a non-empty string, not {key!r}")
    if isinstance(value, (str, bytes)):
        raise UsageError(f"metric {key!r} must be a number, not {type(value).__name__} {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"metric {key!r} must be a number, not {type(value).__name__} {value!r}"
        ) from exc


def check_query(q: RunQuery) -> RunQuery:
    if q.kind is not None and q.kind not in RUN_KINDS:
        raise UsageError(f"kind must be one of {', '.join(RUN_KINDS)}, not {q.kind!r}")
    if q.status is not None and q.status not in RUN_STATUSES:
        raise UsageError(f"status must be one of {', '.join(RUN_STATUSES)}, not {q.status!r}")
    if q.limit is not None and not 0 <= q.limit <= MAX_PAGE:
        raise UsageError(f"limit must be between 0 and {MAX_PAGE}, not {q.limit}")
    if q.offset < 0:
        raise UsageError(f"offset must be 0 or more, not {q.offset}")
    if q.where is not None and not q.where.strip():
        raise UsageError("an empty --where condition")
    return q


def _check_sql(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise UsageError("an empty SQL query")


class Client:
    """Reads and records runs of one project's store."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._store = Store(project.db_path)
        self.cache = Cache(project.cache_dir)
        self._recovered_at = -RECOVER_EVERY

    @classmethod
    def open(cls, start: str | os.PathLike[str] | None = None) -> Client:
        """The client of the store that ``start`` (a notebook folder; default cwd) resolves to."""
        return cls(resolve_project(start))

    def recover(self) -> list[str]:
        """Ingest runs whose process died (marking them ``crashed``); returns their ids."""
        if not self.project.spool_dir.is_dir():
            return []
        return recover_orphans(self._store, self.project.spool_dir)

    def _fresh(self) -> None:
        # A long-lived client (the server's) looks for dead writers every few seconds,
        # so a kernel killed mid-cell shows as crashed without anyone asking.
        now = time.monotonic()
        if now - self._recovered_at >= RECOVER_EVERY:
            self._recovered_at = now
            self.recover()

    # ---------------------------------------------------------------- reading
    def resolve(self, ref: str, kind: str | None = None) -> str:
        if not isinstance(ref, str) or not ref.strip():
            raise UsageError("a run reference is an id, an id prefix or 'last'")
        self._fresh()
        return self._store.resolve(ref, kind)

    def get_run(self, ref: str) -> Run:
        return self.get_runs([ref])[0]

    def get_runs(self, refs: Sequence[str]) -> list[Run]:
        """Runs by id, prefix or ``last``, read in one connection to the store."""
        for ref in refs:
            if not isinstance(ref, str) or not ref.strip():
                raise UsageError("a run reference is an id, an id prefix or 'last'")
        self._fresh()
        return self._store.get_by_refs(refs)

    def children(self, ref: str) -> list[Run]:
        run_id = self.resolve(ref, kind="notebook")
        return self._store.get_runs(self._store.child_ids(run_id))

    def runs_by_id(self, run_ids: Sequence[str], *, with_env: bool = True) -> list[Run]:
        """Runs by full id, in the given order; ids the store lacks are skipped."""
        return self._store.get_runs(list(run_ids), with_env=with_env)

    def family(self, run_id: str, *, with_env: bool = True) -> list[Run]:
        """A run (by full id) followed by its child runs, oldest first."""
        return self._store.family(run_id, with_env=with_env)

    def child_ids(self, run_id: str) -> list[str]:
        """Ids of the runs whose parent is ``run_id``, oldest first."""
        return self._store.child_ids(run_id)

    def run_ids_by_age(self) -> list[str]:
        """Every run id, newest first."""
        return [run_id for run_id, _ in self._store.run_ids_by_age()]

    def list_runs(self, query: RunQuery | None = None, *, safe: bool = False) -> RunPage:
        self._fresh()
        return self._store.list_runs(check_query(query or RunQuery()), safe=safe)

    def runs_frame(
        self,
        where: str | None = None,
        *,
        kind: str | None = "cell",
        limit: int | None = None,
        sort: str = "started_at",
        descending: bool = True,
    ) -> pd.DataFrame:
        self._fresh()
        q = RunQuery(where=where, kind=kind, limit=limit, sort=sort, descending=descending)
        if q.limit is not None:
            check_query(q)
        return self._store.runs_frame(q)

    def metric_series(
        self, ref: str, keys: Sequence[str] | None = None
    ) -> dict[str, list[MetricPoint]]:
        return self._store.metric_series(self.resolve(ref), keys)

    def previous_run(self, run: Run) -> Run | None:
        """The run of the same cell before ``run`` (same notebook, same cell id / name / code)."""
        prev = self._store.previous_run_id(
            run.run_id, run.notebook_path, run.cell_id, run.name, run.source
        )
        return None if prev is None else self._store.get_runs([prev])[0]

    def diff(self, a: str, b: str, *, all: bool = False) -> RunDiff:
        """What differs between runs ``a`` and ``b`` (everything with ``all``)."""
        from .diff import diff_runs

        ra, rb = self.get_runs([a, b])
        return diff_runs(ra, rb, include_same=all, data_detail=self.data_detail)

    def data_detail(self, a: Any, b: Any) -> dict[str, Any] | None:
        """The inside-the-data comparison of two versions of a path, where one exists."""
        from .datacompare import compare_versions

        return compare_versions(self, a, b)

    def compare(self, refs: Sequence[str], *, all: bool = False) -> dict[str, Any]:
        """Several runs side by side: each against the first (the baseline)."""
        if len(refs) < 2:
            raise UsageError("compare needs at least two runs")
        from .diff import diff_runs

        runs = self.get_runs(refs)
        base = runs[0]
        return {
            "baseline": base.to_dict(),
            "runs": [r.to_dict() for r in runs],
            "diffs": [
                diff_runs(base, r, include_same=all, data_detail=self.data_detail).to_dict()
                for r in runs[1:]
            ],
        }

    def sql(self, query: str, *, safe: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A read-only query: statements that change the store are refused."""
        _check_sql(query)
        self._fresh()
        return self._store.sql(query, safe=safe)

    def sql_write(self, query: str) -> tuple[list[str], list[tuple[Any, ...]], Path]:
        """A query with write access, run after a backup; returns the backup's path too."""
        _check_sql(query)
        self._fresh()
        return self._store.sql_write(query)

    def change_token(self) -> str:
        self._fresh()
        return self._store.change_token()

    def store_health(self) -> dict[str, Any]:
        """Open the store and read all of it: path, meta rows, rows per table.

        Raises the ``StoreError`` that says what is wrong with it.
        """
        return self._store.health()

    def set_store_aside(self, which: str, reason: str) -> Path:
        """Move the store file (``"file"``) or its write-ahead log (``"wal"``) aside; the new path."""
        if which not in ("file", "wal"):
            raise UsageError(f"which is 'file' or 'wal', not {which!r}")
        return self._store.set_aside(which, reason)

    def cached_hashes(self) -> set[str]:
        """Blob hashes runs recorded as kept in the cache."""
        return self._store.cached_hashes()

    def info(self) -> dict[str, Any]:
        """The store's path, meta rows (schema version, creator) and run count."""
        return self._store.info()

    # ---------------------------------------------------------------- data versions and blobs
    def recorded_hashes(self, path: str) -> set[str]:
        """Every content hash any run recorded for ``path``."""
        return self._store.recorded_hashes(path)

    def referenced_hashes(self, run_ids: Sequence[str] | None = None) -> set[str]:
        """Blob hashes the given runs (default: every run) reference."""
        return self._store.referenced_hashes(run_ids)

    def get_profile(self, digest: str) -> dict[str, Any] | None:
        """The stored tabular profile of a content hash, if one was computed."""
        return self._store.get_profile(digest)

    def put_profile(self, digest: str, profile: dict[str, Any]) -> None:
        self._store.put_profile(digest, profile)

    def gc(
        self,
        *,
        keep_last: int | None = None,
        older_than_days: float | None = None,
        dry_run: bool = False,
    ) -> GcResult:
        """Prune the blobs that no kept run references.

        Without options every run is kept (only orphans go). With ``keep_last`` the
        newest N runs are kept; with ``older_than_days`` the runs started within that
        many days; with both, a run goes only when it is neither. Running runs are
        always kept. Runs themselves stay in the store: checking them out reports
        ``missing``. The client decides which hashes are live; the cache only
        removes blobs.
        """
        if keep_last is not None and keep_last < 0:
            raise UsageError(f"the number of runs to keep must be 0 or more, not {keep_last}")
        if older_than_days is not None and older_than_days < 0:
            raise UsageError(f"an age in days must be 0 or more, not {older_than_days}")
        self._fresh()
        runs = self._store.run_ids_by_age()
        if keep_last is None and older_than_days is None:
            kept = {run_id for run_id, _ in runs}
        else:
            kept = set(self._store.running_run_ids())
            if keep_last is not None:
                kept.update(run_id for run_id, _ in runs[:keep_last])
            if older_than_days is not None:
                cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=older_than_days)
                kept.update(run_id for run_id, started in runs if started and started >= cutoff)
        dropped = [run_id for run_id, _ in runs if run_id not in kept]
        live = self._store.referenced_hashes(sorted(kept))
        gone = self._store.referenced_hashes(dropped) if dropped else set()
        return self.cache.collect_garbage(live, dropped=gone, dry_run=dry_run)

    # ---------------------------------------------------------------- writing and moving runs
    def write_batches(self, batches: Sequence[Batch]) -> None:
        """Store spooled events (one transaction for all of them)."""
        self._store.write(batches)

    def dump_runs(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every stored row of the given runs, per table (for bundles and remotes)."""
        return self._store.dump_runs(run_ids)

    def load_runs(self, dump: dict[str, list[dict[str, Any]]], source: str = "dump") -> list[str]:
        """Add the runs of a dump this store lacks; returns their ids (idempotent).

        Every row is checked first (``dumps.check_dump``): a malformed dump imports nothing.
        """
        from .dumps import check_dump

        return self._store.load_runs(check_dump(dump, source))
