"""The DuckDB store: schema life cycle, references, listing, SQL — on real files."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import duckdb
import pytest

from factory import record_run
from nbtrack.client import Client
from nbtrack.exceptions import (
    AmbiguousRunError,
    NotAStoreError,
    RunNotFoundError,
    StoreError,
    StoreVersionError,
    UsageError,
)
from nbtrack.models import Batch, DataVersion, RunQuery
from nbtrack.project import resolve_project
from nbtrack.store import SCHEMA_VERSION, Store


@pytest.fixture
def project(project_dir: Path):
    return resolve_project(project_dir)


@pytest.fixture
def client(project) -> Client:
    return Client(project)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_store_is_created_on_first_write_with_its_schema_version(project, client):
    assert not project.db_path.exists()
    record_run(project)
    info = client.info()
    assert info["meta"]["schema_version"] == str(SCHEMA_VERSION) and info["runs"] == 1
    with duckdb.connect(str(project.db_path), read_only=True) as con:  # plain DuckDB reads it
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)


def test_an_older_store_is_upgraded_in_place_after_a_backup(project, client):
    Store(project.db_path).create_v1_for_tests()
    with duckdb.connect(str(project.db_path)) as con:
        con.execute(
            "INSERT INTO runs (run_id, kind, status, started_at, updated_at) "
            "VALUES ('aaaa1111', 'cell', 'finished', now()::TIMESTAMP, now()::TIMESTAMP)"
        )
        con.execute(
            "INSERT INTO metrics VALUES ('aaaa1111', 'acc', 0, 0.5, 1), ('aaaa1111', 'acc', 1, 0.75, 2)"
        )
    before = sha(project.db_path)
    run = client.get_run("aaaa")
    assert run.metrics == {"acc": 0.75}  # metric_latest was built from the old metrics
    backups = list(project.folder.glob("runs.duckdb.v1-*.bak"))
    assert len(backups) == 1 and sha(backups[0]) == before
    assert client.info()["meta"]["schema_version"] == str(SCHEMA_VERSION)


def test_a_newer_store_is_refused_and_left_untouched(project):
    Store(project.db_path).create_v1_for_tests()
    with duckdb.connect(str(project.db_path)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = sha(project.db_path)
    with pytest.raises(StoreVersionError, match="newer than this nbtrack"):
        Client(project).list_runs()
    assert sha(project.db_path) == before


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(project, kind):
    project.folder.mkdir()
    if kind == "garbage":
        project.db_path.write_bytes(b"not a database at all" * 100)
    else:
        with duckdb.connect(str(project.db_path)) as con:
            con.execute("CREATE TABLE customers (id INT)")
    before = sha(project.db_path)
    with pytest.raises(NotAStoreError, match="not an nbtrack store"):
        Client(project).list_runs()
    assert sha(project.db_path) == before
    r = __import__("subprocess").run(
        ["nbtrack", "ls"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=__import__("conftest").kernel_env(),
    )
    assert (
        r.returncode == 1
        and r.stderr.startswith("nbtrack: error:")
        and "not an nbtrack store" in r.stderr
    )
    assert sha(project.db_path) == before


def test_runs_are_named_by_id_unique_prefix_or_last(project, client):
    a = record_run(project, "first")
    b = record_run(project, "second")
    assert client.resolve(a) == a and client.resolve(b[:10]) == b
    assert client.resolve("last") == b
    with pytest.raises(RunNotFoundError, match="no run matches"):
        client.resolve("ffffffff")
    with pytest.raises(RunNotFoundError, match="at least 4"):
        client.resolve("ab")
    with pytest.raises(RunNotFoundError):
        client.resolve("'; DROP TABLE runs; --")
    # 17 runs make two that share a 1-character prefix certain; a 4-character one is likely
    ids = [record_run(project, f"r{i}") for i in range(15)] + [a, b]
    by_first = {}
    for i in ids:
        by_first.setdefault(i[:4], []).append(i)
    shared = [p for p, v in by_first.items() if len(v) > 1]
    if shared:
        with pytest.raises(AmbiguousRunError, match="matches several runs"):
            client.resolve(shared[0])


def test_empty_store_says_last_names_nothing(client):
    with pytest.raises(RunNotFoundError, match="no runs yet"):
        client.resolve("last")


def test_listing_filters_sorts_and_pages(project, client):
    for lr, acc, kind in [
        (0.1, 0.8, "a"),
        (0.01, 0.9, "b"),
        (0.001, 0.7, "c"),
        (0.05, float("nan"), "d"),
    ]:
        record_run(
            project,
            kind,
            params={"lr": lr, "opt": "adam" if kind != "c" else "sgd"},
            metrics={"acc": acc},
        )
    record_run(project, "broken", params={"lr": 1.0}, status="failed", error="boom")
    page = client.list_runs(RunQuery(where="lr < 0.06 and opt = 'adam'", sort="metrics.acc"))
    assert [r.name for r in page.runs] == ["b", "d"] and page.total == 2
    page = client.list_runs(RunQuery(sort="acc", descending=False, limit=2))
    assert [r.name for r in page.runs] == ["c", "a"] and page.total == 5
    page = client.list_runs(RunQuery(sort="acc", descending=False, limit=2, offset=2))
    assert [r.name for r in page.runs][0] == "b"
    assert client.list_runs(RunQuery(status="failed")).runs[0].error == "boom"
    assert [r.name for r in client.list_runs(RunQuery(text="sgd")).runs] == ["c"]
    assert page.param_keys == ["lr", "opt"] and page.metric_keys == ["acc"]
    frame = client.runs_frame(sort="params.lr")
    assert list(frame["name"][:2]) == ["broken", "a"] and "metrics.acc" in frame.columns
    assert (
        math.isnan(frame.set_index("name").loc["d", "metrics.acc"])
        or frame.set_index("name").loc["d", "metrics.acc"] is None
    )


def test_bad_queries_are_usage_errors(client, project):
    record_run(project, "x", params={"lr": 0.1})
    with pytest.raises(UsageError, match="bad filter"):
        client.list_runs(RunQuery(where="no_such_column > 1"))
    with pytest.raises(UsageError, match="bad filter"):
        client.list_runs(RunQuery(where="1=1) ; DROP TABLE runs; SELECT (1"))
    with pytest.raises(UsageError, match="cannot sort by"):
        client.list_runs(RunQuery(sort="nope"))
    with pytest.raises(UsageError, match="limit"):
        client.list_runs(RunQuery(limit=-1))
    assert client.list_runs().total == 1  # nothing was dropped


def test_sql_from_the_network_is_one_select_without_file_access(client, project):
    record_run(project, "x", params={"lr": 0.1})
    cols, rows = client.sql("SELECT count(*) AS n FROM runs", safe=True)
    assert cols == ["n"] and rows == [(1,)]
    with pytest.raises(UsageError):
        client.sql("DELETE FROM runs", safe=True)
    with pytest.raises(UsageError):
        client.sql("SELECT * FROM read_csv('/etc/passwd')", safe=True)
    assert client.sql("SELECT count(*) FROM runs")[1] == [(1,)]


def test_dump_and_load_copy_runs_between_stores_once(tmp_path_factory, project, client):
    a = record_run(project, "x", params={"lr": 0.1}, metrics={"loss": [3.0, 2.0, 1.0]})
    with_data = record_run(
        project, "with-data", data=[DataVersion("d.csv", "input", "xxh3:" + "00" * 16, 10)]
    )
    dump = client.dump_runs([a, with_data])
    elsewhere = tmp_path_factory.mktemp("other")
    (elsewhere / ".nbtrack").mkdir()
    other = Client(resolve_project(elsewhere))
    assert sorted(other.load_runs(dump)) == sorted([a, with_data])
    assert other.load_runs(dump) == []  # idempotent
    copied = other.get_run(a)
    assert copied.params == {"lr": 0.1} and copied.metrics == {"loss": 1.0}
    assert len(other.metric_series(a)["loss"]) == 3
    assert other.get_run(with_data).data[0].path == "d.csv"
    assert other.get_run(a).environment is not None


def test_loading_a_dump_keeps_nan_and_infinite_metrics(tmp_path_factory, project, client):
    a = record_run(
        project,
        "odd",
        params={"lr": float("nan")},
        metrics={"loss": [1.0, float("nan")], "gain": [float("inf")]},
    )
    dump = client.dump_runs([a])
    elsewhere = tmp_path_factory.mktemp("nan")
    (elsewhere / ".nbtrack").mkdir()
    other = Client(resolve_project(elsewhere))
    assert other.load_runs(dump) == [a]
    run = other.get_run(a)
    assert math.isnan(run.metrics["loss"]) and run.metrics["gain"] == math.inf
    assert math.isnan(other.metric_series(a)["loss"][1].value)
    assert run.started_at == client.get_run(a).started_at


def test_a_process_that_used_the_store_can_fork_children(project_dir: Path) -> None:
    # given a process that has read and written its store (its DuckDB instance is live)
    import os

    client = Client.open(project_dir)
    record_run(client, "before")
    assert len(client.runs_frame()) == 1
    # when it forks a child (multiprocessing, a forking executor) that uses the store too
    pid = os.fork()
    if pid == 0:
        try:
            record_run(Client.open(project_dir), "child")
            os._exit(0)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    # then the child runs and exits cleanly (it never tears down the inherited instance)
    assert os.waitstatus_to_exitcode(status) == 0
    # and the parent goes on using the store, which holds all three runs
    record_run(client, "after")
    assert sorted(client.runs_frame()["name"]) == ["after", "before", "child"]


def test_runs_that_start_and_end_in_one_write_are_stored_whole(project, client):
    # Given: runs from start to end in one write (finished ones, their end read from a
    # spool as text; a crashed one, its end a datetime) beside updates of other runs
    import datetime as dt

    started = "2026-01-02T03:04:05"

    def run(run_id: str) -> dict[str, object]:
        return {"run_id": run_id, "kind": "cell", "name": run_id, "status": "running",
                "started_at": started}  # fmt: skip

    client.write_batches([Batch("c" * 32, run=run("c" * 32), spool_offset=10)])
    crashed_at = dt.datetime(2026, 1, 2, 3, 5)

    def ended(run_id: str, offset: int) -> Batch:
        return Batch(run_id, run=run(run_id), spool_offset=offset, points_offset=3,
                     update={"status": "finished", "ended_at": "2026-01-02T03:04:06"})  # fmt: skip

    # When: they are stored
    client.write_batches([ended("a" * 32, 120), Batch("c" * 32, update={"status": "finished"},
                                                      spool_offset=40)])  # fmt: skip
    client.write_batches(
        [
            Batch("b" * 32, run=run("b" * 32), spool_offset=80,
                  update={"status": "crashed", "error": "died", "ended_at": crashed_at}),
            ended("e" * 32, 90),
        ]
    )  # fmt: skip

    # Then: each run has its end, and ingestion goes on from where each stopped
    _, rows = client.sql(
        "SELECT name, status, error, ended_at, spool_offset, coalesce(points_offset, 0) "
        "FROM runs ORDER BY name"
    )
    assert rows == [
        ("a" * 32, "finished", None, dt.datetime(2026, 1, 2, 3, 4, 6), 120, 3),
        ("b" * 32, "crashed", "died", crashed_at, 80, 0),
        ("c" * 32, "finished", None, None, 40, 0),
        ("e" * 32, "finished", None, dt.datetime(2026, 1, 2, 3, 4, 6), 90, 3),
    ]
    # ... and a start whose update names a column that never changes is refused
    with pytest.raises(StoreError, match="cannot update run columns"):
        client.write_batches([Batch("d" * 32, run=run("d" * 32), update={"kind": "notebook"})])
