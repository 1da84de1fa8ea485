"""Dump and load of the model registry (bundles, remotes): merged, never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from ..exceptions import UsageError
from .registry import VERSION_COLUMNS, derive_aliases
from .tables import jsonable_row


def dump(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str] | None
) -> dict[str, list[dict[str, Any]]]:
    """The versions made by ``run_ids`` (None: every version), their models and alias history."""
    if run_ids is None:
        cur = con.execute("SELECT * FROM model_versions")
    else:
        cur = con.execute(
            "SELECT * FROM model_versions WHERE list_contains(?, run_id)", [list(run_ids)]
        )
    cols = [d[0] for d in cur.description]
    out: dict[str, list[dict[str, Any]]] = {
        "model_versions": [jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
    }
    names = sorted({r["name"] for r in out["model_versions"]})
    for table in ("registered_models", "model_alias_history"):
        cur = con.execute(f"SELECT * FROM {table} WHERE list_contains(?, name)", [names])
        cols = [d[0] for d in cur.description]
        out[table] = [jsonable_row(dict(zip(cols, r, strict=True))) for r in cur.fetchall()]
    return out if names else {}


def load(con: duckdb.DuckDBPyConnection, data: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Merge a registry dump; returns ``NAME/VERSION`` of the versions added (idempotent).

    A version already here (same ``version_id``) is skipped; a number taken here by a
    different version is refused, before anything is written. Alias moves are a
    union by ``move_id``; each alias then points where its latest move says.
    """
    # Arrow, not row by row: a registry of 10,000 versions is one INSERT, not 10,000.
    import pyarrow as pa

    incoming = data.get("model_versions", [])
    keys = pa.Table.from_pylist(
        [{"name": r["name"], "version": r["version"], "version_id": r["version_id"]}
         for r in incoming],
        schema=pa.schema([("name", pa.string()), ("version", pa.int32()),
                          ("version_id", pa.string())]),
    )  # fmt: skip
    con.register("incoming_keys", keys)
    try:
        clash = con.execute(
            "SELECT i.name, i.version FROM incoming_keys i JOIN model_versions v "
            "USING (name, version) WHERE v.version_id <> i.version_id LIMIT 1"
        ).fetchone()
        have = {
            r[0]
            for r in con.execute(
                "SELECT version_id FROM model_versions JOIN incoming_keys USING (version_id)"
            ).fetchall()
        }
    finally:
        con.unregister("incoming_keys")
    if clash is not None:
        raise UsageError(
            f"model {clash[0]!r} version {clash[1]} differs here and in what is "
            "being imported (two stores registered that number independently): "
            "no model version was imported"
        )
    models = data.get("registered_models", [])
    if models:
        con.register("incoming_models", pa.Table.from_pylist(
            [{c: m.get(c) for c in ("name", "created_at", "updated_at", "description", "tags")}
             for m in models]))  # fmt: skip
        con.execute(
            "INSERT OR IGNORE INTO registered_models SELECT name, CAST(created_at AS TIMESTAMP), "
            "CAST(updated_at AS TIMESTAMP), description, coalesce(tags, '{}') FROM incoming_models"
        )
        con.unregister("incoming_models")
    new = [r for r in incoming if r["version_id"] not in have]
    if new:
        rows = [{c: r.get(c) for c in VERSION_COLUMNS} for r in new]
        con.register("incoming_versions", pa.Table.from_pylist(rows))
        cols = ", ".join(VERSION_COLUMNS)
        cast = ", ".join(
            f"CAST({c} AS TIMESTAMP)" if c == "created_at" else c for c in VERSION_COLUMNS
        )
        con.execute(f"INSERT INTO model_versions ({cols}) SELECT {cast} FROM incoming_versions")
        con.unregister("incoming_versions")
    added = [f"{r['name']}/{r['version']}" for r in new]
    moves = sorted(data.get("model_alias_history", []), key=lambda m: (m["moved_at"], m["seq"]))
    for m in moves:
        if con.execute(
            "SELECT 1 FROM model_alias_history WHERE move_id = ?", [m["move_id"]]
        ).fetchone():
            continue
        row = con.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM model_alias_history WHERE name = ? AND alias = ?",
            [m["name"], m["alias"]],
        ).fetchone()
        con.execute(
            "INSERT INTO model_alias_history VALUES (?, ?, ?, ?, CAST(? AS TIMESTAMP), ?, ?, ?, ?)",
            [
                m["move_id"], m["name"], m["alias"], row[0] if row else 1, m["moved_at"],
                m["from_version"], m["to_version"], m.get("host"), m.get("user_name"),
            ],
        )  # fmt: skip
    names = sorted({m["name"] for m in data.get("registered_models", [])})
    if names:
        derive_aliases(con, names)
    return added
