"""What must hold of the store's files before DuckDB opens them, and what their errors mean.

DuckDB, handed a file that is not its own, does surprising things: a SQLite file makes
it look for its SQLite extension (``duckdb_config`` keeps it from downloading one), a
garbage write-ahead log is skipped without a word (and the writes appended after it
are lost at the next open), a damaged block surfaces as a traceback from whatever
query reads it. So the files
are checked here first (a few bytes read, microseconds), and DuckDB's errors about a
damaged file become one line that says what to do. Every message points at
``nbtrack doctor``, which checks and repairs what is safe to repair.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Collection
from pathlib import Path

import duckdb

from ..exceptions import NotAStoreError, StoreDamagedError, StoreError
from ..project import folder_problem

DUCKDB_MAGIC = b"DUCK"  # at offset 8 of every DuckDB database file
SQLITE_MAGIC = b"SQLite format 3\x00"
#: A DuckDB write-ahead log starts with its version entry: field 100 (the entry
#: type, a little-endian u16) set to WAL_VERSION (98, one varint byte).
WAL_MAGIC = b"d\x00b"
DOCTOR = "run `nbtrack doctor` to check it"


def wal_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".wal")


def store_files(db_path: Path) -> list[Path]:
    """Every file DuckDB opens for the store: the database, its write-ahead log and the
    log a checkpoint writes meanwhile (a checkpoint at the detach of a turn whose
    attach replayed a log another process left: ``connection.turn``)."""
    wal = wal_path(db_path)
    return [db_path, wal, wal.with_name(wal.name + ".checkpoint")]


def check_files(db_path: Path) -> None:
    """Refuse, before DuckDB sees them, store files DuckDB would mishandle.

    Raises ``StoreError`` (the store folder is a file or a broken link), ``NotAStoreError`` (a SQLite
    or other non-DuckDB file) or ``StoreDamagedError`` (a garbage ``.wal``).
    The files are left as they are.
    """
    problem = folder_problem(db_path.parent)
    if problem:
        raise StoreError(problem)
    _check_kind(db_path)
    try:
        with open(db_path, "rb") as fh:
            head = fh.read(16)
    except FileNotFoundError:
        head = None
    except OSError as exc:
        raise StoreError(f"cannot read {db_path}: {exc.strerror}") from None
    if head is not None:
        _check_head(db_path, head)
    _check_wal(wal_path(db_path))


def _check_kind(db_path: Path) -> None:
    # Opening a named pipe waits for a writer that never comes (every command, and the
    # ingestion process, hung for ever); a socket or a device is no store either.
    try:
        mode = os.stat(db_path).st_mode
    except OSError:
        return  # missing (a new store), or unreadable: the open below says which
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return  # a folder: the open below says "Is a directory"
    what = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket or a device"
    raise NotAStoreError(
        f"{db_path} is {what}, not an nbtrack store; it was left untouched: "
        "move it away and put the store file back"
    )


def _check_head(db_path: Path, head: bytes) -> None:
    if not head:
        return  # holds nothing: creating the store replaces it (see schema.ensure)
    if head.startswith(SQLITE_MAGIC):
        raise NotAStoreError(
            f"{db_path} is a SQLite database, not an nbtrack store; it was left untouched"
        )
    if head[8:12] != DUCKDB_MAGIC:
        raise NotAStoreError(
            f"{db_path} is not an nbtrack store (not a DuckDB file); it was left untouched; "
            + DOCTOR
        )


def _check_wal(wal: Path) -> None:
    try:
        with open(wal, "rb") as fh:
            head = fh.read(len(WAL_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {wal}: {exc.strerror}") from None
    if head and head != WAL_MAGIC:
        raise StoreDamagedError(
            f"{wal} is not a DuckDB write-ahead log (DuckDB would skip it and lose the "
            "writes made after it); it was left in place: "
            "run `nbtrack doctor --repair` to move it aside"
        )


def is_damage(exc: duckdb.Error) -> bool:
    """Whether a DuckDB error says the file is damaged (not that a query was wrong)."""
    detail = first_line(exc)
    return isinstance(
        exc, (duckdb.IOException, duckdb.InternalException, duckdb.FatalException)
    ) or ("Corrupt" in detail or "checksum" in detail)


_FOREIGN_WAL = ("does not match the database", "created for a newer", "different database")


def damaged(db_path: Path, exc: duckdb.Error) -> StoreError:
    """The one-line error for a DuckDB error met while using the store file."""
    detail = first_line(exc)
    if "No space left" in str(exc):  # (a failed checkpoint says it on a later line)
        return StoreError(
            f"no space left on the disk holding {db_path} ({detail}); free some space and try again"
        )
    if "Read-only file system" in detail:
        return StoreError(
            f"the store {db_path} is on a read-only file system ({detail}); nbtrack writes"
            " there even to read (runs still spooled come in first): make it writable,"
            " or set NBTRACK_STORE to a writable copy"
        )
    if "WAL" in detail and any(m in detail for m in _FOREIGN_WAL):
        # A copy put in place of the file (going back to a backup) beside the log of the
        # file it replaced: DuckDB refuses to replay it, and no command could open the store.
        return StoreDamagedError(
            f"the write-ahead log {wal_path(db_path)} belongs to another version of "
            f"{db_path.name} (was a copy or backup put in its place?) ({detail}); both were "
            "left untouched; `nbtrack doctor --repair` sets the log aside"
        )
    if is_damage(exc):
        return StoreDamagedError(
            f"the store file {db_path} is damaged ({detail}); it was left untouched; "
            "run `nbtrack doctor`"
        )
    gone = _MISSING_TABLE.search(detail) if isinstance(exc, duckdb.CatalogException) else None
    if gone and gone.group(1) in CORE_TABLES:
        return missing_tables(db_path, {gone.group(1)})
    return StoreError(f"{db_path}: {detail}")


# The tables every store of the current schema holds (``schema.py``).
CORE_TABLES = frozenset(
    {"meta", "runs", "params", "metrics", "metric_latest", "data_versions", "tags"}
    | {"environments", "profiles", "named_inputs"}
)
_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist")


def missing_tables(db_path: Path, names: Collection[str]) -> StoreError:
    """A store some of whose tables are gone: the thirteenth trial's `nbtrack sql --write
    "DROP TABLE runs"`, after which every command said "Catalog Error: Table with name
    runs does not exist!" and `doctor` called the file ok. Names the backup to go back to."""
    backups = sorted(db_path.parent.glob(f"{db_path.name}.*.bak"), key=os.path.getmtime)
    back = (
        f"the newest backup beside it is {backups[-1].name}: copy it over {db_path.name} to go back"
        if backups
        else "no backup of it is beside it"
    )
    return StoreError(
        f"the store {db_path} has no table {', '.join(sorted(names))} (dropped, with "
        f"`nbtrack sql --write`?); {back}"
    )


def read_everything(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table, after reading every value of every table.

    DuckDB has no integrity check, but every block it reads is checked against its
    checksum: hashing every column reads every block, so a damaged one surfaces here.
    """
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    counts: dict[str, int] = {}
    for table in sorted(tables):
        name = '"' + table.replace('"', '""') + '"'
        row = con.execute(f"SELECT count(*), max(hash(COLUMNS(*))) FROM {name}").fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def set_aside(path: Path, reason: str) -> Path:
    """Rename ``path`` to ``<name>.<reason>-<time>`` beside it (never deleted); the new path."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    dest = path.with_name(f"{path.name}.{reason}-{stamp}")
    os.replace(path, dest)
    return dest


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_duckdb_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a DuckDB database file."""
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False
