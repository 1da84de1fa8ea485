"""The store's schema: creation, versioned upgrades, refusal of what is not ours."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from .._version import __version__
from ..duckdb_config import connect_duckdb
from ..exceptions import NotAStoreError, StoreError, StoreVersionError
from .integrity import first_line

SCHEMA_VERSION = 7


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
    3: """
CREATE TABLE named_inputs (
    run_id VARCHAR NOT NULL, name VARCHAR NOT NULL, type VARCHAR, origin VARCHAR,
    shape VARCHAR, fingerprint VARCHAR, producer_run_id VARCHAR, producer_cell VARCHAR,
    execution_count INTEGER, stale BOOLEAN, reason VARCHAR, note VARCHAR,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX named_inputs_producer ON named_inputs (producer_run_id);
""",
    # Metric points have their own log beside the event spool (points.py): how many
    # of its records are in, as spool_offset says for the events.
    4: """
ALTER TABLE runs ADD COLUMN points_offset BIGINT DEFAULT 0;
""",
    # The model registry (docs/models.md). Alias moves are kept for ever in
    # model_alias_history; model_aliases is derived from it (the latest move of
    # each alias), so merging two stores' histories is a union plus a recompute.
    5: """
CREATE TABLE registered_models (
    name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
    description VARCHAR, tags VARCHAR NOT NULL DEFAULT '{}'
);
CREATE TABLE model_versions (
    name VARCHAR NOT NULL, version INTEGER NOT NULL, version_id VARCHAR NOT NULL UNIQUE,
    flavor VARCHAR NOT NULL, flavor_meta VARCHAR NOT NULL DEFAULT '{}', signature VARCHAR,
    input_example VARCHAR, env VARCHAR NOT NULL DEFAULT '{}', hash VARCHAR NOT NULL,
    size BIGINT, file_name VARCHAR NOT NULL, run_id VARCHAR, source_path VARCHAR,
    created_at TIMESTAMP NOT NULL, description VARCHAR, tags VARCHAR NOT NULL DEFAULT '{}',
    archived BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_run ON model_versions (run_id);
CREATE INDEX model_versions_hash ON model_versions (hash);
CREATE TABLE model_aliases (
    name VARCHAR NOT NULL, alias VARCHAR NOT NULL, version INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL, PRIMARY KEY (name, alias)
);
CREATE TABLE model_alias_history (
    move_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, alias VARCHAR NOT NULL,
    seq BIGINT NOT NULL, moved_at TIMESTAMP NOT NULL, from_version INTEGER, to_version INTEGER,
    host VARCHAR, user_name VARCHAR
);
""",
    # Re-run anything (docs/pipelines.md): the code a kernel session ran before each run
    # (a cache manifest of cell sources, code_hash), the kernel, interpreter and working
    # folder it ran in, and a re-run's verdict word.
    6: """
ALTER TABLE runs ADD COLUMN code_hash VARCHAR;
ALTER TABLE runs ADD COLUMN kernel_name VARCHAR;
ALTER TABLE runs ADD COLUMN executable VARCHAR;
ALTER TABLE runs ADD COLUMN rerun_verdict VARCHAR;
ALTER TABLE runs ADD COLUMN cwd VARCHAR;
""",
}

# Files already checked by this process (path, inode): later opens cost nothing.
_checked: set[tuple[str, int]] = set()

Opener = Callable[[], duckdb.DuckDBPyConnection]


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def ensure(path: Path, open_: Opener, *, keep: bool = False) -> duckdb.DuckDBPyConnection | None:
    """Create a new store, upgrade an old one (after a backup), refuse others.

    Checked once per process per file (by inode), so later calls cost nothing.
    Called with the store's turn held (see ``connection``), so one process at a time.
    ``keep``: return the connection the check opened instead of closing it (a
    DuckDB instance costs ~10 ms to start: a one-shot command opens one, not two).
    """
    if path.exists():
        st = path.stat()
        key = (str(path), st.st_ino)
        if key in _checked:
            return None
        if st.st_size == 0:
            # A 0-byte file (a full disk under an older nbtrack, a `touch`) holds
            # nothing: a new store replaces it, nothing is lost.
            _create_atomically(path, replace=True)
    else:
        _create_atomically(path, replace=False)
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
            keep = False  # a migrated file is opened afresh
    except BaseException:
        con.close()
        raise
    _checked.add((str(path), path.stat().st_ino))
    if keep:
        return con
    con.close()
    return None


def current(path: Path, con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store attached on ``con`` (its default database) is at this
    nbtrack's schema version; remembered as checked if so.

    A command's first turn checks the version on the attachment it reads through,
    instead of opening a DuckDB instance of its own for ``ensure`` (~15-30 ms at
    every start); anything else (a new, old, newer or foreign file) goes to ``ensure``.
    """
    key = (str(path), path.stat().st_ino)
    if key in _checked:
        return True
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except duckdb.Error:
        return False
    if row is None or row[0] != str(SCHEMA_VERSION):
        return False
    _checked.add(key)
    return True


def checked(path: Path) -> bool:
    """Whether this process already checked (or made) the store at ``path``."""
    try:
        return (str(path), path.stat().st_ino) in _checked
    except OSError:
        return False


def _create_atomically(path: Path, *, replace: bool) -> None:
    """A new, empty store at ``path``, or nothing at all (a full disk, say).

    The schema is built in a temporary file beside it (``runs.duckdb.tmp-XXXX``),
    checkpointed, and only then renamed into place: nobody ever sees a 0-byte or
    half-made store, and a failure leaves no file behind.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=path.name + ".tmp-", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # DuckDB creates the file itself; the name is ours
    try:
        con = connect_duckdb(str(tmp))
        try:
            create(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # never over a store another process just made
    except (OSError, duckdb.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise StoreError(f"cannot create the store {path}: {reason}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


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


def copy_aside(path: Path, dest: Path) -> None:
    """``path`` copied to ``dest`` whole or not at all: a copy a full disk cut short was
    left as a backup (one an upgrade would later have taken for a good one)."""
    part = dest.with_name(dest.name + ".part")
    try:
        shutil.copy2(path, part)
        os.replace(part, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise StoreError(
            f"cannot back {path} up ({exc.strerror or exc}); nothing was changed: "
            "free some space and try again"
        ) from None


def migrate(path: Path, con: duckdb.DuckDBPyConnection, version: int) -> None:
    """Upgrade in one transaction, after a backup (one per source version, not per try)."""
    con.execute("CHECKPOINT")
    backup = _backup_of_version(path, version)
    if backup is None:
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        backup = path.with_name(f"{path.name}.v{version}-{stamp}.bak")
        copy_aside(path, backup)
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
