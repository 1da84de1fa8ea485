"""The client every door goes through: naming runs, reading them back, validating requests.

Real stores in tmp folders; runs recorded through ``RunWriter`` (tests/factory.py).
Id, prefix and ``last`` resolution and the basic list filters live in test_store.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from factory import record_run
from nbtrack.client import Client
from nbtrack.exceptions import AmbiguousRunError, RunNotFoundError, UsageError
from nbtrack.models import MAX_PAGE, RunQuery
from nbtrack.validation import build_metric, build_param, check_query


@pytest.fixture
def client(project_dir: Path) -> Client:
    (project_dir / ".nbtrack").mkdir()
    return Client.open()


def run_id(prefix: str) -> str:
    """A full run id starting with ``prefix`` (so a test can make prefixes collide)."""
    return prefix + "0" * (32 - len(prefix) - 1) + "1"


# ------------------------------------------------------------------ naming runs
def test_open_finds_the_store_of_a_folder_inside_the_project(client: Client) -> None:
    made = record_run(client, "train")
    (client.project.root / "notebooks" / "deep").mkdir(parents=True)
    inner = Client.open(client.project.root / "notebooks" / "deep")
    assert inner.project.db_path == client.project.db_path
    assert inner.get_run("last").run_id == made


def test_an_ambiguous_prefix_names_itself_and_the_runs_it_matches(client: Client) -> None:
    a = record_run(client, run_id=run_id("abcd1"))
    b = record_run(client, run_id=run_id("abcd2"))
    with pytest.raises(AmbiguousRunError) as err:
        client.resolve("abcd")
    assert "'abcd'" in str(err.value)
    assert a[:12] in str(err.value) and b[:12] in str(err.value)
    assert client.resolve("abcd2") == b  # one more character settles it
    assert client.resolve("ABCD1") == a  # ids are not case-sensitive


def test_an_unknown_or_malformed_reference_is_named_in_the_error(client: Client) -> None:
    record_run(client)
    with pytest.raises(RunNotFoundError, match="'feedbeef'"):
        client.get_run("feedbeef")
    with pytest.raises(RunNotFoundError, match="'not-a-run'"):
        client.get_run("not-a-run")
    for blank in ("", "   "):
        with pytest.raises(UsageError, match="an id, an id prefix or 'last'"):
            client.resolve(blank)
        with pytest.raises(UsageError, match="an id, an id prefix or 'last'"):
            client.get_runs(["last", blank])


def test_last_is_the_newest_cell_run_not_a_notebook_run(client: Client) -> None:
    cell = record_run(client, "fit")
    notebook = record_run(client, "train.ipynb", kind="notebook")
    assert client.get_run("last").run_id == cell
    assert client.resolve("last", kind="notebook") == notebook


def test_get_runs_returns_the_runs_in_the_order_asked(client: Client) -> None:
    first = record_run(client, "first", params={"lr": 0.1})
    second = record_run(client, "second", params={"lr": 0.2})
    runs = client.get_runs([second[:6], "last", first])
    assert [r.run_id for r in runs] == [second, second, first]
    assert [r.params for r in runs] == [{"lr": 0.2}, {"lr": 0.2}, {"lr": 0.1}]


# ------------------------------------------------------------------ reading runs
def test_children_are_the_cell_runs_of_a_notebook_run_in_start_order(client: Client) -> None:
    parent = record_run(client, "train.ipynb", kind="notebook")
    prep = record_run(client, "prep", parent_id=parent)
    fit = record_run(client, "fit", parent_id=parent)
    record_run(client, "elsewhere")
    assert [r.run_id for r in client.children(parent[:8])] == [prep, fit]
    assert [r.run_id for r in client.children("last")] == [prep, fit]  # the last notebook run
    assert client.children(fit) == []


def test_list_runs_pages_and_filters_by_parent_kind_and_status(client: Client) -> None:
    parent = record_run(client, "train.ipynb", kind="notebook")
    ids = [record_run(client, f"r{i}", parent_id=parent) for i in range(5)]
    record_run(client, "broken", status="failed", error="boom")
    page = client.list_runs(RunQuery(parent_id=parent, limit=2, offset=1))
    assert [r.run_id for r in page.runs] == ids[::-1][1:3] and page.total == 5
    assert [r.run_id for r in client.list_runs(RunQuery(kind="notebook")).runs] == [parent]
    assert client.list_runs(RunQuery(kind=None)).total == 7
    failed = client.list_runs(RunQuery(status="failed")).runs
    assert [(r.name, r.error) for r in failed] == [("broken", "boom")]
    assert client.list_runs(RunQuery(limit=0)).runs == []


def test_metric_series_keep_every_step_and_can_be_narrowed_to_some_keys(client: Client) -> None:
    ref = record_run(client, metrics={"loss": [0.9, 0.5, 0.1], "acc": [0.6, 0.8]})
    series = client.metric_series(ref)
    assert [(p.step, p.value) for p in series["loss"]] == [(0, 0.9), (1, 0.5), (2, 0.1)]
    assert set(client.metric_series(ref, ["acc"])) == {"acc"}
    assert client.get_run(ref).metrics == {"loss": 0.1, "acc": 0.8}


def test_latest_cell_runs_are_the_newest_run_of_each_cell_of_a_notebook(client: Client) -> None:
    cell = {"notebook_path": "train.ipynb", "cell_id": "c1"}
    record_run(client, "train", **cell)
    other = record_run(client, "train", notebook_path="train.ipynb", cell_id="c2")
    third = record_run(client, "train", **cell)
    record_run(client, "train", notebook_path="other.ipynb", cell_id="c1")  # another notebook
    latest = client.latest_cell_runs("train.ipynb")
    assert {r.run_id for r in latest} == {other, third}
    assert client.latest_cell_runs("never.ipynb") == []


def test_diff_names_what_changed_and_is_empty_for_a_run_against_itself(client: Client) -> None:
    a = record_run(client, params={"lr": 0.1, "opt": "adam"}, metrics={"acc": 0.8})
    b = record_run(client, params={"lr": 0.2, "opt": "adam"}, metrics={"acc": 0.9})
    d = client.diff(a, b)
    assert d and (d.a, d.b) == (a, b)
    assert [(c.key, c.kind, c.a, c.b) for c in d.params] == [("lr", "changed", 0.1, 0.2)]
    assert [c.key for c in d.metrics] == ["acc"]
    assert d.metrics[0].delta == pytest.approx(0.1)
    assert not client.diff(a, a)
    everything = client.diff(a, b, all=True)
    assert {c.key: c.kind for c in everything.params} == {"lr": "changed", "opt": "same"}


def test_compare_puts_every_run_against_the_first(client: Client) -> None:
    base, *others = [record_run(client, params={"lr": lr}) for lr in (0.1, 0.2, 0.1)]
    out = client.compare([base[:8], *others])
    assert out["baseline"]["run_id"] == base
    assert [r["run_id"] for r in out["runs"]] == [base, *others]
    assert [[c["key"] for c in d["params"]] for d in out["diffs"]] == [["lr"], []]
    with pytest.raises(UsageError, match="at least two runs"):
        client.compare([base])


def test_sql_refuses_an_empty_query_and_reports_sql_errors(client: Client) -> None:
    record_run(client)
    for empty in ("", "  \n"):
        with pytest.raises(UsageError, match="empty SQL"):
            client.sql(empty)
    for nothing in (";", "-- a comment", " ; ; "):  # (an AttributeError traceback)
        with pytest.raises(UsageError, match="holds no SQL statement"):
            client.sql(nothing)
    with pytest.raises(UsageError, match="SQL error"):
        client.sql("SELECT nope FROM runs")
    cols, rows = client.sql("SELECT name, status FROM runs")
    assert cols == ["name", "status"] and rows == [("run", "finished")]


def test_change_token_moves_when_a_run_is_recorded_and_only_then(client: Client) -> None:
    record_run(client)
    before = client.change_token()
    assert client.change_token() == before
    client.list_runs()
    assert client.change_token() == before  # reading changes nothing
    record_run(client)
    assert client.change_token() != before


def test_runs_frame_is_one_row_per_run_with_param_and_metric_columns(client: Client) -> None:
    for lr in (0.1, 0.2, 0.3):
        record_run(client, params={"lr": lr}, metrics={"acc": lr * 2})
    frame = client.runs_frame(limit=2, sort="params.lr", descending=False)
    assert list(frame["params.lr"]) == [0.1, 0.2]
    assert list(frame["metrics.acc"]) == pytest.approx([0.2, 0.4])
    with pytest.raises(UsageError, match=f"limit must be between 0 and {MAX_PAGE}"):
        client.runs_frame(limit=MAX_PAGE + 1)


# ------------------------------------------------------------------ validating requests
@pytest.mark.parametrize(
    ("query", "message"),
    [
        (RunQuery(kind="script"), "kind must be one of cell, notebook, not 'script'"),
        (RunQuery(status="done"), "status must be one of running, finished, failed, crashed"),
        (RunQuery(limit=MAX_PAGE + 1), f"limit must be between 0 and {MAX_PAGE}, not 10001"),
        (RunQuery(offset=-3), "offset must be 0 or more, not -3"),
        (RunQuery(where="   "), "an empty --where condition"),
    ],
)
def test_bad_run_queries_are_refused_naming_the_value(
    client: Client, query: RunQuery, message: str
) -> None:
    with pytest.raises(UsageError) as err:
        client.list_runs(query)
    assert message in str(err.value)
    with pytest.raises(UsageError):
        check_query(query)


def test_a_good_query_passes_check_query_unchanged() -> None:
    q = RunQuery(kind=None, status="crashed", limit=MAX_PAGE, offset=5, where="lr > 0")
    assert check_query(q) is q


def test_build_param_keeps_json_values_and_numbers_and_stores_others_by_repr() -> None:
    assert build_param("lr", 0.1, "flag") == ("lr", "0.1", 0.1, "0.1", "flag")
    assert build_param("opt", "adam", "auto") == ("opt", '"adam"', None, "adam", "auto")
    assert build_param("deep", True, "api")[1:3] == ("true", 1.0)
    assert build_param("n", np.int64(7), "papermill")[1:4] == ("7", 7.0, "7")
    assert build_param("layers", (64, np.float32(0.5)), "flag")[1] == "[64, 0.5]"
    key, as_json, number, text, _ = build_param("fn", math.sqrt, "flag")
    assert text == repr(math.sqrt) and number is None and as_json.startswith('"<built-in')


@pytest.mark.parametrize(
    ("key", "source", "message"),
    [
        ("", "flag", "a parameter name must be a non-empty string, not ''"),
        (3, "flag", "a parameter name must be a non-empty string, not 3"),
        ("lr", "cli", "unknown parameter source 'cli'"),
    ],
)
def test_build_param_refuses_bad_names_and_sources(key: object, source: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        build_param(key, 1, source)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_build_metric_takes_numbers_including_nan_and_infinity() -> None:
    assert build_metric("acc", 1) == 1.0 and build_metric("acc", np.float32(0.25)) == 0.25
    assert math.isnan(build_metric("loss", float("nan")))
    assert build_metric("gain", float("-inf")) == -math.inf


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("acc", "0.9", "metric 'acc' must be a number, not str '0.9'"),
        ("acc", b"1", "metric 'acc' must be a number, not bytes b'1'"),
        ("acc", None, "metric 'acc' must be a number, not NoneType None"),
        ("acc", [1.0], "metric 'acc' must be a number, not list [1.0]"),
        ("", 1.0, "a metric name must be a non-empty string, not ''"),
    ],
)
def test_build_metric_refuses_what_is_not_a_number_naming_it(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(UsageError) as err:
        build_metric(key, value)
    assert str(err.value) == message
