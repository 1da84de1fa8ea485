"""How nbtrack opens every DuckDB connection, store or not: no extension behind the user's back.

DuckDB installs and loads "known" extensions on its own when a query needs one: a
SQLite file named ``runs.duckdb`` made it try to download its SQLite extension. None
can be downloaded here, and a download is a surprise anywhere, so every connection
nbtrack opens (the store, profiles of the user's files, the filter parser) goes
through ``connect_duckdb``, which turns both off.
"""

from __future__ import annotations

import ctypes
from typing import Any

import duckdb

SAFE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def connect_duckdb(
    database: str = ":memory:", *, read_only: bool = False, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with extension auto-install and auto-load off; DuckDB out of
    memory at the connect (a small ``ulimit -v``) is Python's ``MemoryError``."""
    try:
        return duckdb.connect(
            database, read_only=read_only, config={**SAFE_CONFIG, **(config or {})}
        )
    except duckdb.OutOfMemoryException as exc:
        raise MemoryError(str(exc)) from None


def keep_forever(obj: object) -> None:
    """In a forked child, keep the parent's DuckDB instance (or what holds one) alive for
    good: one reference more, never given back. Dropping the last reference would run
    DuckDB's destructor, which joins threads that did not come along, and the child
    would crash (SIGSEGV) when it exits."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
