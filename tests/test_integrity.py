"""Damaged and foreign store files: one line saying what to do, the file left as it was.

Each case is a real file damaged for real (truncated, bytes flipped, a SQLite file,
a garbage write-ahead log), then the command line asked what a user would ask.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from conftest import run_cli
from factory import record_run
from nbtrack.project import Project, resolve_project
from nbtrack.store import Store

BLOCK = 262144  # DuckDB's block size; the file starts with three 4 KiB headers
HEADERS = 3 * 4096


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(project_dir: Path) -> Project:
    project = resolve_project(project_dir)
    loss = [1 / (step + 1) for step in range(100)]
    for i in range(5):
        record_run(project, f"r{i}", params={"lr": i / 10}, metrics={"loss": loss})
    return project


def truncate_to_half(project: Project) -> Path:
    os.truncate(project.db_path, project.db_path.stat().st_size // 2)
    return project.db_path


def flip_bytes_in_data_blocks(project: Project) -> Path:
    data = bytearray(project.db_path.read_bytes())
    for start in range(HEADERS, len(data) - 200, BLOCK):
        for i in range(start + 64, start + 128):  # past the block's checksum
            data[i] ^= 0xFF
    project.db_path.write_bytes(bytes(data))
    return project.db_path


def schema_version_abc(project: Project) -> Path:
    with duckdb.connect(str(project.db_path)) as con:
        con.execute("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'")
    return project.db_path


def sqlite_named_runs_duckdb(project: Project) -> Path:
    project.db_path.unlink()
    con = sqlite3.connect(project.db_path)
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    return project.db_path


def garbage_wal(project: Project) -> Path:
    wal = project.db_path.with_name("runs.duckdb.wal")
    wal.write_bytes(b"this is not a write-ahead log" * 50)
    return wal


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (truncate_to_half, "is damaged"),
        (flip_bytes_in_data_blocks, "is damaged"),
        (schema_version_abc, "schema version 'abc', not a number"),
        (sqlite_named_runs_duckdb, "is a SQLite database"),
        (garbage_wal, "is not a DuckDB write-ahead log"),
    ],
)
def test_a_damaged_store_is_one_line_with_what_to_do_and_left_untouched(
    project: Project, damage: Callable[[Project], Path], message: str
) -> None:
    damaged = damage(project)
    before = sha(damaged)
    for verb in (["ls"], ["ls", "--where", "lr > 0"]):
        r = run_cli(*verb, cwd=project.root)
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert message in r.stderr and "nbtrack doctor" in r.stderr or "SQLite" in r.stderr
    assert sha(damaged) == before
    assert damaged.exists()


def test_no_extension_is_ever_downloaded_for_a_foreign_file(project: Project) -> None:
    sqlite_named_runs_duckdb(project)
    r = run_cli("ls", cwd=project.root)
    assert r.returncode == 1 and "SQLite database" in r.stderr
    assert "Extension" not in r.stderr and "INSTALL" not in r.stderr
    assert not list((Path.home() / ".duckdb" / "extensions").glob("**/sqlite*"))


def test_a_store_folder_that_is_a_file_is_named_in_one_line(project_dir: Path) -> None:
    (project_dir / ".nbtrack").write_text("not a folder")
    r = run_cli("ls", cwd=project_dir)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert ".nbtrack is a file, not a folder" in r.stderr
    assert (project_dir / ".nbtrack").read_text() == "not a folder"


def test_a_failing_upgrade_is_one_line_and_backs_up_once_however_often_retried(
    project_dir: Path,
) -> None:
    project = resolve_project(project_dir)
    Store(project.db_path).create_v1_for_tests()
    with duckdb.connect(str(project.db_path)) as con:
        con.execute("CREATE TABLE profiles (mine INTEGER)")  # what upgrade 1 → 2 creates
    for _ in range(3):
        r = run_cli("ls", cwd=project_dir)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "from schema version 1 to" in r.stderr and "left at version 1" in r.stderr
    backups = list(project.folder.glob("runs.duckdb.v1-*.bak"))
    assert len(backups) == 1 and backups[0].name in r.stderr
    with duckdb.connect(str(project.db_path), read_only=True) as con:
        assert con.execute("SELECT value FROM meta").fetchall() == [("1",)]


def test_every_connection_has_extension_auto_install_and_auto_load_off(project: Project) -> None:
    query = (
        "SELECT current_setting('autoinstall_known_extensions') AS install, "
        "current_setting('autoload_known_extensions') AS load"
    )
    r = run_cli("sql", "--json", query, cwd=project.root)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"install": False, "load": False}]


def test_a_store_in_a_folder_whose_name_is_not_utf_8_is_one_line(tmp_path: Path) -> None:
    # given a project folder named with a byte that is not UTF-8 (an old archive, say)
    folder = tmp_path / os.fsdecode(b"proj\xff")
    (folder / ".nbtrack").mkdir(parents=True)
    # when a user lists its runs: one line that says what to do (every command was a
    # DuckDB InvalidInputException traceback: DuckDB takes UTF-8 paths only)
    done = run_cli("ls", cwd=folder)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "is not UTF-8" in done.stderr and "NBTRACK_STORE" in done.stderr
