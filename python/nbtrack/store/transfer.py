"""Dump and load: every row of some runs as plain values, and back (bundles, remotes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from ..exceptions import UsageError
from .tables import TABLES, jsonable_row, quote_ident


def dump_runs(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the given runs, per table, plus their environments and profiles."""
    ids = list(run_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for table in TABLES:
        cur = con.execute(f"SELECT * FROM {table} WHERE list_contains(?, run_id)", [ids])
        cols = [d[0] for d in cur.description]
        out[table] = [jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
    env_ids = sorted({r["env_id"] for r in out["runs"] if r.get("env_id")})
    cur = con.execute("SELECT * FROM environments WHERE list_contains(?, env_id)", [env_ids])
    cols = [d[0] for d in cur.description]
    out["environments"] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    hashes = sorted({r["hash"] for r in out["data_versions"] if r.get("hash")})
    cur = con.execute("SELECT * FROM profiles WHERE list_contains(?, hash)", [hashes])
    cols = [d[0] for d in cur.description]
    out["profiles"] = [jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
    return out


def _unfit(table: str, exc: Exception) -> UsageError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return UsageError(
        f"{table} rows hold a value this store cannot take ({detail}); nothing was imported"
    )


def load_runs(con: duckdb.DuckDBPyConnection, dump: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Insert the runs of a dump that this store does not have; returns their ids."""
    # Arrow, not pandas: DuckDB reads a pandas NaN as NULL, and NaN is a legal metric.
    import pyarrow as pa

    incoming = list(dict.fromkeys(r["run_id"] for r in dump.get("runs", [])))  # once each
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
            try:
                frame = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows])
            except (pa.ArrowException, OverflowError) as exc:  # mixed types, 2**70
                raise _unfit(table, exc) from exc
            con.register("incoming", frame)
            names = ", ".join(cols)
            # Dumps carry times as ISO text: each column is cast to the table's type.
            cast = ", ".join(f"CAST({quote_ident(c)} AS {target[c]})" for c in cols)
            # metrics has no primary key (OR IGNORE needs one); rows are only
            # inserted for runs this store lacks, so a plain INSERT is safe there.
            verb = "INSERT INTO" if table == "metrics" else "INSERT OR IGNORE INTO"
            try:
                con.execute(f"{verb} {table} ({names}) SELECT {cast} FROM incoming")
            except duckdb.DataError as exc:  # a value of the wrong type (the dump's fault)
                raise _unfit(table, exc) from exc
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
