"""Writes: one transaction applies a list of batches (a single write is a batch of one).

Whatever the number of batches, a transaction costs a fixed number of statements,
one per table, each over an Arrow table of all the batches' rows: a thousand small
runs are stored about as fast as one (a statement per run and table cost ~50 ms of
CPU per run, and ingestion fell behind cells that end 200 times a second).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from ..exceptions import StoreError
from ..models import Batch
from .schema import utcnow
from .tables import MUTABLE_RUN_COLUMNS, RUN_COLUMNS

Positions = dict[str, tuple[int, int, str | None]]


def positions(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> Positions:
    """``{run_id: (spool offset, point log offset, status)}`` of the runs the store has."""
    if not run_ids:
        return {}
    rows = con.execute(
        "SELECT run_id, spool_offset, coalesce(points_offset, 0), status FROM runs "
        "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(run_ids)],
    ).fetchall()
    return {r[0]: (int(r[1]), int(r[2]), str(r[3])) for r in rows}


def _insert(con: duckdb.DuckDBPyConnection, sql: str, columns: dict[str, Any]) -> None:
    """Run ``sql`` over the rows given as columns (an Arrow table named ``new_rows``)."""
    import pyarrow as pa

    con.register("new_rows", pa.table(columns))
    try:
        con.execute(sql)
    finally:
        con.unregister("new_rows")


def _last_wins(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    # One statement may not touch a row twice: the last value of a key is the one kept.
    return list({r[:width]: r for r in rows}.values())


def write(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> None:
    import pyarrow as pa

    now = utcnow()
    envs = {b.environment.env_id: b.environment for b in batches if b.environment is not None}
    if envs:
        # Nearly always known already (a kernel's runs share one): a look (~2 ms) costs
        # less than the insert that ignores it (~4-7 ms of every ingestion transaction).
        known = con.execute(
            "SELECT env_id FROM environments WHERE env_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(envs)],
        ).fetchall()
        for (env_id,) in known:
            del envs[env_id]
    if envs:
        con.executemany(
            "INSERT OR IGNORE INTO environments VALUES (?, ?, ?, ?)",
            [
                (e.env_id, e.python, e.platform, json.dumps(e.packages, sort_keys=True))
                for e in envs.values()
            ],
        )
    whole = _insert_runs(con, batches, now)
    rest = [b for b in batches if b.run_id not in whole]  # runs whose rows are updated
    _updates(con, rest)
    params = _last_wins([(b.run_id, *p) for b in batches for p in b.params], 2)
    if params:
        param_columns = ("run_id", "key", "value", "value_num", "value_text", "source")
        _insert(
            con,
            "INSERT OR REPLACE INTO params SELECT * FROM new_rows",
            {
                n: pa.array([r[i] for r in params], pa.float64() if n == "value_num" else None)
                for i, n in enumerate(param_columns)
            },
        )
    _write_metrics(con, batches)
    data = _last_wins(
        [
            (b.run_id, d.path, d.role, d.hash, d.size, d.kind, d.in_project, d.cached, d.mtime)
            for b in batches
            for d in b.data
        ],
        3,
    )
    if data:
        names = ("run_id", "path", "role", "hash", "size", "kind", "in_project", "cached", "mtime")
        kinds = {"size": pa.int64(), "in_project": pa.bool_(), "cached": pa.bool_(),
                 "mtime": pa.float64()}  # fmt: skip
        _insert(
            con,
            "INSERT OR REPLACE INTO data_versions SELECT * FROM new_rows",
            {
                n: pa.array([r[i] for r in data], kinds.get(n, pa.string()))
                for i, n in enumerate(names)
            },
        )
    _write_named_inputs(con, batches)
    tags = _last_wins([(b.run_id, k, v) for b in batches for k, v in b.tags.items()], 2)
    if tags:
        _insert(
            con,
            "INSERT OR REPLACE INTO tags SELECT * FROM new_rows",
            {n: [r[i] for r in tags] for i, n in enumerate(("run_id", "key", "value"))},
        )
    for b in batches:
        for digest, profile in b.profiles.items():
            # Replace: one hash has one content, and a profile of a newer nbtrack (drift
            # sketches added) must be able to take the place of an older one.
            con.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?, ?)",
                [digest, json.dumps(profile), now],
            )
    ran = [b for b in rest if b.run_id]
    if ran:
        _insert(
            con,
            "UPDATE runs SET spool_offset = coalesce(n.spool, runs.spool_offset), "
            "points_offset = coalesce(n.points, runs.points_offset), updated_at = n.now_ "
            "FROM new_rows n WHERE runs.run_id = n.run_id",
            {
                "run_id": [b.run_id for b in ran],
                "spool": pa.array([b.spool_offset for b in ran], pa.int64()),
                "points": pa.array([b.points_offset for b in ran], pa.int64()),
                "now_": pa.array([now] * len(ran), pa.timestamp("us")),
            },
        )


def _insert_runs(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], now: Any) -> set[str]:
    """Insert (or replace) the run rows that start in ``batches``; the ids of the runs
    inserted whole: a run with no other batch here gets its updates (its end) and
    offsets in its row, not by two UPDATEs of the row just inserted (~6-10 ms of a
    hundred runs' catch-up, and rows read back through their update versions)."""
    import pyarrow as pa

    new_runs = {b.run_id: b for b in batches if b.run is not None}
    if not new_runs:
        return set()
    seen: dict[str, int] = {}
    for b in batches:
        seen[b.run_id] = seen.get(b.run_id, 0) + 1
    whole = {run_id for run_id in new_runs if seen[run_id] == 1}
    for run_id in whole:
        _check_update(new_runs[run_id])

    def table(whole: set[str]) -> dict[str, Any]:
        rows = [{**(b.run or {}), **(b.update if b.run_id in whole else {})}
                for b in new_runs.values()]  # fmt: skip
        return {
            **{c: pa.array([r.get(c) for r in rows]) for c in RUN_COLUMNS},
            "spool_": pa.array(
                [(b.spool_offset or 0) if b.run_id in whole else 0 for b in new_runs.values()],
                pa.int64(),
            ),
            "points_": pa.array(
                [b.points_offset if b.run_id in whole else None for b in new_runs.values()],
                pa.int64(),
            ),
            "now_": pa.array([now] * len(new_runs), pa.timestamp("us")),
        }

    try:
        columns = table(whole)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a column: update apart
        whole = set()
        columns = table(whole)
    _insert(
        con,
        f"INSERT OR REPLACE INTO runs ({', '.join(RUN_COLUMNS)}, spool_offset, points_offset, "
        f"updated_at) SELECT {', '.join(RUN_COLUMNS)}, spool_, points_, now_ FROM new_rows",
        columns,
    )
    return whole


def _check_update(b: Batch) -> None:
    bad = set(b.update) - MUTABLE_RUN_COLUMNS
    if bad:
        raise StoreError(f"cannot update run columns {sorted(bad)}")


def _write_named_inputs(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> None:
    import pyarrow as pa

    rows = _last_wins(
        [
            (b.run_id, i.name, i.type, i.origin, i.shape, i.fingerprint, i.producer_run_id,
             i.producer_cell, i.execution_count, i.stale, i.reason, i.note)
            for b in batches
            for i in b.named_inputs
        ],
        2,
    )  # fmt: skip
    if not rows:
        return
    names = ("run_id", "name", "type", "origin", "shape", "fingerprint", "producer_run_id",
             "producer_cell", "execution_count", "stale", "reason", "note")  # fmt: skip
    kinds = {"execution_count": pa.int64(), "stale": pa.bool_()}
    _insert(
        con,
        "INSERT OR REPLACE INTO named_inputs SELECT * FROM new_rows",
        {n: pa.array([r[i] for r in rows], kinds.get(n, pa.string())) for i, n in enumerate(names)},
    )


def _updates(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> None:
    # Runs updating the same columns share one statement (the end of a run: status,
    # error, ended_at; facts gathered later: git state, the notebook snapshot).
    groups: dict[tuple[str, ...], list[Batch]] = {}
    for b in batches:
        if b.update:
            _check_update(b)
            groups.setdefault(tuple(sorted(b.update)), []).append(b)
    import pyarrow as pa

    for cols, group in groups.items():
        try:
            table = {c: pa.array([b.update[c] for b in group]) for c in cols}
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in a column
            for b in group:
                sets = ", ".join(f"{c} = ?" for c in cols)
                con.execute(
                    f"UPDATE runs SET {sets} WHERE run_id = ?",
                    [*(b.update[c] for c in cols), b.run_id],
                )
            continue
        _insert(
            con,
            f"UPDATE runs SET {', '.join(f'{c} = n.{c}' for c in cols)} "
            "FROM new_rows n WHERE runs.run_id = n.run_id_",
            {**table, "run_id_": [b.run_id for b in group]},
        )


def _write_metrics(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch]) -> None:
    # Arrow, not pandas: DuckDB reads a pandas NaN as NULL, and NaN is a legal metric.
    import pyarrow as pa

    tables = []
    # The few points of many runs (kept as lists) make one table, not one per run.
    run_ids: list[str] = []
    keys: list[str] = []
    steps: list[int] = []
    values: list[float] = []
    ts: list[float] = []
    for b in batches:
        if b.metric_keys:
            run_ids += [b.run_id] * len(b.metric_keys)
            keys += b.metric_keys
            steps += b.metric_steps
            values += b.metric_values
            ts += b.metric_ts
        for chunk in b.metric_chunks:
            if chunk.num_rows:
                ids = pa.repeat(pa.scalar(b.run_id, pa.string()), chunk.num_rows)
                tables.append(
                    chunk.select(["key", "step", "value", "ts"]).add_column(0, "run_id", ids)
                )
    if keys:
        tables.append(
            pa.table(
                {
                    "run_id": pa.array(run_ids, pa.string()),
                    "key": pa.array(keys, pa.string()),
                    "step": pa.array(steps, pa.int64()),
                    "value": pa.array(values, pa.float64()),
                    "ts": pa.array(ts, pa.float64()),
                }
            )
        )
    if not tables:
        return
    frame = pa.concat_tables(tables)
    con.register("new_points", frame)
    try:
        con.execute("INSERT INTO metrics SELECT run_id, key, step, value, ts FROM new_points")
        # The latest point of each series is kept beside the series, so listing
        # 100,000 runs never scans millions of points. Joined with the latest points of
        # these runs only: a join with the whole table read all of it at every write
        # (100,000 rows at 10,000 runs: ~8 ms of a ~20 ms statement).
        con.execute(
            """
            INSERT OR REPLACE INTO metric_latest
            WITH n AS (
                SELECT run_id, key, max(step) AS step,
                       arg_max(value, step * 1e12 + ts) AS value, max(ts) AS ts,
                       count(*) AS n
                FROM new_points GROUP BY run_id, key),
            o AS (
                SELECT * FROM metric_latest
                WHERE run_id IN (SELECT DISTINCT run_id FROM new_points))
            SELECT n.run_id, n.key,
                   CASE WHEN o.step IS NULL OR n.step >= o.step THEN n.step ELSE o.step END,
                   CASE WHEN o.step IS NULL OR n.step >= o.step THEN n.value ELSE o.value END,
                   greatest(n.ts, coalesce(o.ts, n.ts)),
                   n.n + coalesce(o.n, 0)
            FROM n LEFT JOIN o USING (run_id, key)
            """
        )
    finally:
        con.unregister("new_points")


def run_state(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, str | None]:
    """``(spool offset already ingested, status)`` of a run; ``(0, None)`` if unknown."""
    row = con.execute("SELECT spool_offset, status FROM runs WHERE run_id = ?", [run_id]).fetchone()
    return (0, None) if row is None else (int(row[0]), str(row[1]))
