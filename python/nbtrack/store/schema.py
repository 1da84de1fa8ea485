"""The store's schema: creation, versioned upgrades, refusal of what is not ours."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from .._version import __version__
from ..duckdb_config import connect_duckdb
from ..exceptions import NotAStoreError, StoreError, StoreVersionError
from .integrity import first_line

SCHEMA_VERSION = 3


# Version 1: the first public schema. Kept verbatim: tests build a v1 file with it
# to prove the upgrade path, and MIGRATIONS[1] upgrades it.
SCHEMA_V1 = """
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, name VARCHAR,
    status VARCHAR NOT NULL, error VARCHAR,
    started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP,
    parent_id VARCHAR, rerun_of VARCHAR,
    notebook_path VARCHAR, cell_id VARCHAR, execution_count INTEGER, session_id VARCHAR,
    source VARCHAR, notebook_hash VARCHAR, code_matches_notebook BOOLEAN,
    git_commit VARCHAR, git_dirty BOOLEAN, git_diff VARCHAR,
    env_id VARCHAR, host VARCHAR, pid INTEGER,
    spool_offset BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMP NOT NULL
);
CREATE TABLE params (
    run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR, value_num DOUBLE,
    value_text VARCHAR, source VARCHAR, PRIMARY KEY (run_id, key)
);
CREATE TABLE metrics (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, step BIGINT NOT NULL,
    value DOUBLE, ts DOUBLE);
CREATE TABLE data_versions (
    run_id VARCHAR NOT NULL, path VARCHAR NOT NULL, role VARCHAR NOT NULL, hash VARCHAR,
    size BIGINT, kind VARCHAR, in_project BOOLEAN, cached BOOLEAN, mtime DOUBLE,
    PRIMARY KEY (run_id, path, role)
);
CREATE TABLE tags (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR,
    PRIMARY KEY (run_id, key));
CREATE TABLE environments (env_id VARCHAR PRIMARY KEY, python VARCHAR, platform VARCHAR,
    packages VARCHAR);
"""

# Each entry upgrades version N to N+1, inside one transaction.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE metric_latest (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, step BIGINT,
    value DOUBLE, ts DOUBLE, n BIGINT, PRIMARY KEY (run_id, key));
INSERT INTO metric_latest
    SELECT run_id, key, max(step), arg_max(value, step * 1e12 + ts),
           max(ts), count(*) FROM metrics GROUP BY run_id, key;
CREATE TABLE profiles (hash VARCHAR PRIMARY KEY, profile VARCHAR, created_at TIMESTAMP);
""",
    2: """
CREATE INDEX params_run ON params (run_id);
CREATE INDEX metric_latest_run ON metric_latest (run_id);
CREATE INDEX data_versions_run ON data_versions (run_id);
CREATE INDEX tags_run ON tags (run_id);
""",
}

# Files already checked by this process (path, inode): later opens cost nothing.
_checked: set[tuple[str, int]] = set()

Opener = Callable[[], duckdb.DuckDBPyConnection]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def ensure(path: Path, open_: Opener) -> None:
    """Create a new store, upgrade an old one (after a backup), refuse others.

    Checked once per process per file (by inode), so later calls cost nothing.
    """
    if path.exists():
        key = (str(path), path.stat().st_ino)
        if key in _checked:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    con = open_()
    try:
        version = schema_version(path, con)
        if version == 0:
            create(con)
        elif version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{path} has schema version {version}, newer than this nbtrack "
                f"understands ({SCHEMA_VERSION}); upgrade nbtrack to use it. "
                "The file was left untouched."
            )
        elif version < SCHEMA_VERSION:
            migrate(path, con, version)
    finally:
        con.close()
    _checked.add((str(path), path.stat().st_ino))


def schema_version(path: Path, con: duckdb.DuckDBPyConnection) -> int:
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not tables:
        return 0
    if "meta" not in tables or "runs" not in tables:
        raise NotAStoreError(
            f"{path} is a DuckDB file but not an nbtrack store "
            f"(tables: {', '.join(sorted(tables))}); it was left untouched"
        )
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise NotAStoreError(
            f"{path} has no schema version; it was left untouched; run `nbtrack doctor`"
        )
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise NotAStoreError(
            f"{path} has schema version {row[0]!r}, not a number; it was left untouched; "
            "run `nbtrack doctor`"
        ) from None


def create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    con.execute(SCHEMA_V1)
    for v in range(1, SCHEMA_VERSION):
        con.execute(MIGRATIONS[v])
    con.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [
            ("schema_version", str(SCHEMA_VERSION)),
            ("created_at", utcnow().isoformat()),
            ("created_by", f"nbtrack {__version__}"),
        ],
    )
    con.execute("COMMIT")


def migrate(path: Path, con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Upgrade in one transaction, after a backup (one per source version, not per try)."""
    con.execute("CHECKPOINT")
    backup = _backup_of_version(path, version)
    if backup is None:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        backup = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
        shutil.copy2(path, backup)
    con.execute("BEGIN TRANSACTION")
    try:
        for v in range(version, SCHEMA_VERSION):
            con.execute(MIGRATIONS[v])
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise StoreError(
            f"upgrading {path} from schema version {version} to {SCHEMA_VERSION} failed "
            f"({first_line(exc)}); the store was left at version {version} and a backup is "
            f"at {backup.name}; run `nbtrack doctor`"
        ) from exc


def _backup_of_version(path: Path, version: int) -> Path | None:
    """An earlier backup of this very file at ``version``: a failing upgrade retried
    on every command would otherwise write a full copy each time."""
    size = path.stat().st_size
    for candidate in sorted(path.parent.glob(f"{path.name}.v{version}-*.bak")):
        if candidate.stat().st_size == size:
            return candidate
    return None


def create_v1(path: Path) -> None:
    """Write an empty version-1 store (to exercise the upgrade path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = connect_duckdb(str(path))
    try:
        con.execute(SCHEMA_V1)
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    finally:
        con.close()


def info(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    runs = con.execute("SELECT count(*) FROM runs").fetchone()
    return {"meta": meta, "runs": runs[0] if runs else 0}
