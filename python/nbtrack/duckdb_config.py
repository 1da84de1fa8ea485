"""How nbtrack opens every DuckDB connection, store or not: no extension behind the user's back.

DuckDB installs and loads "known" extensions on its own when a query needs one: a
SQLite file named ``runs.duckdb`` made it try to download its SQLite extension. None
can be downloaded here, and a download is a surprise anywhere, so every connection
nbtrack opens (the store, profiles of the user's files, the filter parser) goes
through ``connect_duckdb``, which turns both off.
"""

from __future__ import annotations

from typing import Any

import duckdb

SAFE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def connect_duckdb(
    database: str = ":memory:", *, read_only: bool = False, config: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with extension auto-install and auto-load off."""
    return duckdb.connect(database, read_only=read_only, config={**SAFE_CONFIG, **(config or {})})
