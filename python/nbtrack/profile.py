"""Profiles of tabular data: what one DuckDB pass says about a table.

A profile is what one DuckDB pass over a CSV, Parquet, JSON-lines or Feather file (or
an in-memory DataFrame) says about it: the row count and, per column, its type, null
fraction, distinct count (HyperLogLog estimate, ``approx_count_distinct``) and, for
numbers, min / max / mean. This module only computes them; ``datacompare.py`` keeps
them per content hash (through the client) and compares two versions.

This module runs SQL over the *user's data files* with a private in-memory DuckDB
connection; SQL over the runs store stays in the store package.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
from typing import TYPE_CHECKING, Any

from .exceptions import NbtrackError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

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
    ".feather": "feather",
    ".arrow": "feather",
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
    """``"csv"``, ``"tsv"``, ``"csv.gz"``, ``"parquet"``, ``"jsonl"`` or ``"feather"`` (Arrow
    IPC) from a file name; None otherwise."""
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

    if fmt not in _READERS and fmt != "feather":
        raise NbtrackError(f"cannot profile {fmt!r} files")
    from .duckdb_config import connect_duckdb

    src = "'" + os.fspath(path).replace("'", "''") + "'"
    con = connect_duckdb()
    try:
        if fmt == "feather":  # DuckDB reads Arrow IPC only through an extension: pyarrow does
            from pyarrow import feather

            con.register("feather_table", feather.read_table(os.fspath(path), memory_map=True))
            profile = _profile_relation(con, "feather_table")
        else:
            profile = _profile_relation(con, _READERS[fmt].format(src=src))
    except (duckdb.Error, OSError, ValueError) as exc:  # pyarrow's errors are OSError/ValueError
        raise NbtrackError(f"could not read {os.fspath(path)} as {fmt}: {exc}") from None
    finally:
        con.close()
    profile["format"] = fmt
    return profile


def profile_frame(df: pd.DataFrame) -> dict[str, Any]:
    """Profile an in-memory pandas DataFrame (what ``log_dataset`` records)."""
    from .duckdb_config import connect_duckdb

    con = connect_duckdb()
    try:
        frame = df.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        con.register("frame", frame)
        profile = _profile_relation(con, "frame")
    finally:
        con.close()
    profile["format"] = "dataframe"
    return profile
