"""The core every door goes through: validates requests and builds recorded values."""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import blobpins, catchup, spools
from .exceptions import RunNotFoundError, UsageError, quoted
from .models import (
    Batch,
    MetricPoint,
    NotebookHead,
    Run,
    RunPage,
    RunQuery,
)
from .project import Project, resolve_project
from .validation import check_query, check_sql

if TYPE_CHECKING:
    import pandas as pd

    from .cache import Cache, GcResult
    from .gates import GateResult
    from .rundiff import RunDiff
    from .store import Store

MAX_LINEAGE_DEPTH = 5  # runs away a lineage follows data at most


def stop_store_access() -> None:
    """This process is stopping (a server got SIGTERM): every wait for a store fails
    at once and queries running now are interrupted, so no thread holds up the exit."""
    from .store.connection import stop as stop_access

    stop_access()


class Client:
    """Reads and records runs of one project's store."""

    def __init__(self, project: Project) -> None:
        self.project = project

    @functools.cached_property
    def _store(self) -> Store:
        """The store, made on first use: DuckDB is imported then, not with the client
        (a kernel loading nbtrack, a tracked cell writing its spool never need it)."""
        from .store import Store

        return Store(self.project.db_path)

    @functools.cached_property
    def cache(self) -> Cache:
        """The blob cache, made on first use (listing runs or models never needs it)."""
        from .cache import Cache

        return Cache(self.project.cache_dir)

    @classmethod
    def open(cls, start: str | os.PathLike[str] | None = None) -> Client:
        """The client of the store that ``start`` (a notebook folder; default cwd) resolves to."""
        return cls(resolve_project(start))

    def recover(self, runs: Collection[str] | None = None) -> list[str]:
        """Bring in, whole, every spooled run that ended or whose process died (marking
        those ``crashed``; with ``runs``, see ``catchup.recover``): the ids brought in."""
        return catchup.recover(self._store, self.project.spool_dir, self.project.folder, runs)

    def ingest_spools(
        self,
        todo: Sequence[spools.Spool],
        *,
        max_points: int | None,
        max_seconds: float | None,
        background: bool,
    ) -> list[str]:
        """Bring in ``todo`` from where the store has them, in one transaction; the ids
        of runs now all in. In the background, reading stops when a reader queues."""
        return spools.ingest(
            self._store,
            todo,
            max_points=max_points,
            max_seconds=max_seconds,
            background=background,
            give_way=self._store.readers_waiting if background else None,
        )

    @contextmanager
    def store_turn(self, *, background: bool = False) -> Iterator[None]:
        """Hold the store's turn across several calls (an ingester's slices)."""
        with self._store.turn(background=background):
            yield

    def others_waiting(self) -> bool:
        """Whether another process waits for the store's turn this thread holds."""
        return self._store.others_waiting()

    def pass_turn(self) -> None:
        """Between slices of work: let another process waiting for the store go first."""
        self._store.pass_turn()

    def checkpoint(self) -> bool:
        """Move DuckDB's write-ahead log into the store file; whether there was one."""
        return self._store.checkpoint()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Catch up (``_fresh``) and read in one turn at the store (``catchup.reading``)."""
        with catchup.reading(self._store, self.project.spool_dir, self.project.folder):
            yield

    def _fresh(self) -> None:
        catchup.catch_up(self._store, catchup.ended(self.project.spool_dir))

    # ---------------------------------------------------------------- reading
    def resolve(self, ref: str, kind: str | None = None) -> str:
        if not isinstance(ref, str) or not ref.strip():
            raise UsageError("a run reference is an id, an id prefix or 'last'")
        with self._reading():
            return self._store.resolve(ref, kind)

    def get_run(self, ref: str) -> Run:
        return self.get_runs([ref])[0]

    def get_runs(self, refs: Sequence[str]) -> list[Run]:
        """Runs by id, prefix or ``last``, read in one connection to the store."""
        for ref in refs:
            if not isinstance(ref, str) or not ref.strip():
                raise UsageError("a run reference is an id, an id prefix or 'last'")
        with self._reading():
            return self._store.get_by_refs(refs)

    def resolve_parent(self, ref: str) -> tuple[str | None, str | None]:
        """``(run_id, None)`` when ``ref`` names a run, ``(None, sweep_id)`` when it is the
        id of a sweep (the ``sweep`` tag of its notebook runs); else ``RunNotFoundError``."""
        try:
            return self.resolve(ref, kind="notebook"), None
        except RunNotFoundError:
            with self._reading():
                if self._store.has_sweep(ref.strip()):
                    return None, ref.strip()
            raise RunNotFoundError(f"no run or sweep matches {quoted(ref)}") from None

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
        with self._reading():
            return self._store.list_runs(check_query(query or RunQuery()), safe=safe)

    def list_runs_json(
        self,
        query: RunQuery | None = None,
        *,
        safe: bool = False,
        fields: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> list[str]:
        """``list_runs(query).to_dict()`` as JSON text, built without a Run object each, in
        chunks whose concatenation is the document (write them one after the other);
        ``fields``: only these of each run (the run's own ones first, then params,
        metrics, ...); ``extra``: more keys of the page; ``safe`` as ``list_runs``."""
        with self._reading():
            q = check_query(query or RunQuery())
            if fields is None:
                return self._store.list_runs_json(q, safe=safe, extra=extra)
            return self._store.list_runs_json(q, safe=safe, fields=tuple(fields), extra=extra)

    def runs_frame(
        self,
        where: str | None = None,
        *,
        kind: str | None = "cell",
        limit: int | None = None,
        sort: str = "started_at",
        descending: bool = True,
    ) -> pd.DataFrame:
        q = RunQuery(where=where, kind=kind, limit=limit, sort=sort, descending=descending)
        if q.limit is not None:
            check_query(q)
        with self._reading():
            return self._store.runs_frame(q)

    def run_lineage(self, ref: str, *, depth: int = 1, fanout: int = 20) -> dict[str, Any]:
        """What a run read and wrote, the runs that wrote its inputs and read its outputs
        (``depth`` runs away at most; ``fanout`` runs per data version), the kernel
        values passed between them and the model versions they registered or loaded."""
        if not 1 <= depth <= MAX_LINEAGE_DEPTH:
            raise UsageError(f"lineage depth must be between 1 and {MAX_LINEAGE_DEPTH}")
        run_id = self.resolve(ref)
        return {"run_id": run_id, "depth": depth, **self._store.run_lineage(run_id, depth, fanout)}

    def metric_series(
        self, ref: str, keys: Sequence[str] | None = None
    ) -> dict[str, list[MetricPoint]]:
        return self._store.metric_series(self.resolve(ref), keys)

    def latest_cell_runs(self, notebook_path: str | None, not_session: str = "") -> list[Run]:
        """The newest finished run of each cell of a notebook, but session ``not_session``'s."""
        return self._store.latest_cell_runs(notebook_path, not_session)

    def notebook_heads(self) -> list[NotebookHead]:
        """The newest finished notebook run of every notebook: the state ``repro`` compares with."""
        with self._reading():
            return self._store.notebook_heads()

    def diff(self, a: str, b: str, *, all: bool = False) -> RunDiff:
        """What differs between runs ``a`` and ``b`` (everything with ``all``)."""
        return self._diff(*self.get_runs([a, b])[:2], all=all)

    def _diff(self, a: Run, b: Run, *, all: bool) -> RunDiff:
        """Two runs' diff, in their files and code too; a notebook run's holds its cells'."""
        from .codediff import session_diff
        from .rundiff import diff_runs, with_cells

        a, b = (with_cells(r, self.children) for r in (a, b))
        code = functools.partial(session_diff, self.cache)
        return diff_runs(a, b, include_same=all, data_detail=self.data_detail, code_detail=code)

    def data_detail(self, a: Any, b: Any) -> dict[str, Any] | None:
        """The inside-the-data comparison of two versions of a path, where one exists."""
        from .datacompare import compare_versions

        detail = compare_versions(self, a, b)
        if detail is not None:
            from .driftreport import annotate

            annotate(self, a, b, detail)  # drift flags beside the data change
        return detail

    def compare(self, refs: Sequence[str], *, all: bool = False) -> dict[str, Any]:
        """Several runs side by side: each against the first (the baseline)."""
        if len(refs) < 2:
            raise UsageError("compare needs at least two runs")
        runs = self.get_runs(refs)
        base = runs[0]
        return {
            "baseline": base.to_dict(),
            "runs": [r.to_dict() for r in runs],
            "diffs": [self._diff(base, r, all=all).to_dict() for r in runs[1:]],
        }

    def check(
        self,
        expression: str,
        run: str | None = None,
        *,
        against: str | None = None,
        notebook: str | None = None,
    ) -> GateResult:
        """Apply a metric gate to a run (default ``last``; ``notebook``: its newest run).

        A notebook run is gated on its own metrics and its cell runs'. Raises
        ``UsageError`` for an expression that does not parse or names a missing metric.
        """
        from . import gates

        gate = gates.parse(expression)
        if gate.needs_baseline and against is None:
            raise gates.GateSyntaxError(
                "delta(), rdelta() and base() need a baseline run to compare with"
            )
        if notebook is not None:
            if run is not None:
                raise UsageError("gate one run: name a run or a notebook, not both")
            recorded, _ = self.project.relative(notebook)
            self._fresh()
            found = self._store.latest_run_id(recorded)
            if found is None:
                raise UsageError(f"no run of notebook {recorded} in {self.project.db_path}")
            run_id = found
        else:
            run_id = self.resolve("last" if run is None else run)
        family = self._store.family(run_id, with_env=False)
        baseline = None
        if against is not None:
            base_id = self.resolve(against)
            baseline = gates.run_metrics(self._store.family(base_id, with_env=False))
            against = base_id
        metrics = gates.run_metrics(family)
        if any(m.startswith(gates.DRIFT_PREFIX) for m in gate.metrics()):
            from .driftreport import input_drift  # only when the gate names drift

            metrics.update(input_drift(self, family[0]))
        return gates.evaluate(gate, metrics, run_id=run_id, baseline=baseline, against=against)

    def sql(self, query: str, *, safe: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A read-only query: statements that change the store are refused."""
        check_sql(query)
        with self._reading():
            return self._store.sql(query, safe=safe)

    def sql_write(self, query: str) -> tuple[list[str], list[tuple[Any, ...]], Path]:
        """A query with write access, run after a backup; returns the backup's path too."""
        check_sql(query)
        self._fresh()
        return self._store.sql_write(query)

    def change_token(self) -> str:
        with self._reading():
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

    def path_versions(self, path: str) -> list[tuple[str, Any, Any]]:
        """``(run id, started, DataVersion)`` of every recorded version of a path, oldest first."""
        self._fresh()
        return self._store.path_versions(path)

    def get_profile(self, digest: str) -> dict[str, Any] | None:
        """The stored tabular profile of a content hash, if one was computed."""
        return self._store.get_profile(digest)

    def get_profiles(self, digests: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored profiles of several content hashes, in one read."""
        return self._store.get_profiles(digests) if digests else {}

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
        self.recover()
        with blobpins.sweeping(self.cache.root):  # imports in progress are in the store
            runs = self._store.run_ids_by_age()
            kept = {run_id for run_id, _ in runs}
            if keep_last is not None or older_than_days is not None:
                kept = set(self._store.running_run_ids())
                if keep_last is not None:
                    kept.update(run_id for run_id, _ in runs[:keep_last])
                if older_than_days is not None:
                    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=older_than_days)
                    kept.update(run_id for run_id, started in runs if started and started >= cutoff)
            dropped = [run_id for run_id, _ in runs if run_id not in kept]
            # Runs still being recorded (or whose store write failed) name blobs in their
            # spools only, and model versions keep their bytes whatever their runs: live.
            live = (
                self._store.referenced_hashes(sorted(kept))
                | spools.spooled_hashes(self.project.spool_dir)
                | self._store.model_hashes()
            )
            gone = self._store.referenced_hashes(dropped) if dropped else set()
            return self.cache.collect_garbage(live, dropped=gone, dry_run=dry_run)

    # ---------------------------------------------------------------- writing and moving runs
    def write_batches(self, batches: Sequence[Batch]) -> None:
        """Store spooled events (one transaction for all of them)."""
        self._store.write(batches)

    def mark_reruns(self, marks: dict[str, tuple[str, str]]) -> None:
        """Link each re-run run (``{run id: (original id, verdict word)}``) to its original:
        ``rerun_of`` and ``rerun_verdict``, as the runs table shows them."""
        self._store.write(
            [
                Batch(run_id, update={"rerun_of": of, "rerun_verdict": word})
                for run_id, (of, word) in marks.items()
            ]
        )

    def dump_runs(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every stored row of the given runs, per table (for bundles and remotes)."""
        return self._store.dump_runs(run_ids)

    def load_runs(self, dump: dict[str, list[dict[str, Any]]], source: str = "dump") -> list[str]:
        """Add the runs of a dump this store lacks; returns their ids (idempotent).

        Every row is checked first (``dumps.check_dump``): a malformed dump imports nothing.
        """
        from .dumps import check_dump

        return self._store.load_runs(check_dump(dump, source))

    # ---------------------------------------------------------------- the model registry
    def dump_registry(self, run_ids: Sequence[str] | None) -> dict[str, list[dict[str, Any]]]:
        """The model versions made by ``run_ids`` (None: all), their models and alias moves."""
        return self._store.dump_registry(run_ids)

    def load_registry(self, dump: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Merge a registry dump (idempotent); returns ``NAME/VERSION`` of what was added."""
        return self._store.load_registry(dump)
