"""Reads: run references, full run records, series, lineage lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from ..exceptions import AmbiguousRunError, RunNotFoundError, quoted
from ..models import DataVersion, Environment, MetricPoint, NamedInput, Run
from .tables import RUN_COLUMNS, utc

INDEXED_LOAD = 2_000  # up to this many runs are loaded through the run_id indexes


def resolve(con: duckdb.DuckDBPyConnection, ref: str, kind: str | None) -> str:
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
            f"no run {quoted(ref)}: a run is named by its id, a unique id prefix "
            "(at least 4 hex characters) or 'last'"
        )
    rows = con.execute(
        "SELECT run_id FROM runs WHERE run_id LIKE ? ORDER BY started_at DESC LIMIT 6",
        [ref.lower() + "%"],
    ).fetchall()
    if not rows:
        raise RunNotFoundError(f"no run matches {quoted(ref)}")
    if len(rows) > 1:
        ids = ", ".join(r[0][:12] for r in rows[:5])
        raise AmbiguousRunError(f"{ref!r} matches several runs ({ids}…); give more characters")
    return str(rows[0][0])


def load(con: duckdb.DuckDBPyConnection, ids: list[str], *, with_env: bool) -> list[Run]:
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
        d["started_at"] = utc(d["started_at"])
        d["ended_at"] = utc(d["ended_at"])
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
    for row in con.execute(
        "SELECT i.run_id, name, type, origin, shape, fingerprint, producer_run_id, "
        "producer_cell, execution_count, stale, reason, note "
        f"FROM named_inputs i WHERE {pick.format(t='i')} ORDER BY name",
        args,
    ).fetchall():
        names = ("name", "type", "origin", "shape", "fingerprint", "producer_run_id",
                 "producer_cell", "execution_count", "stale", "reason", "note")  # fmt: skip
        fields = dict(zip(names, row[1:], strict=True))
        fields["stale"] = bool(fields["stale"])
        runs[row[0]].named_inputs.append(NamedInput(**fields))
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
    con: duckdb.DuckDBPyConnection, run_id: str, keys: Sequence[str] | None = None
) -> dict[str, list[MetricPoint]]:
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


def has_sweep(con: duckdb.DuckDBPyConnection, sweep_id: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM tags WHERE key = 'sweep' AND value = ? LIMIT 1", [sweep_id]
    ).fetchone()
    return row is not None


def child_ids(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    rows = con.execute(
        "SELECT run_id FROM runs WHERE parent_id = ? ORDER BY started_at", [run_id]
    ).fetchall()
    return [r[0] for r in rows]


def latest_cell_run_ids(
    con: duckdb.DuckDBPyConnection, notebook_path: str | None, not_session: str = ""
) -> list[str]:
    """The newest ended cell run of each cell id, run name and code of a notebook, one
    that finished first (a failed one only where none did), leaving out the runs of
    session ``not_session``."""
    newest = "ORDER BY status = 'finished' DESC, started_at DESC"
    rows = con.execute(
        "SELECT run_id FROM (SELECT run_id, "
        f"row_number() OVER (PARTITION BY cell_id {newest}) AS by_id, "
        f"row_number() OVER (PARTITION BY name {newest}) AS by_name, "
        f"row_number() OVER (PARTITION BY source {newest}) AS by_source "
        "FROM runs WHERE kind = 'cell' AND status <> 'running' "
        "AND notebook_path IS NOT DISTINCT FROM ? AND session_id IS DISTINCT FROM ?) "
        "WHERE by_id = 1 OR by_name = 1 OR by_source = 1",
        [notebook_path, not_session],
    ).fetchall()
    return [str(r[0]) for r in rows]


def latest_run_id(con: duckdb.DuckDBPyConnection, notebook_path: str) -> str | None:
    """The newest finished-or-not run of a notebook; its notebook run if it has one."""
    row = con.execute(
        "SELECT coalesce(parent_id, run_id) FROM runs WHERE notebook_path = ? "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1",
        [notebook_path],
    ).fetchone()
    return None if row is None else str(row[0])


def path_versions(con: duckdb.DuckDBPyConnection, path: str) -> list[tuple[str, Any, DataVersion]]:
    """``(run id, started, version)`` for every recorded version of ``path``, oldest first."""
    rows = con.execute(
        "SELECT d.run_id, r.started_at, d.path, d.role, d.hash, d.size, d.kind, d.in_project, "
        "d.cached, d.mtime FROM data_versions d JOIN runs r USING (run_id) "
        "WHERE d.path = ? AND d.hash IS NOT NULL ORDER BY r.started_at, d.role DESC",
        [path],
    ).fetchall()
    return [(r[0], utc(r[1]), DataVersion(*r[2:])) for r in rows]


def get_profile(con: duckdb.DuckDBPyConnection, digest: str) -> dict[str, Any] | None:
    row = con.execute("SELECT profile FROM profiles WHERE hash = ?", [digest]).fetchone()
    return None if row is None else json.loads(row[0])


def get_profiles(con: duckdb.DuckDBPyConnection, digests: Sequence[str]) -> dict[str, Any]:
    rows = con.execute(
        # IN over the unnested list, not list_contains(?, hash): that one is evaluated
        # row by row (230 ms for 100 profiles, against 10 ms).
        "SELECT hash, profile FROM profiles WHERE hash IN (SELECT unnest(?))",
        [list(digests)],
    ).fetchall()
    return {r[0]: json.loads(r[1]) for r in rows}


def change_token(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT count(*), max(updated_at) FROM runs").fetchone()
    return f"{row[0]}-{row[1].isoformat() if row and row[1] else '0'}"  # type: ignore[index]


def referenced_hashes(
    con: duckdb.DuckDBPyConnection, keep_run_ids: Sequence[str] | None = None
) -> set[str]:
    """Every blob hash referenced by (the given) runs: data versions, notebook snapshots, session code."""
    if keep_run_ids is None:
        rows = con.execute(
            "SELECT hash FROM data_versions WHERE hash IS NOT NULL "
            "UNION SELECT notebook_hash FROM runs WHERE notebook_hash IS NOT NULL "
            "UNION SELECT code_hash FROM runs WHERE code_hash IS NOT NULL"
        ).fetchall()
    else:
        ids = list(keep_run_ids)
        rows = con.execute(
            "SELECT hash FROM data_versions WHERE hash IS NOT NULL AND list_contains(?, run_id) "
            "UNION SELECT notebook_hash FROM runs WHERE notebook_hash IS NOT NULL "
            "AND list_contains(?, run_id) "
            "UNION SELECT code_hash FROM runs WHERE code_hash IS NOT NULL "
            "AND list_contains(?, run_id)",
            [ids, ids, ids],
        ).fetchall()
    return {r[0] for r in rows}


def cached_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Blob hashes runs recorded as kept in the cache (cached data versions, notebook snapshots)."""
    rows = con.execute(
        "SELECT hash FROM data_versions WHERE cached AND hash IS NOT NULL "
        "UNION SELECT notebook_hash FROM runs WHERE notebook_hash IS NOT NULL "
        "UNION SELECT code_hash FROM runs WHERE code_hash IS NOT NULL"
    ).fetchall()
    return {r[0] for r in rows}


def run_ids_by_age(con: duckdb.DuckDBPyConnection) -> list[tuple[str, datetime]]:
    """All run ids with their start time, newest first."""
    rows = con.execute("SELECT run_id, started_at FROM runs ORDER BY started_at DESC").fetchall()
    return [(r[0], utc(r[1])) for r in rows]  # type: ignore[misc]


def running_run_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()
    return [r[0] for r in rows]


def recorded_hashes(con: duckdb.DuckDBPyConnection, path: str) -> set[str]:
    """Every hash any run recorded for ``path`` (checkout overwrites only these)."""
    rows = con.execute(
        "SELECT DISTINCT hash FROM data_versions WHERE path = ? AND hash IS NOT NULL", [path]
    ).fetchall()
    return {r[0] for r in rows}
