"""Profiles of tabular data and the data diff between two versions of a table.

A profile is what one DuckDB pass over a CSV, Parquet or JSON-lines file (or an
in-memory DataFrame) says about it: the row count and, per column, its type, null
fraction, distinct count (HyperLogLog estimate, ``approx_count_distinct``) and, for
numbers, min / max / mean. Profiles are computed once per content hash and kept in
the store (``profiles`` table), so comparing the same versions again is a lookup.

This module runs SQL over the *user's data files* with a private in-memory DuckDB
connection; SQL over the runs store stays in ``store.py``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import NbtrackError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from .client import Client
    from .models import DataVersion

PROFILE_FORMAT = 1
_READERS = {
    "csv": "read_csv({src}, sample_size = 20480)",
    "csv.gz": "read_csv({src}, sample_size = 20480, compression = 'gzip')",
    "tsv": "read_csv({src}, sample_size = 20480, delim = '\t')",
    "parquet": "read_parquet({src})",
    "jsonl": "read_json({src}, format = 'newline_delimited')",
}
_SUFFIXES = {
    ".csv": "csv",
    ".csv.gz": "csv.gz",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_NUMERIC = [
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
]


def tabular_format(path: str) -> str | None:
    """``"csv"``, ``"tsv"``, ``"csv.gz"``, ``"parquet"`` or ``"jsonl"`` from a file name; None otherwise."""
    name = path.lower()
    for suffix, fmt in sorted(_SUFFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.endswith(suffix):
            return fmt
    return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_numeric(sql_type: str) -> bool:
    return sql_type.upper() in _NUMERIC or sql_type.upper().startswith("DECIMAL")


def _plain(value: Any) -> Any:
    """A JSON-safe scalar (non-finite floats become None: "no value" in a profile)."""
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return value


def _profile_relation(con: duckdb.DuckDBPyConnection, source_sql: str) -> dict[str, Any]:
    described = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
    columns = [(str(row[0]), str(row[1])) for row in described]
    parts = ["count(*)"]
    for name, sql_type in columns:
        q = _quote(name)
        parts += [f"count({q})", f"approx_count_distinct({q})"]
        if _is_numeric(sql_type):
            parts += [f"min({q})", f"max({q})", f"avg({q})"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {source_sql}").fetchone()
    assert row is not None
    values = list(row)
    rows = int(values.pop(0))
    profiled: list[dict[str, Any]] = []
    for name, sql_type in columns:
        non_null, distinct = int(values.pop(0)), int(values.pop(0))
        col: dict[str, Any] = {
            "name": name,
            "type": sql_type,
            "null_fraction": (rows - non_null) / rows if rows else 0.0,
            "distinct": distinct,
        }
        if _is_numeric(sql_type):
            col["min"], col["max"], col["mean"] = (_plain(values.pop(0)) for _ in range(3))
        profiled.append(col)
    from .driftsketch import sketch_columns  # what drift needs, from the same source

    drift = sketch_columns(con, source_sql, profiled, _is_numeric)
    return {"profile_format": PROFILE_FORMAT, "rows": rows, "columns": profiled, "drift": drift}


def profile_file(path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
    """Profile a tabular file read as ``fmt`` (see :func:`tabular_format`).

    >>> profile_file("data/train.csv", "csv")["rows"]  # doctest: +SKIP
    1000000
    """
    import duckdb

    if fmt not in _READERS:
        raise NbtrackError(f"cannot profile {fmt!r} files")
    src = "'" + os.fspath(path).replace("'", "''") + "'"
    con = duckdb.connect()
    try:
        profile = _profile_relation(con, _READERS[fmt].format(src=src))
    except duckdb.Error as exc:
        raise NbtrackError(f"could not read {os.fspath(path)} as {fmt}: {exc}") from None
    finally:
        con.close()
    profile["format"] = fmt
    return profile


def profile_frame(df: pd.DataFrame) -> dict[str, Any]:
    """Profile an in-memory pandas DataFrame (what ``log_dataset`` records)."""
    import duckdb

    con = duckdb.connect()
    try:
        frame = df.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        con.register("frame", frame)
        profile = _profile_relation(con, "frame")
    finally:
        con.close()
    profile["format"] = "dataframe"
    return profile


# -- comparing two versions -------------------------------------------------------------


def _source_for(client: Client, version: DataVersion) -> Path | None:
    """Where the bytes of ``version`` can be read: the cached blob, or the file itself
    when it still has that hash."""
    digest = version.hash
    if not digest:
        return None
    blob = client.cache.path_for(digest)
    if blob.is_file():
        return blob
    from .hashing import StatCache

    live = client.project.absolute(version.path)
    if live.is_file() and StatCache.for_folder(client.project.folder).hash(live).hash == digest:
        return live
    return None


def profile_version(client: Client, version: DataVersion) -> dict[str, Any] | None:
    """The stored profile of a version, computed (and stored) on first use.

    None when the version is not tabular or its bytes are gone (not cached, pruned).
    """
    if version.hash is None:
        return None
    known = client.get_profile(version.hash)
    if known is not None and known.get("profile_format") == PROFILE_FORMAT:
        return known
    fmt = tabular_format(version.path)
    if fmt is None or version.kind != "file":
        return None
    source = _source_for(client, version)
    if source is None:
        return None
    try:
        profile = profile_file(source, fmt)
    except NbtrackError:
        return None
    client.put_profile(version.hash, profile)
    return profile


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return b - a
    return None


STAT_KEYS = ("null_fraction", "distinct", "min", "max", "mean")


def compare_profiles(pa: dict[str, Any], pb: dict[str, Any]) -> dict[str, Any]:
    """What changed between two profiles: rows, columns added / removed / retyped,
    and per-column statistics with their change."""
    cols_a = {c["name"]: c for c in pa["columns"]}
    cols_b = {c["name"]: c for c in pb["columns"]}
    added = [n for n in cols_b if n not in cols_a]
    removed = [n for n in cols_a if n not in cols_b]
    retyped = [
        {"name": n, "a": cols_a[n]["type"], "b": cols_b[n]["type"]}
        for n in cols_a
        if n in cols_b and cols_a[n]["type"] != cols_b[n]["type"]
    ]
    columns: list[dict[str, Any]] = []
    for name in [n for n in cols_b if n in cols_a]:
        ca, cb = cols_a[name], cols_b[name]
        stats = {}
        for key in STAT_KEYS:
            if key in ca or key in cb:
                va, vb = ca.get(key), cb.get(key)
                stats[key] = {"a": va, "b": vb, "delta": _delta(va, vb), "changed": va != vb}
        columns.append(
            {
                "name": name,
                "type": cb["type"],
                "changed": any(s["changed"] for s in stats.values()) or ca["type"] != cb["type"],
                "stats": stats,
            }
        )
    rows_a, rows_b = pa["rows"], pb["rows"]
    result = {
        "kind": "table",
        "format": pb.get("format"),
        "rows": {"a": rows_a, "b": rows_b, "delta": rows_b - rows_a},
        "columns_added": added,
        "columns_removed": removed,
        "columns_retyped": retyped,
        "columns": columns,
        "changed": bool(
            added or removed or retyped or rows_a != rows_b or any(c["changed"] for c in columns)
        ),
    }
    result["summary"] = _summary(result)
    return result


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _summary(diff: dict[str, Any]) -> list[str]:
    """The diff as a few human lines (what the CLI and the panel print)."""
    rows = diff["rows"]
    lines = [f"rows {rows['a']} → {rows['b']} ({rows['delta']:+d})"]
    if diff["columns_added"]:
        lines.append("columns added: " + ", ".join(diff["columns_added"]))
    if diff["columns_removed"]:
        lines.append("columns removed: " + ", ".join(diff["columns_removed"]))
    for r in diff["columns_retyped"]:
        lines.append(f"{r['name']}: type {r['a']} → {r['b']}")
    for col in diff["columns"]:
        moved = []
        for key, stat in col["stats"].items():
            if not stat["changed"]:
                continue
            label = "nulls" if key == "null_fraction" else key
            if key == "null_fraction":
                moved.append(f"{label} {stat['a']:.1%} → {stat['b']:.1%}")
            else:
                moved.append(f"{label} {_short(stat['a'])} → {_short(stat['b'])}")
        if moved:
            lines.append(f"{col['name']}: " + ", ".join(moved))
    return lines


def compare_versions(client: Client, a: DataVersion, b: DataVersion) -> dict[str, Any] | None:
    """The data diff of two versions of a tabular file or of a folder; None otherwise.

    Every result has ``summary``: a few human lines to print. When one side's bytes are gone, the result says so (``"missing": ["a"]``) instead
    of inventing a comparison.
    """
    tabular = (a.kind == "dataframe" and b.kind == "dataframe") or (
        a.kind == "file"
        and b.kind == "file"
        and tabular_format(a.path) is not None
        and tabular_format(b.path) is not None
    )
    if a.kind == "dir" and b.kind == "dir":
        from .versioning import compare_folders

        return compare_folders(client.cache, a, b)
    if not tabular:
        return None
    pa, pb = profile_version(client, a), profile_version(client, b)
    if pa is None or pb is None:
        missing = [side for side, p in (("a", pa), ("b", pb)) if p is None]
        return {
            "kind": "table",
            "missing": missing,
            "reason": "the bytes of that version are not in the cache and the file has changed",
            "summary": [f"no profile for version {' and '.join(missing)}: its bytes are gone"],
        }
    return compare_profiles(pa, pb)
