"""The core every door goes through: validates requests and builds recorded values."""

from __future__ import annotations

import json
import numbers
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .cache import Cache
from .exceptions import UsageError
from .models import RUN_KINDS, RUN_STATUSES, MetricPoint, Run, RunPage, RunQuery, json_float
from .project import Project, resolve_project
from .spool import recover_orphans
from .store import Store

if TYPE_CHECKING:
    import pandas as pd

    from .diff import RunDiff

MAX_PAGE = 10_000
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


class Client:
    """Reads and records runs of one project's store."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.store = Store(project.db_path)
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
        return recover_orphans(self.store, self.project.spool_dir)

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
        return self.store.resolve(ref, kind)

    def get_run(self, ref: str) -> Run:
        return self.get_runs([ref])[0]

    def get_runs(self, refs: Sequence[str]) -> list[Run]:
        """Runs by id, prefix or ``last``, read in one connection to the store."""
        for ref in refs:
            if not isinstance(ref, str) or not ref.strip():
                raise UsageError("a run reference is an id, an id prefix or 'last'")
        self._fresh()
        return self.store.get_by_refs(refs)

    def children(self, ref: str) -> list[Run]:
        run_id = self.resolve(ref, kind="notebook")
        return self.store.get_runs(self.store.child_ids(run_id))

    def list_runs(self, query: RunQuery | None = None, *, safe: bool = False) -> RunPage:
        self._fresh()
        return self.store.list_runs(check_query(query or RunQuery()), safe=safe)

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
        return self.store.runs_frame(q)

    def metric_series(
        self, ref: str, keys: Sequence[str] | None = None
    ) -> dict[str, list[MetricPoint]]:
        return self.store.metric_series(self.resolve(ref), keys)

    def previous_run(self, run: Run) -> Run | None:
        """The run of the same cell before ``run`` (same notebook, same cell id / name / code)."""
        prev = self.store.previous_run_id(
            run.run_id, run.notebook_path, run.cell_id, run.name, run.source
        )
        return None if prev is None else self.store.get_runs([prev])[0]

    def diff(self, a: str, b: str, *, all: bool = False) -> RunDiff:
        """What differs between runs ``a`` and ``b`` (everything with ``all``)."""
        from .diff import diff_runs

        ra, rb = self.get_runs([a, b])
        return diff_runs(ra, rb, include_same=all, data_detail=self.data_detail)

    def data_detail(self, a: Any, b: Any) -> dict[str, Any] | None:
        """The inside-the-data comparison of two versions of a path, where one exists."""
        try:
            from .profile import compare_versions
        except ImportError:
            return None
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
        if not isinstance(query, str) or not query.strip():
            raise UsageError("an empty SQL query")
        self._fresh()
        return self.store.sql(query, safe=safe)

    def change_token(self) -> str:
        self._fresh()
        return self.store.change_token()
