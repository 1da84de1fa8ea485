"""Profiles of tabular data: what one DuckDB pass says about a table.

A profile is what one DuckDB pass over a CSV, Parquet, JSON-lines or Feather file (or
an in-memory DataFrame) says about it: the row count and, per column, its type, null
fraction, distinct count (HyperLogLog estimate, ``approx_count_distinct``) and, for
numbers, min / max / mean. This module only computes them; ``datacompare.py`` keeps
them per content hash (through the client) and compares two versions.

This module runs SQL over the *user's data files* with a private in-memory DuckDB
instance; SQL over the runs store stays in the store package.

What it costs is paid at the end of a tracked cell whose input changed (the drift
alert), so: one DuckDB instance per process, made once (~20 ms of CPU), with a cursor
per thread (a DuckDB connection is not thread-safe; its cursors are), except for text
files over 8 MB (see ``SHARED_MAX_BYTES``); and a text file
(CSV, JSON lines) parsed once, into a temporary table every statistic then reads. Each
parse of a CSV sniffs its dialect and types first, which for a file of a few thousand
rows costs ten times the parse itself.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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
    # fetchall, not fetchone: a result left open blocks the cursor's next register()
    (row,) = con.execute(f"SELECT {', '.join(parts)} FROM {source_sql}").fetchall()
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

    drift = sketch_columns(con, source_sql, profiled, _is_numeric, rows)
    return {"profile_format": PROFILE_FORMAT, "rows": rows, "columns": profiled, "drift": drift}


_shared: duckdb.DuckDBPyConnection | None = None
_shared_lock = threading.Lock()
_local = threading.local()  # .cursor: (the instance it belongs to, this thread's cursor)
_TEXT_SOURCE = "_nbtrack_source"
SHARED_MAX_BYTES = 8 * 1024 * 1024  # larger text files are parsed in an instance of their own


def _size(path: str | os.PathLike[str]) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # DuckDB says what is wrong with it


def _cursor() -> duckdb.DuckDBPyConnection:
    """This thread's cursor on the process's in-memory DuckDB instance for profiles."""
    global _shared
    shared, mine = _shared, getattr(_local, "cursor", None)
    if mine is not None and shared is not None and mine[0] is shared:
        return mine[1]
    with _shared_lock:
        if _shared is None:
            from .duckdb_config import connect_duckdb

            _shared = connect_duckdb()
        shared = _shared
        cursor = shared.cursor()
    _local.cursor = (shared, _quiet(cursor))
    return cursor


def _quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    import duckdb

    # No bar under a notebook cell. DuckDB refuses the setting in a kernel without
    # ipywidgets, where it draws no bar anyway.
    with suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false").fetchall()
    return con


def _forget_instance() -> None:
    """After a fatal error DuckDB refuses every query on the instance this thread's
    cursor belongs to: the next profile, in any thread, makes a new one."""
    global _shared
    broken = getattr(_local, "cursor", (None,))[0]
    with _shared_lock:
        if _shared is broken:
            _shared = None


def _after_fork_in_child() -> None:
    # A forked child must not use its parent's instance (its threads did not come
    # along) nor destroy it: it keeps it for good, as the store's connections do, and
    # makes its own when it profiles.
    global _shared_lock, _shared
    _shared_lock = threading.Lock()  # another thread may have held it at the fork
    from .duckdb_config import keep_forever

    if _shared is not None:
        keep_forever(_shared)
        _shared = None
    mine = getattr(_local, "cursor", None)
    if mine is not None:
        keep_forever(mine)
        del _local.cursor


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, data: Any) -> Iterator[str]:
    con.register(name, data)
    try:
        yield name
    finally:
        con.unregister(name)


def profile_file(path: str | os.PathLike[str], fmt: str) -> dict[str, Any]:
    """Profile a tabular file read as ``fmt`` (see :func:`tabular_format`).

    >>> profile_file("data/train.csv", "csv")["rows"]  # doctest: +SKIP
    1000000
    """
    import duckdb

    if fmt not in _READERS and fmt != "feather":
        raise NbtrackError(f"cannot profile {fmt!r} files")
    src = "'" + os.fspath(path).replace("'", "''") + "'"
    # DuckDB keeps the memory of a parsed table once it is dropped (~50 MB after a 16 MB
    # CSV), which a kernel would carry for good: a large text file gets an instance of
    # its own, closed after; its start (~20 ms) is little beside such a parse.
    private = fmt not in ("parquet", "feather") and _size(path) > SHARED_MAX_BYTES
    if private:
        from .duckdb_config import connect_duckdb

        con = _quiet(connect_duckdb())
    else:
        con = _cursor()
    try:
        if fmt == "feather":  # DuckDB reads Arrow IPC only through an extension: pyarrow does
            from pyarrow import feather

            table = feather.read_table(os.fspath(path), memory_map=True)
            with _registered(con, "feather_table", table) as name:
                profile = _profile_relation(con, name)
        elif fmt == "parquet":  # columnar: each statistic reads its columns where they are
            profile = _profile_relation(con, _READERS[fmt].format(src=src))
        else:
            try:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {_TEXT_SOURCE} AS "
                    f"SELECT * FROM {_READERS[fmt].format(src=src)}"
                ).fetchall()
                profile = _profile_relation(con, _TEXT_SOURCE)
            finally:
                # fetched: DuckDB refuses a cursor's next register() while a result is open
                con.execute(f"DROP TABLE IF EXISTS {_TEXT_SOURCE}").fetchall()
    except (duckdb.Error, OSError, ValueError) as exc:  # pyarrow's errors are OSError/ValueError
        if isinstance(exc, duckdb.FatalException) and not private:
            _forget_instance()
        raise NbtrackError(f"could not read {os.fspath(path)} as {fmt}: {exc}") from None
    finally:
        if private:
            con.close()
    profile["format"] = fmt
    return profile


def profile_frame(df: pd.DataFrame) -> dict[str, Any]:
    """Profile an in-memory pandas DataFrame (what ``log_dataset`` records)."""
    con = _cursor()
    frame = df.copy(deep=False)
    frame.columns = [str(c) for c in frame.columns]
    with _registered(con, "frame", frame) as name:
        profile = _profile_relation(con, name)
    profile["format"] = "dataframe"
    return profile
