"""The files DuckDB's SQL names, as a tracked cell's reads and writes."""

from __future__ import annotations

from pathlib import Path

from nbtrack.libhooks import sql_files


def test_quoted_files_and_globs_are_reads_and_copy_to_is_a_write(project_dir: Path) -> None:
    # given a project with a few files
    (project_dir / "a.csv").write_text("k\n1\n")
    (project_dir / "b.parquet").write_bytes(b"PAR1")
    (project_dir / "d").mkdir()
    (project_dir / "d" / "x.csv").write_text("k\n2\n")
    # when SQL names them as tables, in a list, as a glob, quoted either way
    sql = (
        "COPY (SELECT * FROM 'a.csv' JOIN read_parquet(['b.parquet', 'd/*.csv']) USING (k)"
        " JOIN \"a.csv\" USING (k)) TO 'out.parquet' (FORMAT parquet)"
    )
    # then each existing file is a read and the COPY target a write
    assert sql_files(sql) == [
        ("a.csv", "read"),
        ("b.parquet", "read"),
        ("d/x.csv", "read"),
        ("a.csv", "read"),
        ("out.parquet", "write"),
    ]


def test_text_that_is_not_a_file_is_not_a_read(project_dir: Path) -> None:
    (project_dir / "1").write_text("a file whose name is a digit")
    sql = (
        "SELECT 'it''s', s LIKE '*', regexp_matches(s, '[0-9]'), 'missing.csv', "
        "'s3://bucket/x.parquet' FROM t WHERE name = 'nothing here'"
    )
    assert sql_files(sql) == []


def test_an_attached_database_is_read(project_dir: Path) -> None:
    (project_dir / "shop.duckdb").write_bytes(b"")
    assert sql_files("ATTACH DATABASE IF NOT EXISTS 'shop.duckdb' AS shop") == [
        ("shop.duckdb", "database")
    ]
