"""Run filters (``where``): parsed, held to an allow-list, re-rendered, time-limited."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.exceptions import QueryError, QueryTimeoutError
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
from nbtrack.store.filters import STRICT_FUNCTIONS, compile_where, parse
from nbtrack.store.query import time_limit
from test_magics import _settle

COLUMNS = ["status", "name", "duration", "started_at", "params.lr", "lr", "metrics.acc", "acc"]


def record(project, name, lr, acc, status="finished"):
    error = "boom" if status == "failed" else None
    return record_run(
        project, name, params={"lr": lr}, metrics={"acc": acc}, status=status, error=error
    )


@pytest.fixture
def three(project_dir: Path) -> tuple[Client, list[str]]:
    project = resolve_project(project_dir)
    ids = [
        record(project, "a", 0.1, 0.5),
        record(project, "b", 0.01, 0.9),
        record(project, "c", 0.001, 0.4, status="failed"),
    ]
    return Client(project), ids


@pytest.mark.parametrize(
    ("where", "names"),
    [
        ("lr > 0.05", {"a"}),
        ("lr >= 0.01 AND acc > 0.8", {"b"}),
        ("params.lr < 0.05 and metrics.acc < 0.5", {"c"}),
        ('"params.lr" = 0.1', {"a"}),
        ("status = 'failed' or acc between 0.85 and 1", {"b", "c"}),
        ("name in ('a', 'c') and not (acc > 0.45)", {"c"}),
        ("name like 'b%' or upper(name) = 'A'", {"a", "b"}),
        ("round(acc * 10) = 9 and duration is not null", {"b"}),
        ("coalesce(lr, 0) * 100 >= 1 and abs(-acc) <> 0.5", {"b"}),
        ("LR > 0.05", {"a"}),
    ],
)
def test_conditions_the_panel_sends_select_the_runs_they_name(three, where, names) -> None:
    client, _ = three
    page = client.list_runs(RunQuery(where=where), safe=True)
    assert {r.name for r in page.runs} == names


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("1=1) --", "syntax error"),
        ("1=1) UNION SELECT 'x', 1 --", "syntax error"),
        ("TRUE LIMIT 100000", "one condition"),
        ("TRUE; DROP TABLE runs", "one condition"),
        ("(SELECT count(*) FROM range(3000000) a, range(3000000) b) > 0", "subquery"),
        ("current_setting('threads') > 0", "current_setting"),
        ("(SELECT count(*) FROM duckdb_databases()) > 0", "subquery"),
        ("getenv('HOME') = 'x'", "getenv"),
        ("lr = ?", "parameter"),
        ("lr >>> 1", "operator >>>"),
        ("count(*) OVER () > 0", "not allowed"),
        ("nope > 1", "unknown column"),
        ("runs.lr > 1", "unknown column"),
    ],
)
def test_filters_that_escape_or_leak_are_refused_from_the_network(three, where, why) -> None:
    client, _ = three
    with pytest.raises(QueryError, match=why):
        client.list_runs(RunQuery(where=where, limit=1), safe=True)
    assert client.list_runs().total == 3  # nothing dropped, nothing changed


def test_a_comment_or_a_closing_parenthesis_never_drops_the_page_limit(three) -> None:
    client, _ = three
    page = client.list_runs(RunQuery(where="TRUE --", limit=1))
    assert (len(page.runs), page.total) == (1, 3)
    with pytest.raises(QueryError):
        client.list_runs(RunQuery(where="1=1) --", limit=1))
    frame = client.runs_frame("TRUE --", limit=2)
    assert len(frame) == 2


def test_local_filters_may_call_any_scalar_function_but_no_subquery(three) -> None:
    client, _ = three
    page = client.list_runs(RunQuery(where="current_setting('threads') > 0 and lr > 0.05"))
    assert [r.name for r in page.runs] == ["a"]
    with pytest.raises(QueryError, match="subquery"):
        client.list_runs(RunQuery(where="(SELECT 1) = 1"))


def test_a_slow_filter_is_stopped_at_the_time_limit_and_the_store_stays_usable(
    three, project_dir: Path
) -> None:
    slow = "levenshtein(repeat(name, 20000), repeat(status, 4000)) >= 0"  # ~3 s of work
    started = time.monotonic()
    done = run_cli(
        "ls", "--where", slow, cwd=project_dir, env=kernel_env(NBTRACK_QUERY_TIMEOUT="0.3")
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "ran longer than 0.3 s and was stopped" in done.stderr
    assert time.monotonic() - started < 60
    assert run_cli("ls", cwd=project_dir).returncode == 0


def test_a_name_that_is_a_parameter_and_a_metric_is_named_as_both_with_what_to_write(
    project_dir: Path, kernel
) -> None:
    """A new user's trial: ``test_acc`` is a metric of one cell and, read by a later
    cell, a parameter of that one; ``ls --where`` said "unknown column" and ``--sort``
    listed the run columns."""
    kernel.ok("%%track score -m test_acc\ntest_acc = 0.93")
    kernel.ok("%%track report\nline = f'accuracy {test_acc:.0%}'")
    _settle(project_dir)
    both = "test_acc is both a parameter and a metric: write params.test_acc or metrics.test_acc"
    for args in (["--where", "test_acc > 0.5"], ["--sort", "test_acc"]):
        done = run_cli("ls", *args, cwd=project_dir)
        assert done.returncode == 2 and both in done.stderr, done.stderr
    done = run_cli("ls", "--where", "metrics.test_acc > 0.5", "--json", cwd=project_dir)
    assert [r["name"] for r in json.loads(done.stdout)["runs"]] == ["score"]
    done = run_cli("ls", "--sort", "params.test_acc", "--json", cwd=project_dir)
    assert [r["name"] for r in json.loads(done.stdout)["runs"]] == ["report", "score"]


def test_the_time_limit_interrupts_a_query_that_would_never_end(three) -> None:
    client, _ = three
    endless = "SELECT count(*) FROM range(3000000) a, range(3000000) b"
    with (
        pytest.raises(QueryTimeoutError, match="stopped"),
        client._store.connect() as con,
        time_limit(con, 0.2),
    ):
        con.execute(endless).fetchall()
    assert client.list_runs().total == 3


# ------------------------------------------------------------------ fuzzing the checker
TOKENS = [
    "lr", "acc", "status", "params.lr", '"metrics.acc"', "name", "x",
    "0", "1", "-2.5", "1e3", "'a'", "'it''s'", "NULL", "TRUE",
    "=", "<>", "<", ">=", "+", "-", "*", "/", "%", "||", "AND", "OR", "NOT",
    "IN", "BETWEEN", "LIKE", "IS", "(", ")", ",", ";", "--", "/*", "*/",
    "SELECT", "FROM", "UNION", "LIMIT", "ORDER BY", "abs(", "lower(", "coalesce(",
    "current_setting(", "duckdb_databases()", "read_csv(", "range(", "?", "$1", "::",
    "DOUBLE", "CASE", "WHEN", "THEN", "ELSE", "END",
]  # fmt: skip


def _check_rendered(text: str) -> None:
    try:
        once = compile_where(text, COLUMNS, strict=True)
    except QueryError:
        return
    except Exception as exc:  # anything else is a bug the fuzzing found: name the input
        raise AssertionError(f"{text!r} raised {exc!r}") from exc
    # What we wrote is itself one allowed condition, and writing it again is stable.
    twice = compile_where(once, COLUMNS, strict=True)
    assert compile_where(twice, COLUMNS, strict=True) == twice
    assert "--" not in once and ";" not in once
    _assert_only_allowed_calls(parse(once))


def _assert_only_allowed_calls(node: object) -> None:
    if isinstance(node, dict):
        if node.get("class") == "FUNCTION" and not node.get("is_operator"):
            assert node["function_name"] in STRICT_FUNCTIONS
        assert node.get("class") not in ("SUBQUERY", "STAR", "PARAMETER", "WINDOW")
        for value in node.values():
            _assert_only_allowed_calls(value)
    elif isinstance(node, list):
        for value in node:
            _assert_only_allowed_calls(value)


def _token_filters(seed: int, count: int, longest: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(TOKENS, k=rng.randint(1, longest))) for _ in range(count)]


def _raw_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    # (a lone surrogate, from a byte that is not UTF-8, was a DuckDB InvalidInputException)
    alphabet = "abclr_.'\"()-+*/%<>=!|;,:?$ 0123456789\n\t\\\x00é\ud800"
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 60))) for _ in range(count)]


def test_whatever_tokens_come_the_checker_refuses_or_writes_one_allowed_condition() -> None:
    # Seeded: a failure names the filter, and the next run sees the same filters.
    for text in _token_filters(seed=14, count=3000, longest=14):
        _check_rendered(text)


def test_any_text_is_refused_with_a_query_error_or_rendered() -> None:
    for text in _raw_texts(seed=14, count=2000):
        _check_rendered(text)


def test_fuzzed_filters_on_a_real_store_answer_a_page_or_a_query_error(three) -> None:
    client, _ = three
    for text in _token_filters(seed=8, count=150, longest=10):
        try:
            page = client.list_runs(RunQuery(where=text, limit=2), safe=True)
        except QueryError:
            continue
        assert len(page.runs) <= 2, text
