"""The data diff: what changed inside two versions of a table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nbtrack.client import Client
from nbtrack.datacompare import compare_versions
from nbtrack.exceptions import NbtrackError
from nbtrack.hashing import StatCache
from nbtrack.models import DataVersion
from nbtrack.profile import profile_file, tabular_format
from nbtrack.project import resolve_project
from nbtrack.versioning import version_path


@pytest.fixture
def client(project_dir: Path) -> Client:
    (project_dir / ".nbtrack").mkdir()
    return Client(resolve_project(project_dir))


def _version(client: Client, path: str) -> DataVersion:
    return version_path(
        client.project,
        path,
        "input",
        cache=client.cache,
        stat_cache=StatCache.for_folder(client.project.folder),
    )


def test_csv_diff_shows_rows_columns_and_stat_changes(client: Client) -> None:
    csv = client.project.root / "customers.csv"
    # given the run that worked
    csv.write_text("id,age,city,score\n1,30,Paris,0.5\n2,40,Lyon,0.7\n3,50,Nice,0.9\n")
    a = _version(client, "customers.csv")
    # and the run that did not: a row more, ages with a hole, city gone, score as text
    csv.write_text("id,age,score,segment\n1,30,high,A\n2,,low,B\n3,90,mid,A\n4,100,low,B\n")
    b = _version(client, "customers.csv")
    diff = compare_versions(client, a, b)
    assert diff is not None
    assert diff["rows"] == {"a": 3, "b": 4, "delta": 1}
    assert diff["columns_added"] == ["segment"]
    assert diff["columns_removed"] == ["city"]
    assert diff["columns_retyped"] == [{"name": "score", "a": "DOUBLE", "b": "VARCHAR"}]
    age = next(c for c in diff["columns"] if c["name"] == "age")
    assert age["changed"]
    assert age["stats"]["null_fraction"] == {"a": 0.0, "b": 0.25, "delta": 0.25, "changed": True}
    assert age["stats"]["mean"]["a"] == 40 and age["stats"]["mean"]["b"] == pytest.approx(220 / 3)
    assert age["stats"]["max"]["delta"] == 50
    ident = next(c for c in diff["columns"] if c["name"] == "id")
    assert ident["stats"]["distinct"] == {"a": 3, "b": 4, "delta": 1, "changed": True}
    json.dumps(diff)  # goes as is into the REST API
    # and a few lines say it for people (the CLI and the panel print them)
    assert diff["summary"][:4] == [
        "rows 3 → 4 (+1)",
        "columns added: segment",
        "columns removed: city",
        "score: type DOUBLE → VARCHAR",
    ]
    assert "age: nulls 0.0% → 25.0%, max 50 → 100, mean 40 → 73.33" in diff["summary"]


def test_profiles_are_stored_once_per_hash_and_survive_the_file(client: Client) -> None:
    path = client.project.root / "t.csv"
    path.write_text("x\n1\n2\n")
    a = _version(client, "t.csv")
    path.write_text("x\n1\n2\n3\n")
    b = _version(client, "t.csv")
    assert compare_versions(client, a, b) is not None
    assert client.get_profile(a.hash or "")["rows"] == 2  # type: ignore[index]
    # the cache and the file both gone: the stored profile still answers
    path.unlink()
    for digest in (a.hash, b.hash):
        client.cache.path_for(digest or "").unlink()
    again = compare_versions(client, a, b)
    assert again is not None and again["rows"] == {"a": 2, "b": 3, "delta": 1}


def test_a_side_whose_bytes_are_gone_is_reported_missing(client: Client) -> None:
    path = client.project.root / "gone.csv"
    path.write_text("x\n1\n")
    a = version_path(client.project, "gone.csv", "input", cache=None, stat_cache=StatCache())
    path.write_text("x\n1\n2\n")
    b = _version(client, "gone.csv")
    diff = compare_versions(client, a, b)
    assert diff is not None and diff["missing"] == ["a"]


def test_parquet_and_jsonl_are_tabular_and_other_files_are_not(client: Client) -> None:
    root = client.project.root
    pd.DataFrame({"v": [1, 2, 3]}).to_parquet(root / "a.parquet")
    pd.DataFrame({"v": [1, 2, 3, 4]}).to_parquet(root / "b.parquet")
    d = compare_versions(client, _version(client, "a.parquet"), _version(client, "b.parquet"))
    assert d is not None and d["rows"]["delta"] == 1
    (root / "r.jsonl").write_text('{"k": 1}\n{"k": null}\n')
    assert profile_file(root / "r.jsonl", "jsonl")["columns"][0]["null_fraction"] == 0.5
    (root / "a.txt").write_text("a")
    assert tabular_format("x/a.txt") is None and tabular_format("D.CSV") == "csv"
    txt = _version(client, "a.txt")
    assert compare_versions(client, txt, txt) is None


def test_feather_versions_compare_by_rows_and_columns_like_parquet(client: Client) -> None:
    """Found by a new user's trial: Parquet got rows and column changes, Feather only a hash."""
    root = client.project.root
    pd.DataFrame({"v": [1, 2, 3, 4, 5]}).to_feather(root / "a.feather")
    pd.DataFrame({"v": range(8), "w": ["x"] * 8}).to_feather(root / "b.feather")
    d = compare_versions(client, _version(client, "a.feather"), _version(client, "b.feather"))
    assert d is not None and d["rows"] == {"a": 5, "b": 8, "delta": 3}
    assert d["columns_added"] == ["w"] and d["summary"][0] == "rows 5 → 8 (+3)"
    # a file that is not Arrow IPC says so in one line, not a traceback
    (root / "bad.feather").write_text("not arrow")
    with pytest.raises(NbtrackError, match="could not read .*bad.feather as feather"):
        profile_file(root / "bad.feather", "feather")


def test_dataframe_versions_compare_from_their_logged_profiles(client: Client) -> None:
    from nbtrack.versioning import version_dataframe

    va, pa = version_dataframe(pd.DataFrame({"x": [1, 2]}), "df")
    vb, pb = version_dataframe(pd.DataFrame({"x": [1, 2, 3], "y": [0, 0, 1]}), "df")
    client.put_profile(va.hash or "", pa)
    client.put_profile(vb.hash or "", pb)
    diff = compare_versions(client, va, vb)
    assert diff is not None and diff["columns_added"] == ["y"] and diff["rows"]["delta"] == 1


def test_two_folder_versions_compare_file_by_file(client: Client) -> None:
    d = client.project.root / "images"
    d.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (d / name).write_bytes(name.encode())
    a = _version(client, "images")
    (d / "a.png").unlink()
    (d / "b.png").write_bytes(b"retouched")
    (d / "d.png").write_bytes(b"new")
    b = _version(client, "images")
    diff = compare_versions(client, a, b)
    assert diff is not None
    assert (diff["added"], diff["removed"], diff["modified"]) == (["d.png"], ["a.png"], ["b.png"])
    assert diff["summary"][0] == "files: 3 → 3; 1 added, 1 removed, 1 modified"


def test_a_settings_file_the_cell_read_shows_which_keys_changed(project_dir, kernel) -> None:
    """Found by a new user's fifth trial: a cell reading ``config.yaml`` with
    ``yaml.safe_load`` recorded it as an input, but after ``lr: 0.1`` became ``lr: 0.5``
    ``nbtrack diff`` said only that its hash changed; a table's diff says which rows and
    columns moved, a settings file's now which keys."""
    from conftest import run_cli
    from test_lineage_shapes import _train_twice

    before = "lr: 0.1\nmodel:\n  depth: 4\n  name: tree\n"
    after = "# tuned\nlr: 0.5\nmodel:\n  depth: 4\n  name: tree\n  leaves: 8\n"
    train = "%%track train\nimport yaml\ncfg = yaml.safe_load(open('config.yaml'))"
    a, b, _ = _train_twice(
        kernel,
        project_dir,
        f"_ = open('config.yaml', 'w').write({before!r})",
        train,
        f"_ = open('config.yaml', 'w').write({after!r})",
    )
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    lines = [line.split() for line in shown.splitlines()]
    at = next(i for i, words in enumerate(lines) if words[:1] == ["input"])  # (cfg: a param)
    assert lines[at][:3] == ["input", "config.yaml", "changed"], shown
    assert lines[at + 1 : at + 3] == [["lr:", "0.1", "→", "0.5"], ["model.leaves:", "—", "→", "8"]]
    detail = json.loads(run_cli("diff", a.run_id, b.run_id, "--json", cwd=project_dir).stdout)
    (data,) = detail["data"]
    assert data["detail"]["changed"] == [
        {"key": "lr", "a": 0.1, "b": 0.5},
        {"key": "model.leaves", "a": None, "b": 8},
    ]
