"""The DuckDB file: the only package with SQL.

One module per concern: ``connection`` (locking, short connections), ``schema``
(creation, upgrades, refusal), ``writes``, ``reads`` (references, run records),
``query`` (the run query builder), ``transfer`` (dump/load for bundles and
remotes), ``registry`` and ``registry_transfer`` (model versions and aliases), ``lineage`` (a
run's neighbours by data, values and models). ``Store`` is the one object the client holds: each method is one short
connection around one of those functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..models import Batch, MetricPoint, NotebookHead, Run, RunPage, RunQuery
from . import integrity, lineage, pipelines, query, reads, runjson, schema, transfer, writes
from .interrupts import interruptible
from .registry_tables import RegistryTables
from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Batch", "Store"]


class Store(RegistryTables):
    """One ``runs.duckdb`` file."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        super().__init__(db_path)

    def info(self) -> dict[str, Any]:
        with self.connect() as con:
            return {"path": str(self.path), **schema.info(con)}

    def health(self) -> dict[str, Any]:
        """Open the store, check its schema and read every value of every table.

        Raises the ``StoreError`` that says what is wrong; returns the path, the meta
        rows and the rows per table.
        """
        with self.connect(read_only=True) as con:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            rows = integrity.read_everything(con)
            if missing := integrity.CORE_TABLES - set(rows):
                raise integrity.missing_tables(self.path, missing)
            return {"path": str(self.path), "meta": meta, "rows": rows}

    def set_aside(self, which: str, reason: str) -> Path:
        """Move the store file (``which="file"``) or its write-ahead log (``"wal"``) aside."""
        target = self.path if which == "file" else integrity.wal_path(self.path)
        with self._lock:
            return integrity.set_aside(target, reason)

    def create_v1_for_tests(self) -> None:
        """Write an empty version-1 store (to exercise the upgrade path)."""
        schema.create_v1(self.path)

    def checkpoint(self) -> bool:
        """Move what DuckDB's write-ahead log holds into the file, if there is a log (a
        reader's catch-up leaves its writes there: see ``catchup.reading``); whether
        there was one. Queues behind readers, as ingestion does."""
        if not integrity.wal_path(self.path).exists():
            return False
        with self.connect(background=True) as con:
            con.execute("CHECKPOINT")
        return True

    # ---------------------------------------------------------------- writing
    def write(self, batches: Sequence[Batch]) -> None:
        """Apply batches in one transaction (a single write is a batch of one)."""
        if not batches:
            return
        with self.transaction() as con:
            writes.write(con, batches)

    def ingest(
        self,
        run_ids: Sequence[str],
        build: Callable[[writes.Positions], list[Batch]],
        *,
        background: bool = False,
    ) -> None:
        """Read how far ``run_ids`` are in, build their batches from there, write them:
        all in one transaction, so concurrent ingesters never store a record twice.

        ``background``: give way to readers waiting for the store (see ``connection``).
        """
        with self.transaction(background=background) as con:
            batches = build(writes.positions(con, run_ids))
            if batches:
                writes.write(con, batches)

    def run_state(self, run_id: str) -> tuple[int, str | None]:
        """``(spool offset already ingested, status)`` of a run; ``(0, None)`` if unknown."""
        with self.connect() as con:
            return writes.run_state(con, run_id)

    def put_profile(self, digest: str, profile: dict[str, Any]) -> None:
        self.write([Batch(run_id="", profiles={digest: profile})])

    def get_profile(self, digest: str) -> dict[str, Any] | None:
        with self.connect() as con:
            return reads.get_profile(con, digest)

    def get_profiles(self, digests: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored profiles of several content hashes (those the store has), in one read."""
        with self.connect() as con:
            return reads.get_profiles(con, digests)

    # ---------------------------------------------------------------- reading
    def resolve(self, ref: str, kind: str | None = None) -> str:
        """Full run id for a full id, a unique prefix (≥ 4 characters) or ``last``."""
        with self.connect() as con:
            return reads.resolve(con, ref, kind)

    def get_runs(self, run_ids: Sequence[str], *, with_env: bool = True) -> list[Run]:
        """Full records for the given ids, in the given order (missing ids skipped)."""
        if not run_ids:
            return []
        with self.connect() as con:
            return reads.load(con, list(run_ids), with_env=with_env)

    def get_by_refs(self, refs: Sequence[str], *, kind: str | None = None) -> list[Run]:
        """Resolve references and load their runs in one connection (a diff needs two)."""
        with self.connect() as con:
            ids = [reads.resolve(con, r, kind) for r in refs]
            return reads.load(con, ids, with_env=True)

    def family(self, run_id: str, *, with_env: bool = True) -> list[Run]:
        """A run followed by its child runs (oldest first), in one connection."""
        with self.connect() as con:
            return reads.load(con, [run_id, *reads.child_ids(con, run_id)], with_env=with_env)

    def metric_series(
        self, run_id: str, keys: Sequence[str] | None = None
    ) -> dict[str, list[MetricPoint]]:
        with self.connect() as con:
            return reads.metric_series(con, run_id, keys)

    def has_sweep(self, sweep_id: str) -> bool:
        """Whether notebook runs carry ``sweep_id`` as their ``sweep`` tag."""
        with self.connect() as con:
            return reads.has_sweep(con, sweep_id)

    def child_ids(self, run_id: str) -> list[str]:
        with self.connect() as con:
            return reads.child_ids(con, run_id)

    def run_lineage(self, run_id: str, depth: int, fanout: int) -> dict[str, Any]:
        """Runs, data versions, kernel values and model versions around a run (``lineage``)."""
        with self.connect() as con:
            return lineage.run_lineage(con, run_id, depth, fanout)

    def latest_cell_runs(self, notebook_path: str | None, not_session: str = "") -> list[Run]:
        """The newest finished run of each cell of a notebook (by cell id, name and code),
        runs of session ``not_session`` left out."""
        with self.connect() as con:
            ids = reads.latest_cell_run_ids(con, notebook_path, not_session)
            return reads.load(con, ids, with_env=True)

    def latest_run_id(self, notebook_path: str) -> str | None:
        """The newest run of a notebook (its notebook run when it has one)."""
        with self.connect() as con:
            return reads.latest_run_id(con, notebook_path)

    def notebook_heads(self) -> list[NotebookHead]:
        """The newest finished notebook run of every notebook, with its cells' data versions."""
        with self.connect() as con:
            return pipelines.notebook_heads(con)

    def path_versions(self, path: str) -> list[tuple[str, Any, Any]]:
        """``(run id, started, DataVersion)`` of every recorded version of a path, oldest first."""
        with self.connect() as con:
            return reads.path_versions(con, path)

    def change_token(self) -> str:
        with self.connect() as con:
            return reads.change_token(con)

    def referenced_hashes(self, keep_run_ids: Sequence[str] | None = None) -> set[str]:
        """Every blob hash referenced by (the given) runs: data versions and notebook snapshots."""
        with self.connect() as con:
            return reads.referenced_hashes(con, keep_run_ids)

    def cached_hashes(self) -> set[str]:
        """Blob hashes runs recorded as kept in the cache."""
        with self.connect() as con:
            return reads.cached_hashes(con)

    def run_ids_by_age(self) -> list[tuple[str, datetime]]:
        """All run ids with their start time, newest first."""
        with self.connect() as con:
            return reads.run_ids_by_age(con)

    def running_run_ids(self) -> list[str]:
        with self.connect() as con:
            return reads.running_run_ids(con)

    def recorded_hashes(self, path: str) -> set[str]:
        """Every hash any run recorded for ``path`` (checkout overwrites only these)."""
        with self.connect() as con:
            return reads.recorded_hashes(con, path)

    # ---------------------------------------------------------------- the run query
    def list_runs(self, q: RunQuery, *, safe: bool = False) -> RunPage:
        """One page of runs matching ``q`` (full records), and the total count."""
        with self.connect(safe=safe) as con, query.time_limit(con):
            return query.list_runs(str(self.path), con, q, strict=safe)

    def list_runs_json(
        self,
        q: RunQuery,
        *,
        safe: bool = False,
        fields: tuple[str, ...] = runjson.ALL_FIELDS,
        extra: dict[str, Any] | None = None,
    ) -> list[str]:
        """The page ``list_runs`` gives, as JSON text built by DuckDB (``ls --json``, the
        REST list), in chunks to write one after the other (``runjson.page_chunks``),
        each run with ``fields``; ``extra`` keys join the page's."""
        with self.connect(safe=safe) as con:
            # The time limit is the filter's; writing the JSON is ours, however busy the machine.
            with query.time_limit(con):
                ids, total, params, metrics = query.page_ids(str(self.path), con, q, safe)
            runs = runjson.runs_json(con, ids, fields)
        return runjson.page_chunks(runs, total, params, metrics, extra)

    def runs_frame(self, q: RunQuery) -> Any:
        """The wide table (one row per run) as a pandas DataFrame."""
        with self.connect() as con, query.time_limit(con):
            return query.runs_frame(str(self.path), con, q)

    def sql(self, text: str, *, safe: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a user's read-only query on a read-only connection.

        ``safe``: one SELECT, no file access (for SQL that arrives over HTTP).
        """
        if safe:
            query.check_single_select(text)
        else:
            query.check_read_only(text)
        with self.connect(safe=safe, read_only=True) as con:
            return interruptible(con, lambda: query.run_sql(con, text))

    def sql_write(self, text: str) -> tuple[list[str], list[tuple[Any, ...]], Path]:
        """Run a user's query with write access, after a backup; returns the backup too."""
        query.check_writable(text)
        backup = self.backup("sql")
        with self.connect() as con:
            cols, rows = interruptible(con, lambda: query.run_sql(con, text))
        return cols, rows, backup

    def backup(self, reason: str) -> Path:
        """A copy of the file after a checkpoint, beside it: ``runs.duckdb.REASON-TIME.bak``."""
        with self.connect() as con:
            con.execute("CHECKPOINT")
            stamp = schema.utcnow().strftime("%Y%m%dT%H%M%S.%f")
            dest = self.path.with_name(f"{self.path.name}.{reason}-{stamp}.bak")
            schema.copy_aside(self.path, dest)
        return dest

    # ---------------------------------------------------------------- dump and load
    def dump_runs(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every row of the given runs, per table, plus their environments and profiles."""
        with self.connect() as con:
            return transfer.dump_runs(con, run_ids)

    def load_runs(self, dump: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Insert the runs of a dump that this store does not have; returns their ids."""
        with self.transaction() as con:
            return transfer.load_runs(con, dump)
