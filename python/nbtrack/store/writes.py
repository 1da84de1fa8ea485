"""Writes: one transaction applies a list of batches (a single write is a batch of one)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb

from ..exceptions import StoreError
from ..models import Batch
from .schema import utcnow
from .tables import MUTABLE_RUN_COLUMNS, RUN_COLUMNS


def write(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> None:
    for b in batches:
        _write_one(con, b)


def _write_one(con: duckdb.DuckDBPyConnection, b: Batch) -> None:
    now = utcnow()
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
        _write_metrics(con, b)
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
    if b.named_inputs:
        con.executemany(
            "INSERT OR REPLACE INTO named_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (b.run_id, i.name, i.type, i.origin, i.shape, i.fingerprint, i.producer_run_id,
                 i.producer_cell, i.execution_count, i.stale, i.reason, i.note)
                for i in b.named_inputs
            ],
        )  # fmt: skip
    if b.tags:
        con.executemany(
            "INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
            [(b.run_id, k, v) for k, v in b.tags.items()],
        )
    for digest, profile in b.profiles.items():
        # Replace: one hash has one content, and a profile of a newer nbtrack (drift
        # sketches added) must be able to take the place of an older one.
        con.execute(
            "INSERT OR REPLACE INTO profiles VALUES (?, ?, ?)",
            [digest, json.dumps(profile), now],
        )
    if b.spool_offset is not None:
        con.execute(
            "UPDATE runs SET spool_offset = ?, updated_at = ? WHERE run_id = ?",
            [b.spool_offset, now, b.run_id],
        )
    else:
        con.execute("UPDATE runs SET updated_at = ? WHERE run_id = ?", [now, b.run_id])


def _write_metrics(con: duckdb.DuckDBPyConnection, b: Batch) -> None:
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


def run_state(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, str | None]:
    """``(spool offset already ingested, status)`` of a run; ``(0, None)`` if unknown."""
    row = con.execute("SELECT spool_offset, status FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return (0, None) if row is None else (int(row[0]), str(row[1]))
