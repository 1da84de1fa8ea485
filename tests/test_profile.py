"""Profiles of the user's tables: what a cell whose input changed pays for its drift alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbtrack import driftsketch, duckdb_config, profile
from nbtrack.exceptions import NbtrackError
from nbtrack.profile import profile_file, profile_frame


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows).round(3),  # many values: kept on the grid
            "n": rng.integers(0, 20, rows),  # few values: kept exactly
            "city": rng.choice(["Paris", "Lyon", "Nice"], rows),
        }
    )


def _in_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_a_changed_csv_is_read_once_and_duckdb_starts_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given every DuckDB instance nbtrack starts from now on logging the files it opens
    instances: list[Any] = []
    connect = duckdb_config.connect_duckdb

    def logged(*args: Any, **kwargs: Any) -> Any:
        con = connect(*args, **kwargs)
        con.execute("CALL enable_logging('FileSystem')").fetchall()
        instances.append(con)
        return con

    monkeypatch.setattr(duckdb_config, "connect_duckdb", logged)
    monkeypatch.setattr(profile, "_shared", None, raising=False)
    # and a CSV that changes between two cells
    csv = tmp_path / "train.csv"
    _table(2000, 1).to_csv(csv, index=False)
    first = _in_thread(lambda: profile_file(csv, "csv"))
    _table(2000, 2).to_csv(csv, index=False)
    # when its new version is profiled (what the drift alert does at the cell's end)
    second = _in_thread(lambda: profile_file(csv, "csv"))
    # then DuckDB started once for both, and opened the file once per version
    assert len(instances) == 1
    opens = (
        instances[0]
        .execute(
            "SELECT count(*) FROM duckdb_logs WHERE type = 'FileSystem' "
            'AND message LIKE \'%"op":"OPEN"%\' AND message LIKE ?',
            [f"%{csv.name}%"],
        )
        .fetchall()[0][0]
    )
    assert opens == 2
    # and the profiles say what is in each version
    assert first["rows"] == second["rows"] == 2000
    assert [c["type"] for c in second["columns"]] == ["DOUBLE", "BIGINT", "VARCHAR"]
    kinds = {k: v["kind"] for k, v in second["drift"]["columns"].items()}
    assert kinds == {"x": "grid", "n": "values", "city": "categories"}
    assert first["drift"] != second["drift"]


def test_every_format_profiles_as_the_same_table(tmp_path: Path) -> None:
    # given one table written as CSV, TSV, JSON lines, Parquet and Feather
    df = _table(3000, 3)
    df.loc[::7, "x"] = np.nan
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    df.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "t.parquet")
    df.to_feather(tmp_path / "t.feather")
    # when each is profiled, one after the other on one thread's cursor
    found = {
        fmt: profile_file(tmp_path / f"t.{fmt}", fmt)
        for fmt in ("csv", "tsv", "jsonl", "parquet", "feather")
    }
    # then each says the same as the DataFrame itself (the mean to rounding: sums in
    # another order)
    frame = profile_frame(df)
    for fmt, p in found.items():
        assert p["rows"] == 3000, fmt
        assert p["columns"] == [
            {**c, "mean": pytest.approx(c.get("mean"))} if "mean" in c else c
            for c in frame["columns"]
        ], fmt
        assert p["drift"] == frame["drift"], fmt


def test_profiles_made_in_several_threads_at_once_equal_those_made_alone(tmp_path: Path) -> None:
    # given four versions of a table, profiled one at a time
    paths = []
    for seed in range(4):
        path = tmp_path / f"v{seed}.csv"
        _table(5000, seed).to_csv(path, index=False)
        paths.append(path)
    alone = [json.dumps(profile_file(p, "csv"), sort_keys=True) for p in paths]
    # when four threads profile them at once, each with the process's one DuckDB instance
    results: dict[int, str] = {}
    start = threading.Barrier(4)

    def work(i: int) -> None:
        start.wait()
        for _ in range(3):
            results[i] = json.dumps(profile_file(paths[i], "csv"), sort_keys=True)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then each thread got its own version's profile
    assert [results[i] for i in range(4)] == alone


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_profiles_with_an_instance_of_its_own(tmp_path: Path) -> None:
    # given a parent that profiled a file (its DuckDB instance made, its threads running)
    csv = tmp_path / "t.csv"
    _table(2000, 5).to_csv(csv, index=False)
    expected = profile_file(csv, "csv")
    # when a forked child profiles it too
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, json.dumps(profile_file(csv, "csv")).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    # then it gets the same profile, and the parent's instance still works
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(out) == json.loads(json.dumps(expected))
    assert profile_file(csv, "csv") == expected


FORK_AND_EXIT = """
import os, sys
from nbtrack.profile import profile_file
profile_file(sys.argv[1], "csv")
pid = os.fork()
if pid == 0:
    sys.exit(0)  # an ordinary exit: the interpreter finalizes, module globals dropped
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_of_a_process_that_profiled_exits_cleanly(tmp_path: Path) -> None:
    # given a process that profiled a file (its DuckDB instance alive, its threads running)
    csv = tmp_path / "t.csv"
    _table(500, 5).to_csv(csv, index=False)
    # when it forks and the child exits as a Python program does, profiling nothing
    done = subprocess.run(
        [sys.executable, "-c", FORK_AND_EXIT, str(csv)], capture_output=True, text=True, timeout=60
    )
    # then the child exits with its own status: destroying the parent's instance in the
    # child (its threads did not come along) crashed it with SIGSEGV (-11)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_a_large_table_counts_its_columns_apart_to_the_same_sketches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a table with numbers kept exactly, on the grid, categories and missing values
    df = _table(3000, 6)
    df.loc[::5, "x"] = np.nan
    df.loc[::9, "city"] = None
    df.to_parquet(tmp_path / "t.parquet")
    small = profile_file(tmp_path / "t.parquet", "parquet")
    # when it counts as large (each column's counts a branch of its own)
    monkeypatch.setattr(driftsketch, "UNNEST_PAIRS", 0)
    large = profile_file(tmp_path / "t.parquet", "parquet")
    # then its sketches are the same
    assert json.dumps(large["drift"]) == json.dumps(small["drift"])
    assert large["drift"]["columns"]["city"]["counts"]["Paris"] > 0


def test_a_large_text_file_is_parsed_in_an_instance_of_its_own_to_the_same_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CSV profiled with the process's DuckDB instance
    csv = tmp_path / "t.csv"
    _table(3000, 7).to_csv(csv, index=False)
    shared = profile_file(csv, "csv")
    # when files of its size count as large (their memory is not kept by the kernel)
    monkeypatch.setattr(profile, "SHARED_MAX_BYTES", 1024)
    own = profile_file(csv, "csv")
    # then the profile is the same, and a broken one still says which file
    assert json.dumps(own, sort_keys=True) == json.dumps(shared, sort_keys=True)
    # (a word past the rows DuckDB samples for the column's type)
    (tmp_path / "bad.csv").write_text("a,b\n" + "1,2\n" * 30_000 + "x,y\n")
    with pytest.raises(NbtrackError, match="bad.csv as csv"):
        profile_file(tmp_path / "bad.csv", "csv")
