"""The DuckDB file: the only module with SQL on runs.

DuckDB lets one process at a time hold the file open for writing, and while it
does, no other process can open it at all. So every access here is a short
connect → work → close, serialized inside a process by one lock per file and
across nbtrack processes by a lock on a side file (``runs.duckdb.lock``, see
``_Turn``); other programs holding the file are retried with jittered exponential
backoff. Nothing keeps the file open between calls.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from .exceptions import (
    AmbiguousRunError,
    NotAStoreError,
    RunNotFoundError,
    StoreBusyError,
    StoreError,
    StoreVersionError,
    UsageError,
)
from .models import DataVersion, Environment, MetricPoint, Run, RunPage, RunQuery

SCHEMA_VERSION = 3
LOCK_TIMEOUT_ENV = "NBTRACK_LOCK_TIMEOUT"

# Version 1: the first public schema. Kept verbatim: tests build a v1 file with it
# to prove the upgrade path, and MIGRATIONS[1] upgrades it.
SCHEMA_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, name VARCHAR,
    status VARCHAR NOT NULL, error VARCHAR,
    started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP,
    parent_id VARCHAR, rerun_of VARCHAR,
    notebook_path VARCHAR, cell_id VARCHAR, execution_count INTEGER, session_id VARCHAR,
    source VARCHAR, notebook_hash VARCHAR, code_matches_notebook BOOLEAN,
    git_commit VARCHAR, git_dirty BOOLEAN, git_diff VARCHAR,
    env_id VARCHAR, host VARCHAR, pid INTEGER,
    spool_offset BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMP NOT NULL
);
CREATE TABLE params (
    run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR, value_num DOUBLE,
    value_text VARCHAR, source VARCHAR, PRIMARY KEY (run_id, key)
);
CREATE TABLE metrics (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, step BIGINT NOT NULL,
    value DOUBLE, ts DOUBLE);
CREATE TABLE data_versions (
    run_id VARCHAR NOT NULL, path VARCHAR NOT NULL, role VARCHAR NOT NULL, hash VARCHAR,
    size BIGINT, kind VARCHAR, in_project BOOLEAN, cached BOOLEAN, mtime DOUBLE,
    PRIMARY KEY (run_id, path, role)
);
CREATE TABLE tags (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR,
    PRIMARY KEY (run_id, key));
CREATE TABLE environments (env_id VARCHAR PRIMARY KEY, python VARCHAR, platform VARCHAR,
    packages VARCHAR);
"""

# Each entry upgrades version N to N+1, inside one transaction.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE metric_latest (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, step BIGINT,
    value DOUBLE, ts DOUBLE, n BIGINT, PRIMARY KEY (run_id, key));
INSERT INTO metric_latest
    SELECT run_id, key, max(step), arg_max(value, step * 1e12 + ts),
           max(ts), count(*) FROM metrics GROUP BY run_id, key;
CREATE TABLE profiles (hash VARCHAR PRIMARY KEY, profile VARCHAR, created_at TIMESTAMP);
""",
    2: """
CREATE INDEX params_run ON params (run_id);
CREATE INDEX metric_latest_run ON metric_latest (run_id);
CREATE INDEX data_versions_run ON data_versions (run_id);
CREATE INDEX tags_run ON tags (run_id);
""",
}

RUN_COLUMNS = (
    "run_id", "kind", "name", "status", "error", "started_at", "ended_at", "parent_id",
    "rerun_of", "notebook_path", "cell_id", "execution_count", "session_id", "source",
    "notebook_hash", "code_matches_notebook", "git_commit", "git_dirty", "git_diff",
    "env_id", "host", "pid",
)  # fmt: skip
# Columns of a run that may change after it started (ingested "update"/"end" events).
MUTABLE_RUN_COLUMNS = frozenset(RUN_COLUMNS) - {"run_id", "kind", "started_at"}
SORTABLE = {
    "started_at", "ended_at", "name", "status", "duration", "notebook_path", "kind",
    "run_id", "execution_count",
}  # fmt: skip
INDEXED_LOAD = 2_000  # up to this many runs are loaded through the run_id indexes
TABLES = ("runs", "params", "metrics", "metric_latest", "data_versions", "tags")

_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()
_turns: dict[str, _Turn] = {}
_checked: set[tuple[str, int]] = set()
_keys_cache: dict[str, tuple[Any, list[tuple[str, bool]], list[str]]] = {}


def _lock_for(path: Path) -> threading.RLock:
    with _process_locks_guard:
        return _process_locks.setdefault(str(path), threading.RLock())


class _Turn:
    """This process's turn at one store file, among nbtrack processes.

    DuckDB's lock can only be retried, and a failed ``duckdb.connect`` costs
    milliseconds, so a process listing runs in a loop got the file nearly every
    time and writers waited past any timeout. A lock on a side file is cheap to
    poll, so a waiter takes its turn in the short gap between another process's
    connections. POSIX locks (``lockf``), not ``flock``: a forked child does not
    inherit them. Re-entrant; used with the per-process lock of the file held.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self.depth = 0
        self.fd = -1

    def acquire(self, timeout: float) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            self.fd = -1  # a read-only folder: DuckDB's own lock still guards the file
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:
                if time.monotonic() >= deadline:
                    self.release()
                    raise StoreBusyError(
                        f"{self.path.with_suffix('')} stayed busy with other nbtrack processes "
                        f"for {timeout:.0f} s (set {LOCK_TIMEOUT_ENV} to wait longer)"
                    ) from None
                time.sleep(0.0005)

    def release(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.fd >= 0:
            os.close(self.fd)  # drops the lock
            self.fd = -1


def _turn_for(path: Path) -> _Turn:
    with _process_locks_guard:
        return _turns.setdefault(str(path), _Turn(path))


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=timezone.utc)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Batch:
    """Everything one ingestion writes for one run, in one transaction.

    ``run`` (a dict of run columns) creates or replaces the run row; ``update``
    sets columns of an existing one; ``end`` closes it. Metric points come as
    column lists (keys, steps, values, timestamps) and/or as Arrow tables with those
    columns (``metric_chunks``, decoded from a spool without Python objects).
    """

    run_id: str
    run: dict[str, Any] | None = None
    update: dict[str, Any] = field(default_factory=dict)
    params: list[tuple[str, str, float | None, str, str]] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)
    metric_steps: list[int] = field(default_factory=list)
    metric_values: list[float] = field(default_factory=list)
    metric_ts: list[float] = field(default_factory=list)
    metric_chunks: list[Any] = field(default_factory=list)
    data: list[DataVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    environment: Environment | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    spool_offset: int | None = None


class Store:
    """One ``runs.duckdb`` file."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self._lock = _lock_for(self.path)
        self._turn = _turn_for(self.path)
        self.lock_timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "60"))

    # ---------------------------------------------------------------- connections
    @contextmanager
    def connect(self, *, safe: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection, after the schema was checked or created.

        ``safe`` turns off DuckDB's file access (for SQL that arrives over HTTP).
        Waits for other processes holding the file, up to the lock timeout.
        """
        with self._lock:
            self._turn.acquire(self.lock_timeout)
            try:
                self._ensure_schema()
                config = {"enable_external_access": False} if safe else {}
                con = self._open(config)
                try:
                    yield con
                finally:
                    con.close()
            finally:
                self._turn.release()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open(
        self, config: dict[str, Any] | None = None, read_only: bool = False
    ) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.002
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=config or {})
            except duckdb.IOException as exc:
                if _is_lock_error(exc):
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"{self.path} stayed locked by another process for "
                            f"{self.lock_timeout:.0f} s (set {LOCK_TIMEOUT_ENV} to wait longer)"
                        ) from exc
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 0.1)
                    continue
                if "not a valid DuckDB database file" in str(exc):
                    raise NotAStoreError(f"{self.path} is not an nbtrack store: {exc}") from exc
                raise StoreError(f"cannot open {self.path}: {exc}") from exc
            except duckdb.SerializationException as exc:  # written by a newer DuckDB
                raise StoreVersionError(f"cannot open {self.path}: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"cannot open {self.path}: {exc}") from exc

    def _ensure_schema(self) -> None:
        """Create a new store, upgrade an old one (after a backup), refuse others.

        Checked once per process per file (by inode), so later calls cost nothing.
        """
        if self.path.exists():
            key = (str(self.path), self.path.stat().st_ino)
            if key in _checked:
                return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open()
        try:
            version = self._schema_version(con)
            if version == 0:
                self._create(con)
            elif version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{self.path} has schema version {version}, newer than this nbtrack "
                    f"understands ({SCHEMA_VERSION}); upgrade nbtrack to use it. "
                    "The file was left untouched."
                )
            elif version < SCHEMA_VERSION:
                self._migrate(con, version)
        finally:
            con.close()
        _checked.add((str(self.path), self.path.stat().st_ino))

    def _schema_version(self, con: duckdb.DuckDBPyConnection) -> int:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if not tables:
            return 0
        if "meta" not in tables or "runs" not in tables:
            raise NotAStoreError(
                f"{self.path} is a DuckDB file but not an nbtrack store "
                f"(tables: {', '.join(sorted(tables))}); it was left untouched"
            )
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise NotAStoreError(f"{self.path} has no schema version; it was left untouched")
        return int(row[0])

    def _create(self, con: duckdb.DuckDBPyConnection) -> None:
        from . import __version__

        con.execute("BEGIN TRANSACTION")
        con.execute(SCHEMA_V1)
        for v in range(1, SCHEMA_VERSION):
            con.execute(MIGRATIONS[v])
        con.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", _utcnow().isoformat()),
                ("created_by", f"nbtrack {__version__}"),
            ],
        )
        con.execute("COMMIT")

    def _migrate(self, con: duckdb.DuckDBPyConnection, version: int) -> None:
        con.execute("CHECKPOINT")
        stamp = _utcnow().strftime("%Y%m%dT%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.v{version}-{stamp}.bak")
        shutil.copy2(self.path, backup)
        con.execute("BEGIN TRANSACTION")
        for v in range(version, SCHEMA_VERSION):
            con.execute(MIGRATIONS[v])
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")

    def create_v1_for_tests(self) -> None:
        """Write an empty version-1 store (to exercise the upgrade path)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.path))
        try:
            con.execute(SCHEMA_V1)
            con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        finally:
            con.close()

    def info(self) -> dict[str, Any]:
        with self.connect() as con:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            runs = con.execute("SELECT count(*) FROM runs").fetchone()
        return {"path": str(self.path), "meta": meta, "runs": runs[0] if runs else 0}

    # ---------------------------------------------------------------- writing
    def write(self, batches: Sequence[Batch]) -> None:
        """Apply batches in one transaction (a single write is a batch of one)."""
        if not batches:
            return
        with self.transaction() as con:
            for b in batches:
                self._write_one(con, b)

    def _write_one(self, con: duckdb.DuckDBPyConnection, b: Batch) -> None:
        now = _utcnow()
        if b.environment is not None:
            env = b.environment
            con.execute(
                "INSERT OR IGNORE INTO environments VALUES (?, ?, ?, ?)",
                [env.env_id, env.python, env.platform, json.dumps(env.packages, sort_keys=True)],
            )
        if b.run is not None:
            cols = [c for c in RUN_COLUMNS if c in b.run]
            vals = [b.run[c] for c in cols]
            marks = ", ".join("?" for _ in cols)
            names = ", ".join(cols)
            con.execute(
                f"INSERT OR REPLACE INTO runs ({names}, spool_offset, updated_at) "
                f"VALUES ({marks}, 0, ?)",
                [*vals, now],
            )
        if b.update:
            bad = set(b.update) - MUTABLE_RUN_COLUMNS
            if bad:
                raise StoreError(f"cannot update run columns {sorted(bad)}")
            sets = ", ".join(f"{c} = ?" for c in b.update)
            con.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*b.update.values(), b.run_id])
        if b.params:
            con.executemany(
                "INSERT OR REPLACE INTO params VALUES (?, ?, ?, ?, ?, ?)",
                [(b.run_id, *p) for p in b.params],
            )
        if b.metric_keys or b.metric_chunks:
            self._write_metrics(con, b)
        if b.data:
            con.executemany(
                "INSERT OR REPLACE INTO data_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        b.run_id,
                        d.path,
                        d.role,
                        d.hash,
                        d.size,
                        d.kind,
                        d.in_project,
                        d.cached,
                        d.mtime,
                    )
                    for d in b.data
                ],
            )
        if b.tags:
            con.executemany(
                "INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                [(b.run_id, k, v) for k, v in b.tags.items()],
            )
        for digest, profile in b.profiles.items():
            con.execute(
                "INSERT OR IGNORE INTO profiles VALUES (?, ?, ?)",
                [digest, json.dumps(profile), now],
            )
        if b.spool_offset is not None:
            con.execute(
                "UPDATE runs SET spool_offset = ?, updated_at = ? WHERE run_id = ?",
                [b.spool_offset, now, b.run_id],
            )
        else:
            con.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", [now, b.run_id])

    def _write_metrics(self, con: duckdb.DuckDBPyConnection, b: Batch) -> None:
        # Arrow, not pandas: DuckDB reads a pandas NaN as NULL, and NaN is a legal metric.
        import pyarrow as pa

        tables = list(b.metric_chunks)
        if b.metric_keys:
            tables.append(
                pa.table(
                    {
                        "key": pa.array(b.metric_keys, pa.string()),
                        "step": pa.array(b.metric_steps, pa.int64()),
                        "value": pa.array(b.metric_values, pa.float64()),
                        "ts": pa.array(b.metric_ts, pa.float64()),
                    }
                )
            )
        points = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        run_ids = pa.repeat(pa.scalar(b.run_id, pa.string()), points.num_rows)
        frame = points.add_column(0, "run_id", run_ids)
        con.register("new_points", frame)
        try:
            con.execute("INSERT INTO metrics SELECT run_id, key, step, value, ts FROM new_points")
            # The latest point of each series is kept beside the series, so listing
            # 100,000 runs never scans millions of points.
            con.execute(
                """
                INSERT OR REPLACE INTO metric_latest
                WITH n AS (
                    SELECT run_id, key, max(step) AS step,
                           arg_max(value, step * 1e12 + ts) AS value, max(ts) AS ts,
                           count(*) AS n
                    FROM new_points GROUP BY run_id, key)
                SELECT n.run_id, n.key,
                       CASE WHEN o.step IS NULL OR n.step >= o.step THEN n.step ELSE o.step END,
                       CASE WHEN o.step IS NULL OR n.step >= o.step THEN n.value ELSE o.value END,
                       greatest(n.ts, coalesce(o.ts, n.ts)),
                       n.n + coalesce(o.n, 0)
                FROM n LEFT JOIN metric_latest o USING (run_id, key)
                """
            )
        finally:
            con.unregister("new_points")

    def run_state(self, run_id: str) -> tuple[int, str | None]:
        """``(spool offset already ingested, status)`` of a run; ``(0, None)`` if unknown."""
        with self.connect() as con:
            row = con.execute(
                "SELECT spool_offset, status FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def put_profile(self, digest: str, profile: dict[str, Any]) -> None:
        self.write([Batch(run_id="", profiles={digest: profile})])

    def get_profile(self, digest: str) -> dict[str, Any] | None:
        with self.connect() as con:
            row = con.execute("SELECT profile FROM profiles WHERE hash = ?", [digest]).fetchone()
        return None if row is None else json.loads(row[0])

    # ---------------------------------------------------------------- references
    def resolve(self, ref: str, kind: str | None = None) -> str:
        """Full run id for a full id, a unique prefix (≥ 4 characters) or ``last``."""
        with self.connect() as con:
            return self._resolve(con, ref, kind)

    def _resolve(self, con: duckdb.DuckDBPyConnection, ref: str, kind: str | None) -> str:
        ref = ref.strip()
        if ref == "last":
            row = con.execute(
                "SELECT run_id FROM runs WHERE kind = ? ORDER BY started_at DESC, run_id DESC LIMIT 1",
                [kind or "cell"],
            ).fetchone()
            if row is None:
                raise RunNotFoundError("the store has no runs yet, so 'last' names nothing")
            return str(row[0])
        if not re.fullmatch(r"[0-9a-fA-F]{4,32}", ref):
            raise RunNotFoundError(
                f"no run {ref!r}: a run is named by its id, a unique id prefix "
                "(at least 4 hex characters) or 'last'"
            )
        rows = con.execute(
            "SELECT run_id FROM runs WHERE run_id LIKE ? ORDER BY started_at DESC LIMIT 6",
            [ref.lower() + "%"],
        ).fetchall()
        if not rows:
            raise RunNotFoundError(f"no run matches {ref!r}")
        if len(rows) > 1:
            ids = ", ".join(r[0][:12] for r in rows[:5])
            raise AmbiguousRunError(f"{ref!r} matches several runs ({ids}…); give more characters")
        return str(rows[0][0])

    # ---------------------------------------------------------------- reading runs
    def get_runs(self, run_ids: Sequence[str], *, with_env: bool = True) -> list[Run]:
        """Full records for the given ids, in the given order (missing ids skipped)."""
        if not run_ids:
            return []
        with self.connect() as con:
            return self._load(con, list(run_ids), with_env=with_env)

    def get_by_refs(self, refs: Sequence[str], *, kind: str | None = None) -> list[Run]:
        """Resolve references and load their runs in one connection (a diff needs two)."""
        with self.connect() as con:
            ids = [self._resolve(con, r, kind) for r in refs]
            return self._load(con, ids, with_env=True)

    def _load(self, con: duckdb.DuckDBPyConnection, ids: list[str], *, with_env: bool) -> list[Run]:
        if not ids:
            return []
        if len(ids) <= INDEXED_LOAD:
            # A page of runs: the run_id indexes find their rows without a scan
            # (6 ms instead of 25 ms per table at 100,000 runs).
            pick, args = "list_contains(?, {t}.run_id)", [ids]
        else:
            con.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (run_id VARCHAR)")
            con.execute("DELETE FROM wanted")
            # One statement for all ids: executemany costs ~0.5 ms a row (5 s for 10,000 runs).
            con.execute("INSERT INTO wanted SELECT unnest(?::VARCHAR[])", [ids])
            pick, args = "{t}.run_id IN (SELECT run_id FROM wanted)", []
        cols = ", ".join(f"r.{c}" for c in RUN_COLUMNS)
        runs: dict[str, Run] = {}
        for row in con.execute(
            f"SELECT {cols} FROM runs r WHERE {pick.format(t='r')}", args
        ).fetchall():
            d = dict(zip(RUN_COLUMNS, row, strict=True))
            d["started_at"] = _utc(d["started_at"])
            d["ended_at"] = _utc(d["ended_at"])
            runs[d["run_id"]] = Run(**d)
        for run_id, key, value, source in con.execute(
            f"SELECT p.run_id, key, value, source FROM params p WHERE {pick.format(t='p')} ORDER BY key",
            args,
        ).fetchall():
            runs[run_id].params[key] = json.loads(value)
            runs[run_id].param_sources[key] = source
        for run_id, key, value in con.execute(
            f"SELECT m.run_id, key, value FROM metric_latest m WHERE {pick.format(t='m')} ORDER BY key",
            args,
        ).fetchall():
            runs[run_id].metrics[key] = value
        for row in con.execute(
            "SELECT d.run_id, path, role, hash, size, kind, in_project, cached, mtime "
            f"FROM data_versions d WHERE {pick.format(t='d')} ORDER BY role, path",
            args,
        ).fetchall():
            runs[row[0]].data.append(DataVersion(*row[1:]))
        for run_id, key, value in con.execute(
            f"SELECT t.run_id, key, value FROM tags t WHERE {pick.format(t='t')} ORDER BY key",
            args,
        ).fetchall():
            runs[run_id].tags[key] = value
        if with_env:
            envs = {r.env_id for r in runs.values() if r.env_id}
            found: dict[str, Environment] = {}
            for env_id, python, platform, packages in con.execute(
                "SELECT env_id, python, platform, packages FROM environments "
                "WHERE list_contains(?, env_id)",
                [sorted(envs)],
            ).fetchall():
                found[env_id] = Environment(env_id, python, platform, json.loads(packages))
            for r in runs.values():
                r.environment = found.get(r.env_id or "")
        return [runs[i] for i in ids if i in runs]

    def metric_series(
        self, run_id: str, keys: Sequence[str] | None = None
    ) -> dict[str, list[MetricPoint]]:
        with self.connect() as con:
            sql = "SELECT key, step, value, ts FROM metrics WHERE run_id = ?"
            args: list[Any] = [run_id]
            if keys:
                sql += " AND list_contains(?, key)"
                args.append(list(keys))
            rows = con.execute(sql + " ORDER BY key, step, ts", args).fetchall()
        out: dict[str, list[MetricPoint]] = {}
        for key, step, value, ts in rows:
            out.setdefault(key, []).append(MetricPoint(step, value, ts))
        return out

    def child_ids(self, run_id: str) -> list[str]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT run_id FROM runs WHERE parent_id = ? ORDER BY started_at", [run_id]
            ).fetchall()
        return [r[0] for r in rows]

    def previous_run_id(
        self,
        run_id: str,
        notebook_path: str | None,
        cell_id: str | None,
        name: str | None,
        source: str | None,
    ) -> str | None:
        """The run of the same cell just before ``run_id`` (by cell id, else name, else code)."""
        arg: str | None
        if cell_id:
            cond, arg = "cell_id = ?", cell_id
        elif name:
            cond, arg = "name = ?", name
        else:
            cond, arg = "source = ?", source
        with self.connect() as con:
            row = con.execute(
                f"SELECT run_id FROM runs WHERE kind = 'cell' AND status <> 'running' AND {cond} "
                "AND notebook_path IS NOT DISTINCT FROM ? AND run_id <> ? "
                "AND started_at <= (SELECT coalesce(max(started_at), now()::TIMESTAMP) FROM runs WHERE run_id = ?) "
                "ORDER BY started_at DESC LIMIT 1",
                [arg, notebook_path, run_id, run_id],
            ).fetchone()
        return None if row is None else str(row[0])

    # ---------------------------------------------------------------- listing
    def _keys(self, con: duckdb.DuckDBPyConnection) -> tuple[list[tuple[str, bool]], list[str]]:
        """Every parameter name (with whether all its values are numbers) and metric name.

        Remembered per file while the row counts stay the same: at 100,000 runs the
        two scans cost ~100 ms, the counts (kept by DuckDB) next to nothing.
        """
        counts = con.execute(
            "SELECT (SELECT count(*) FROM params), (SELECT count(*) FROM metric_latest)"
        ).fetchone()
        cached = _keys_cache.get(str(self.path))
        if cached is not None and cached[0] == counts:
            return cached[1], cached[2]
        param_kinds = con.execute(
            "SELECT key, bool_and(value_num IS NOT NULL) FROM params GROUP BY key ORDER BY key"
        ).fetchall()
        metric_keys = [
            r[0]
            for r in con.execute("SELECT DISTINCT key FROM metric_latest ORDER BY key").fetchall()
        ]
        kinds = [(k, bool(n)) for k, n in param_kinds]
        _keys_cache[str(self.path)] = (counts, kinds, metric_keys)
        return kinds, metric_keys

    def _wide_sql(self, param_kinds: list[tuple[str, bool]], metric_keys: list[str]) -> str:
        """A query with one row per run and one column per param and metric.

        Numeric parameters are DOUBLE columns, others text; each column is there as
        ``"params.lr"`` and, where the bare name is free, as ``lr`` too, so a
        ``--where`` can say ``lr > 0.01 and acc > 0.9``.
        """
        taken = set(RUN_COLUMNS) | {"duration", "params_text", "spool_offset", "updated_at"}
        bare: dict[str, int] = {}
        for k, _ in param_kinds:
            bare[k] = bare.get(k, 0) + 1
        for k in metric_keys:
            bare[k] = bare.get(k, 0) + 1

        def lit(s: str) -> str:
            return "'" + s.replace("'", "''") + "'"

        p_cols, m_cols, aliases = [], [], []
        for k, numeric in param_kinds:
            col = "value_num" if numeric else "value_text"
            p_cols.append(
                f"max({col}) FILTER (WHERE key = {lit(k)}) AS {quote_ident('params.' + k)}"
            )
            if bare[k] == 1 and k not in taken:
                aliases.append(f"{quote_ident('params.' + k)} AS {quote_ident(k)}")
        for k in metric_keys:
            m_cols.append(
                f"max(value) FILTER (WHERE key = {lit(k)}) AS {quote_ident('metrics.' + k)}"
            )
            if bare[k] == 1 and k not in taken:
                aliases.append(f"{quote_ident('metrics.' + k)} AS {quote_ident(k)}")
        p_sel = ", ".join(
            ["run_id", *p_cols, "string_agg(key || '=' || value_text, ' ') AS params_text"]
        )
        m_sel = ", ".join(["run_id", *m_cols])
        alias_sel = (", " + ", ".join(aliases)) if aliases else ""
        sql = f"""
            WITH p AS (SELECT {p_sel} FROM params GROUP BY run_id),
                 m AS (SELECT {m_sel} FROM metric_latest GROUP BY run_id),
                 wide0 AS (
                    SELECT r.* EXCLUDE (spool_offset, updated_at, git_diff, source),
                           epoch(r.ended_at) - epoch(r.started_at) AS duration,
                           p.* EXCLUDE (run_id), m.* EXCLUDE (run_id)
                    FROM runs r LEFT JOIN p USING (run_id) LEFT JOIN m USING (run_id))
            SELECT *{alias_sel} FROM wide0
        """
        return sql

    def _filters(self, q: RunQuery) -> tuple[str, list[Any]]:
        conds, args = ["TRUE"], []
        if q.kind:
            conds.append("kind = ?")
            args.append(q.kind)
        if q.parent_id:
            conds.append("parent_id = ?")
            args.append(q.parent_id)
        if q.status:
            conds.append("status = ?")
            args.append(q.status)
        if q.text:
            conds.append(
                "concat_ws(' ', run_id, name, notebook_path, cell_id, status, params_text) ILIKE ?"
            )
            args.append("%" + q.text.replace("\\", "\\\\").replace("%", "\\%") + "%")
        if q.where:
            conds.append(f"({q.where})")
        return " AND ".join(conds), args

    @staticmethod
    def _sort_target(sort: str, params: list[str], metrics: list[str]) -> tuple[str, str]:
        """``("base" | "param" | "metric", name)`` for a sort column a user named."""
        if sort in SORTABLE:
            return "base", sort
        if sort.startswith("params.") and sort[7:] in params:
            return "param", sort[7:]
        if sort.startswith("metrics.") and sort[8:] in metrics:
            return "metric", sort[8:]
        if sort in params and sort not in metrics:
            return "param", sort
        if sort in metrics and sort not in params:
            return "metric", sort
        raise UsageError(
            f"cannot sort by {sort!r}: use one of {', '.join(sorted(SORTABLE))}, "
            "params.NAME or metrics.NAME"
        )

    def _order(self, q: RunQuery, params: list[str], metrics: list[str]) -> str:
        kind, name = self._sort_target(q.sort, params, metrics)
        if kind == "base":
            col = name
        elif kind == "param":
            col = quote_ident("params." + name)
        else:
            col = _nan_last(quote_ident("metrics." + name))
        direction = "DESC" if q.descending else "ASC"
        return f"{col} {direction} NULLS LAST, started_at DESC, run_id"

    def _page_narrow(
        self,
        con: duckdb.DuckDBPyConnection,
        q: RunQuery,
        numeric_params: dict[str, bool],
        metrics: list[str],
    ) -> tuple[list[str], int]:
        """A page without filters on params or metrics: no pivot of every run.

        Sorting 10,000 runs by one metric joins that metric alone (a few ms) where
        the wide view would pivot every parameter and metric of every run first.
        """
        cond, args = self._filters(q)
        kind, name = self._sort_target(q.sort, list(numeric_params), metrics)
        join = ""
        join_args: list[Any] = []
        if kind == "base":
            col = "epoch(r.ended_at) - epoch(r.started_at)" if name == "duration" else f"r.{name}"
        elif kind == "param":
            join = "LEFT JOIN params s ON s.run_id = r.run_id AND s.key = ?"
            col = "s.value_num" if numeric_params[name] else "s.value_text"
            join_args = [name]
        else:
            join = "LEFT JOIN metric_latest s ON s.run_id = r.run_id AND s.key = ?"
            col = _nan_last("s.value")
            join_args = [name]
        direction = "DESC" if q.descending else "ASC"
        page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
        rows = con.execute(
            f"SELECT r.run_id FROM runs r {join} WHERE {cond} "
            f"ORDER BY {col} {direction} NULLS LAST, r.started_at DESC, r.run_id {page}",
            [*join_args, *args],
        ).fetchall()
        total = con.execute(f"SELECT count(*) FROM runs r WHERE {cond}", args).fetchone()
        return [r[0] for r in rows], int(total[0]) if total else 0

    def list_runs(self, q: RunQuery, *, safe: bool = False) -> RunPage:
        """One page of runs matching ``q`` (full records), and the total count."""
        with self.connect(safe=safe) as con:
            param_kinds, metrics = self._keys(con)
            params = [k for k, _ in param_kinds]
            if q.where is None and q.text is None:
                ids, total = self._page_narrow(con, q, dict(param_kinds), metrics)
                runs = self._load(con, ids, with_env=False)
                return RunPage(runs=runs, total=total, param_keys=params, metric_keys=metrics)
            wide = self._wide_sql(param_kinds, metrics)
            cond, args = self._filters(q)
            order = self._order(q, params, metrics)
            page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
            sql = (
                f"WITH wide AS ({wide}) SELECT run_id, count(*) OVER () FROM wide "
                f"WHERE {cond} ORDER BY {order} {page}"
            )
            _check_single_select(sql)
            try:
                rows = con.execute(sql, args).fetchall()
                if rows:
                    total = int(rows[0][1])
                else:
                    total = int(
                        con.execute(
                            f"WITH wide AS ({wide}) SELECT count(*) FROM wide WHERE {cond}", args
                        ).fetchone()[0]  # type: ignore[index]
                    )
            except duckdb.Error as exc:
                raise UsageError(f"bad filter {q.where!r}: {_first_line(exc)}") from exc
            runs = self._load(con, [r[0] for r in rows], with_env=False)
        return RunPage(runs=runs, total=total, param_keys=params, metric_keys=metrics)

    def runs_frame(self, q: RunQuery) -> Any:
        """The wide table (one row per run) as a pandas DataFrame."""
        with self.connect() as con:
            param_kinds, metrics = self._keys(con)
            params = [k for k, _ in param_kinds]
            wide = self._wide_sql(param_kinds, metrics)
            cond, args = self._filters(q)
            order = self._order(q, params, metrics)
            page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
            keep = [
                "run_id", "name", "status", "kind", "started_at", "ended_at", "duration",
                "notebook_path", "cell_id", "execution_count", "parent_id", "rerun_of", "error",
                *(quote_ident("params." + k) for k in params),
                *(quote_ident("metrics." + k) for k in metrics),
            ]  # fmt: skip
            sql = (
                f"WITH wide AS ({wide}) SELECT {', '.join(keep)} FROM wide "
                f"WHERE {cond} ORDER BY {order} {page}"
            )
            _check_single_select(sql)
            try:
                return con.execute(sql, args).df()
            except duckdb.Error as exc:
                raise UsageError(f"bad filter {q.where!r}: {_first_line(exc)}") from exc

    def change_token(self) -> str:
        with self.connect() as con:
            row = con.execute("SELECT count(*), max(updated_at) FROM runs").fetchone()
        return f"{row[0]}-{row[1].isoformat() if row and row[1] else '0'}"  # type: ignore[index]

    def sql(self, query: str, *, safe: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a user's query. ``safe``: one SELECT, no file access (for HTTP)."""
        if safe:
            _check_single_select(query)
        with self.connect(safe=safe) as con:
            try:
                cur = con.execute(query)
                cols = [d[0] for d in cur.description] if cur.description else []
                rows = cur.fetchall() if cur.description else []
            except duckdb.Error as exc:
                raise UsageError(f"SQL error: {_first_line(exc)}") from exc
        return cols, rows

    # ---------------------------------------------------------------- housekeeping
    def referenced_hashes(self, keep_run_ids: Sequence[str] | None = None) -> set[str]:
        """Every blob hash referenced by (the given) runs: data versions and notebook snapshots."""
        with self.connect() as con:
            if keep_run_ids is None:
                rows = con.execute(
                    "SELECT hash FROM data_versions WHERE hash IS NOT NULL "
                    "UNION SELECT notebook_hash FROM runs WHERE notebook_hash IS NOT NULL"
                ).fetchall()
            else:
                ids = list(keep_run_ids)
                rows = con.execute(
                    "SELECT hash FROM data_versions WHERE hash IS NOT NULL AND list_contains(?, run_id) "
                    "UNION SELECT notebook_hash FROM runs WHERE notebook_hash IS NOT NULL "
                    "AND list_contains(?, run_id)",
                    [ids, ids],
                ).fetchall()
        return {r[0] for r in rows}

    def run_ids_by_age(self) -> list[tuple[str, datetime]]:
        """All run ids with their start time, newest first."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT run_id, started_at FROM runs ORDER BY started_at DESC"
            ).fetchall()
        return [(r[0], _utc(r[1])) for r in rows]  # type: ignore[misc]

    def running_run_ids(self) -> list[str]:
        with self.connect() as con:
            rows = con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()
        return [r[0] for r in rows]

    def dump_runs(self, run_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every row of the given runs, per table, plus their environments and profiles."""
        ids = list(run_ids)
        out: dict[str, list[dict[str, Any]]] = {}
        with self.connect() as con:
            for table in TABLES:
                cur = con.execute(f"SELECT * FROM {table} WHERE list_contains(?, run_id)", [ids])
                cols = [d[0] for d in cur.description]
                out[table] = [
                    _jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()
                ]
            env_ids = sorted({r["env_id"] for r in out["runs"] if r.get("env_id")})
            cur = con.execute(
                "SELECT * FROM environments WHERE list_contains(?, env_id)", [env_ids]
            )
            cols = [d[0] for d in cur.description]
            out["environments"] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
            hashes = sorted({r["hash"] for r in out["data_versions"] if r.get("hash")})
            cur = con.execute("SELECT * FROM profiles WHERE list_contains(?, hash)", [hashes])
            cols = [d[0] for d in cur.description]
            out["profiles"] = [
                _jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()
            ]
        return out

    def load_runs(self, dump: dict[str, list[dict[str, Any]]]) -> list[str]:
        """Insert the runs of a dump that this store does not have; returns their ids."""
        # Arrow, not pandas: DuckDB reads a pandas NaN as NULL, and NaN is a legal metric.
        import pyarrow as pa

        incoming = [r["run_id"] for r in dump.get("runs", [])]
        with self.transaction() as con:
            have = {
                r[0]
                for r in con.execute(
                    "SELECT run_id FROM runs WHERE list_contains(?, run_id)", [incoming]
                ).fetchall()
            }
            new = [i for i in incoming if i not in have]
            wanted = set(new)  # once: rebuilt per row it made a 10,000-run load quadratic
            if new:
                for table in TABLES:
                    rows = [r for r in dump.get(table, []) if r["run_id"] in wanted]
                    if not rows:
                        continue
                    target = {c[0]: c[1] for c in con.execute(f"DESCRIBE {table}").fetchall()}
                    cols = [c for c in target if c in rows[0]]
                    frame = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
                    con.register("incoming", frame)
                    names = ", ".join(cols)
                    # Dumps carry times as ISO text: each column is cast to the table's type.
                    cast = ", ".join(f"CAST({quote_ident(c)} AS {target[c]})" for c in cols)
                    # metrics has no primary key (OR IGNORE needs one); rows are only
                    # inserted for runs this store lacks, so a plain INSERT is safe there.
                    verb = "INSERT INTO" if table == "metrics" else "INSERT OR IGNORE INTO"
                    con.execute(f"{verb} {table} ({names}) SELECT {cast} FROM incoming")
                    con.unregister("incoming")
            for env in dump.get("environments", []):
                con.execute(
                    "INSERT OR IGNORE INTO environments VALUES (?, ?, ?, ?)",
                    [env["env_id"], env["python"], env["platform"], env["packages"]],
                )
            for prof in dump.get("profiles", []):
                con.execute(
                    "INSERT OR IGNORE INTO profiles (hash, profile) VALUES (?, ?)",
                    [prof["hash"], prof["profile"]],
                )
        return new

    # ---------------------------------------------------------------- data versions (checkout)
    # Added by the data-versions work (issue 3); owned by the store's owner.
    def recorded_hashes(self, path: str) -> set[str]:
        """Every hash any run recorded for ``path`` (checkout overwrites only these)."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT DISTINCT hash FROM data_versions WHERE path = ? AND hash IS NOT NULL",
                [path],
            ).fetchall()
        return {r[0] for r in rows}


def _jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    for k, v in row.items():
        if isinstance(v, datetime):
            row[k] = v.isoformat()
    return row


def _nan_last(col: str) -> str:
    # DuckDB orders NaN above every number; a NaN metric belongs with the missing ones.
    return f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def _check_single_select(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {_first_line(exc)}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise UsageError("only a single SELECT statement is allowed here")
