"""version_path / version_dataframe: what a run records about the data it touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbtrack.cache import Cache
from nbtrack.exceptions import UsageError
from nbtrack.hashing import StatCache, hash_bytes
from nbtrack.models import DataVersion
from nbtrack.project import Project, resolve_project
from nbtrack.versioning import dataframe_hash, version_dataframe, version_path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".nbtrack").mkdir()
    return resolve_project(tmp_path)


def _stat_cache(project: Project) -> StatCache:
    return StatCache.for_folder(project.folder)


def _age(*paths: Path) -> None:
    past = time.time() - 60
    for p in paths:
        os.utime(p, (past, past))


def test_a_file_becomes_a_cached_version_with_its_project_relative_path(project: Project) -> None:
    (project.root / "data").mkdir()
    (project.root / "data" / "train.csv").write_text("a,b\n1,2\n")
    v = version_path(
        project,
        "data/train.csv",
        "input",
        cache=Cache(project.cache_dir),
        stat_cache=_stat_cache(project),
    )
    assert v == DataVersion(
        path="data/train.csv",
        role="input",
        hash=hash_bytes(b"a,b\n1,2\n"),
        size=8,
        kind="file",
        in_project=True,
        cached=True,
        mtime=(project.root / "data" / "train.csv").stat().st_mtime,
    )
    assert Cache(project.cache_dir).read_bytes(v.hash or "") == b"a,b\n1,2\n"


def test_no_cache_records_the_hash_but_keeps_no_bytes(project: Project) -> None:
    (project.root / "big.bin").write_bytes(b"x" * 1000)
    v = version_path(project, "big.bin", "output", cache=None, stat_cache=_stat_cache(project))
    assert v.hash == hash_bytes(b"x" * 1000) and v.cached is False
    assert list(Cache(project.cache_dir).iter_blobs()) == []


def test_size_limit_keeps_huge_files_out_but_records_their_hash(project: Project) -> None:
    (project.root / "small.bin").write_bytes(b"s" * 10)
    (project.root / "huge.bin").write_bytes(b"h" * 5000)
    cache = Cache(project.cache_dir)
    sc = _stat_cache(project)
    small = version_path(
        project, "small.bin", "input", cache=cache, stat_cache=sc, max_blob_size=1000
    )
    huge = version_path(
        project, "huge.bin", "input", cache=cache, stat_cache=sc, max_blob_size=1000
    )
    assert small.cached and not huge.cached
    assert huge.hash == hash_bytes(b"h" * 5000)
    assert not cache.has(huge.hash or "")


def test_missing_path_is_a_usage_error_naming_it(project: Project) -> None:
    with pytest.raises(UsageError, match="nope.csv: no such file or folder"):
        version_path(project, "nope.csv", "input", cache=None, stat_cache=_stat_cache(project))


def test_a_path_outside_the_project_is_recorded_absolute(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "ext.txt"
    elsewhere.write_text("outside")
    v = version_path(project, elsewhere, "input", cache=None, stat_cache=_stat_cache(project))
    assert v.in_project is False and v.path == str(elsewhere.resolve())
    escape = Path("..") / elsewhere.parent.name / "ext.txt"
    via_dots = version_path(project, escape, "input", cache=None, stat_cache=_stat_cache(project))
    assert via_dots.in_project is False and via_dots.path == v.path
    (project.root / "link.txt").symlink_to(elsewhere)
    via_link = version_path(
        project, "link.txt", "input", cache=None, stat_cache=_stat_cache(project)
    )
    assert via_link.in_project is False and via_link.path == v.path


def test_a_folder_becomes_a_manifest_of_its_files(project: Project) -> None:
    d = project.root / "images"
    (d / "cats").mkdir(parents=True)
    (d / "cats" / "1.png").write_bytes(b"cat")
    (d / "dog.png").write_bytes(b"dog")
    cache = Cache(project.cache_dir)
    v = version_path(project, "images", "input", cache=cache, stat_cache=_stat_cache(project))
    assert v.kind == "dir" and v.cached and v.size == 6
    assert v.hash is not None and v.hash.endswith(".dir")
    entries = cache.read_manifest(v.hash)
    assert [(e.path, e.hash, e.size) for e in entries] == [
        ("cats/1.png", hash_bytes(b"cat"), 3),
        ("dog.png", hash_bytes(b"dog"), 3),
    ]
    # the same content elsewhere has the same folder hash; one changed file changes it
    other = project.root / "copy"
    (other / "cats").mkdir(parents=True)
    (other / "cats" / "1.png").write_bytes(b"cat")
    (other / "dog.png").write_bytes(b"dog")
    same = version_path(project, "copy", "input", cache=cache, stat_cache=_stat_cache(project))
    assert same.hash == v.hash
    (other / "dog.png").write_bytes(b"wolf")
    assert (
        version_path(project, "copy", "input", cache=cache, stat_cache=_stat_cache(project)).hash
        != v.hash
    )


def test_a_folder_blob_pruned_meanwhile_is_cached_again_on_the_next_version(
    project: Project,
) -> None:
    d = project.root / "d"
    d.mkdir()
    (d / "f.txt").write_bytes(b"content")
    _age(d / "f.txt")
    cache = Cache(project.cache_dir)
    sc = _stat_cache(project)
    v = version_path(project, "d", "input", cache=cache, stat_cache=sc)
    inner = hash_bytes(b"content")
    cache.path_for(inner).unlink()
    again = version_path(project, "d", "input", cache=cache, stat_cache=sc)
    assert again.hash == v.hash and again.cached
    assert cache.read_bytes(inner) == b"content"


def test_hundred_runs_over_one_input_add_one_blob(project: Project) -> None:
    data = os.urandom(8 << 20)
    (project.root / "input.bin").write_bytes(data)
    cache = Cache(project.cache_dir)
    for _ in range(100):
        # a fresh stat cache per "run", as in separate kernels
        v = version_path(
            project, "input.bin", "input", cache=cache, stat_cache=_stat_cache(project)
        )
        assert v.cached
    blobs = list(cache.iter_blobs())
    assert len(blobs) == 1 and blobs[0][1] == len(data)


def test_rechecking_an_unchanged_folder_reads_no_file(project: Project) -> None:
    d = project.root / "many"
    d.mkdir()
    for i in range(50):
        (d / f"{i}.txt").write_text(str(i))
    _age(*d.iterdir())
    cache = Cache(project.cache_dir)
    first = version_path(project, "many", "input", cache=cache, stat_cache=_stat_cache(project))
    # change every file's bytes but not its stat: a re-check that read any file would
    # see the change, one that trusts the persisted stat cache does not
    for f in d.iterdir():
        st = f.stat()
        f.write_text("X" * len(f.read_text()))
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    code = (
        "import sys; from nbtrack.project import resolve_project; from nbtrack.cache import Cache\n"
        "from nbtrack.hashing import StatCache; from nbtrack.versioning import version_path\n"
        "p = resolve_project(sys.argv[1])\n"
        "print(version_path(p, sys.argv[1] + '/many', 'input', cache=Cache(p.cache_dir),"
        " stat_cache=StatCache.for_folder(p.folder)).hash)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(project.root)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == first.hash


def test_dataframe_hash_covers_content_and_schema_and_is_stable_across_processes() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan], "name": ["a", "b", None]})
    h = dataframe_hash(df)
    assert dataframe_hash(df.copy()) == h
    assert dataframe_hash(df.assign(x=[1.0, 2.0, 3.0])) != h
    assert dataframe_hash(df.rename(columns={"x": "y"})) != h
    assert dataframe_hash(df.astype({"x": "float32"})) != h
    code = (
        "import numpy as np, pandas as pd; from nbtrack.versioning import dataframe_hash\n"
        "print(dataframe_hash(pd.DataFrame({'x': [1.0, 2.0, np.nan], 'name': ['a', 'b', None]})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == h


def test_version_dataframe_gives_a_dataframe_version_and_its_profile() -> None:
    df = pd.DataFrame({"age": [20, 30, None], "city": ["x", "y", "y"]})
    v, profile = version_dataframe(df, "customers")
    assert (v.path, v.kind, v.cached, v.hash) == (
        "customers",
        "dataframe",
        False,
        dataframe_hash(df),
    )
    assert profile["rows"] == 3
    age = next(c for c in profile["columns"] if c["name"] == "age")
    assert age["null_fraction"] == pytest.approx(1 / 3) and age["mean"] == 25
