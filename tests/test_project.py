"""Which store a notebook uses: the one rule shared by kernel, CLI and server."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrack.project import resolve_project


def test_the_nearest_ancestor_with_a_store_wins(project_dir: Path):
    (project_dir / ".nbtrack").mkdir()
    deep = project_dir / "a" / "b"
    deep.mkdir(parents=True)
    (project_dir / "a" / ".nbtrack").mkdir()
    assert resolve_project(deep).folder == project_dir / "a" / ".nbtrack"
    assert resolve_project(project_dir / "a" / "b" / "nb.ipynb").root == project_dir / "a"


def test_a_new_store_goes_to_the_git_root_else_the_folder(project_dir: Path):
    sub = project_dir / "repo" / "notebooks"
    sub.mkdir(parents=True)
    assert resolve_project(sub).folder == sub / ".nbtrack"
    (project_dir / "repo" / ".git").mkdir()
    p = resolve_project(sub)
    assert (
        p.root == project_dir / "repo"
        and p.db_path == project_dir / "repo" / ".nbtrack" / "runs.duckdb"
    )
    assert not p.folder.exists()  # resolving creates nothing


def test_nbtrack_store_names_a_folder_or_a_duckdb_file(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    (project_dir / ".nbtrack").mkdir()
    monkeypatch.setenv("NBTRACK_STORE", str(project_dir / "shared" / "team.duckdb"))
    p = resolve_project(project_dir)
    assert (
        p.db_path == project_dir / "shared" / "team.duckdb"
        and p.cache_dir == project_dir / "shared" / "cache"
    )
    monkeypatch.setenv("NBTRACK_STORE", str(project_dir))
    assert resolve_project("/").folder == project_dir / ".nbtrack"
    monkeypatch.setenv("NBTRACK_STORE", str(project_dir / "scratch"))
    assert resolve_project().folder == project_dir / "scratch"


def test_paths_are_recorded_relative_to_the_project_unless_they_leave_it(
    project_dir: Path, tmp_path_factory
):
    p = resolve_project(project_dir)
    (project_dir / "data").mkdir()
    assert p.relative("data/x.csv") == ("data/x.csv", True)
    assert p.relative(project_dir / "data" / ".." / "y.csv") == ("y.csv", True)
    outside = tmp_path_factory.mktemp("elsewhere") / "z.csv"
    assert p.relative(outside) == (str(outside), False)
    assert p.relative("../escape.csv")[1] is False
    (project_dir / "link").symlink_to(outside.parent)
    assert p.relative("link/z.csv") == (str(outside), False)
    assert p.relative(".nbtrack/runs.duckdb")[1] is False
