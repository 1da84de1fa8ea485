"""The REST API under <base_url>/nbtrack/api/, against a real Jupyter server and real stores.

Runs are recorded with ``factory.record_run`` (a ``RunWriter``) into a real DuckDB file under the server's root;
the server is started by pytest-jupyter with unauthenticated access disabled.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPResponse

from factory import record_run
from jupyter_fixtures import _no_store_override, jp_server_config  # noqa: F401 - fixtures
from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import Project, resolve_project
from nbtrack.server.handlers import run_summary

pytest_plugins = ("pytest_jupyter.jupyter_server",)


@pytest.fixture
def project(jp_root_dir: Path) -> Project:
    """A project folder ``proj/`` under the server root, with an (empty) store folder."""
    (jp_root_dir / "proj" / "sub").mkdir(parents=True)
    (jp_root_dir / "proj" / ".nbtrack").mkdir()
    (jp_root_dir / "proj" / "train.ipynb").write_text("{}")
    return resolve_project(start=jp_root_dir / "proj")


def train_cell(project: Project, source: str = "x = 1") -> dict[str, str]:
    """Where a cell run of these tests comes from: cell ``cell-1`` of proj/train.ipynb."""
    return {
        "notebook_path": str(project.root / "train.ipynb"),
        "cell_id": "cell-1",
        "source": source,
    }


@pytest.fixture
def three_runs(project: Project) -> list[str]:
    """Three runs of one cell: lr 0.1 / 0.01 / 0.001, the last one failed."""
    return [
        record_run(
            project,
            "train",
            params={"lr": 0.1, "depth": 3},
            metrics={"acc": [0.5, 0.7]},
            **train_cell(project),
        ),
        record_run(
            project,
            "train",
            params={"lr": 0.01, "depth": 3},
            metrics={"acc": [0.6, 0.9]},
            **train_cell(project, source="x = 2"),
        ),
        record_run(
            project,
            "train",
            params={"lr": 0.001, "depth": 5},
            metrics={"acc": [0.4]},
            status="failed",
            error="boom",
            **train_cell(project),
        ),
    ]


async def api(
    jp_fetch: Any,
    *parts: str,
    params: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Call the nbtrack API; return (status code, decoded JSON body)."""
    response: HTTPResponse = await jp_fetch(
        "nbtrack",
        "api",
        *parts,
        params=params or {},
        method=method,
        body=body,
        headers=headers,
        raise_error=False,
    )
    return response.code, json.loads(response.body or b"null")


# ------------------------------------------------------------------ authentication
ROUTES = [
    ("GET", ("status",)),
    ("GET", ("runs",)),
    ("GET", ("runs", "last")),
    ("GET", ("runs", "last", "metrics")),
    ("GET", ("diff",)),
    ("GET", ("compare",)),
    ("POST", ("runs", "last", "rerun")),
    ("GET", ("jobs", "abcd")),
]


@pytest.mark.parametrize(("method", "parts"), ROUTES)
async def test_every_route_refuses_a_request_without_token(
    jp_fetch: Any, method: str, parts: tuple[str, ...]
) -> None:
    status, body = await api(
        jp_fetch,
        *parts,
        method=method,
        body="{}" if method == "POST" else None,
        headers={"Authorization": ""},
    )
    assert status == 403
    assert body["error"]["type"] == "Forbidden"


# ------------------------------------------------------------------ status
async def test_status_of_a_folder_without_runs_says_so_and_creates_nothing(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    (jp_root_dir / "empty").mkdir()
    status, body = await api(jp_fetch, "status", params={"path": "empty/nb.ipynb"})
    assert status == 200
    assert body["exists"] is False
    assert body["change_token"] == ""
    assert body["project_path"] == "empty"
    assert not (jp_root_dir / "empty" / ".nbtrack").exists()


async def test_status_token_changes_when_a_run_is_recorded(jp_fetch: Any, project: Project) -> None:
    record_run(project, "train", params={"lr": 0.1}, **train_cell(project))
    _, before = await api(jp_fetch, "status", params={"path": "proj/train.ipynb"})
    assert before["exists"] is True
    assert before["store_path"] == str(project.db_path)
    record_run(project, "train", params={"lr": 0.2}, **train_cell(project))
    _, after = await api(jp_fetch, "status", params={"path": "proj/train.ipynb"})
    assert after["change_token"] != before["change_token"]


# ------------------------------------------------------------------ listing
async def test_runs_are_listed_newest_first_with_their_columns(
    jp_fetch: Any, three_runs: list[str]
) -> None:
    status, page = await api(jp_fetch, "runs", params={"path": "proj/train.ipynb"})
    assert status == 200
    assert [run["run_id"] for run in page["runs"]] == three_runs[::-1]
    assert page["total"] == 3
    assert page["param_keys"] == ["depth", "lr"]
    assert page["metric_keys"] == ["acc"]
    newest = page["runs"][0]
    assert newest["status"] == "failed"
    assert newest["params"] == {"lr": 0.001, "depth": 5}
    assert newest["metrics"] == {"acc": 0.4}
    assert newest["notebook_path"] == "train.ipynb"
    assert newest["cell_id"] == "cell-1"
    # The list stays light: code and environment come with the run itself.
    assert "source" not in newest and "environment" not in newest


async def test_runs_are_paged_by_the_server(jp_fetch: Any, three_runs: list[str]) -> None:
    params = {"path": "proj", "limit": "2", "offset": "0"}
    _, first = await api(jp_fetch, "runs", params=params)
    _, second = await api(jp_fetch, "runs", params={**params, "offset": "2"})
    assert (first["total"], second["total"]) == (3, 3)
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == three_runs[::-1]


async def test_runs_sort_by_a_param_filter_by_condition_text_and_status(
    jp_fetch: Any, three_runs: list[str]
) -> None:
    base = {"path": "proj"}
    _, by_lr = await api(
        jp_fetch, "runs", params={**base, "sort": "params.lr", "descending": "false"}
    )
    assert [r["params"]["lr"] for r in by_lr["runs"]] == [0.001, 0.01, 0.1]

    _, good = await api(jp_fetch, "runs", params={**base, "where": "lr >= 0.01 AND acc > 0.8"})
    assert [r["run_id"] for r in good["runs"]] == [three_runs[1]]

    _, failed = await api(jp_fetch, "runs", params={**base, "status": "failed"})
    assert [r["run_id"] for r in failed["runs"]] == [three_runs[2]]

    _, by_text = await api(jp_fetch, "runs", params={**base, "text": three_runs[0][:10]})
    assert [r["run_id"] for r in by_text["runs"]] == [three_runs[0]]


async def test_notebook_runs_are_listed_on_request_and_show_their_cell_runs(
    jp_fetch: Any, project: Project
) -> None:
    parent = record_run(
        project,
        "train.ipynb",
        kind="notebook",
        params={"lr": 0.5},
        notebook_path=str(project.root / "train.ipynb"),
    )
    child = record_run(
        project, "train", params={"lr": 0.5}, parent_id=parent, **train_cell(project)
    )
    _, cells = await api(jp_fetch, "runs", params={"path": "proj"})
    _, everything = await api(jp_fetch, "runs", params={"path": "proj", "kind": "all"})
    assert [r["run_id"] for r in cells["runs"]] == [child]
    assert {r["run_id"] for r in everything["runs"]} == {parent, child}

    _, detail = await api(jp_fetch, "runs", parent, params={"path": "proj"})
    assert [c["run_id"] for c in detail["children"]] == [child]


async def test_a_sweep_id_lists_the_same_runs_as_ls_parent(jp_fetch: Any, project: Project) -> None:
    # Given a sweep of two notebook runs, each with a cell run, and a run outside it
    cells = []
    for lr in (0.1, 0.01):
        parent = record_run(
            project, "train.ipynb", kind="notebook", params={"lr": lr}, tags={"sweep": "sw1"}
        )
        cells.append(record_run(project, "train", params={"lr": lr}, parent_id=parent))
    record_run(project, "train", params={"lr": 1.0})
    # When the panel asks for the runs of the sweep
    _, page = await api(jp_fetch, "runs", params={"path": "proj", "sweep": "sw1"})
    # Then it gets the sweep's cell runs, exactly the rows `nbtrack ls --parent sw1` shows
    client = Client(project)
    parent_id, sweep = client.resolve_parent("sw1")
    listed = client.list_runs(RunQuery(parent_id=parent_id, sweep=sweep, kind="cell"))
    assert [r["run_id"] for r in page["runs"]] == [r.run_id for r in listed.runs]
    assert sorted(r["run_id"] for r in page["runs"]) == sorted(cells)


async def test_notebook_scope_lists_only_the_runs_of_the_notebook_in_front(
    jp_fetch: Any, project: Project, three_runs: list[str]
) -> None:
    # Given runs of train.ipynb and one of another notebook in the same project
    (project.root / "other.ipynb").write_text("{}")
    other = record_run(
        project,
        "eval",
        params={"label_noise": 0.2},
        notebook_path=str(project.root / "other.ipynb"),
        cell_id="c9",
    )
    # When the panel asks for the runs of each notebook
    _, train = await api(jp_fetch, "runs", params={"path": "proj/train.ipynb", "notebook": "1"})
    _, elsewhere = await api(
        jp_fetch, "runs", params={"path": "proj/other.ipynb", "notebook": "true"}
    )
    _, store = await api(jp_fetch, "runs", params={"path": "proj/train.ipynb"})
    # Then each lists its own runs; without the flag the whole store shows
    assert [r["run_id"] for r in train["runs"]] == three_runs[::-1]
    assert train["total"] == 3
    assert [r["run_id"] for r in elsewhere["runs"]] == [other]
    assert store["total"] == 4
    # ...also behind a condition (the filtered query path)
    _, filtered = await api(
        jp_fetch, "runs", params={"path": "proj/other.ipynb", "notebook": "1", "where": "lr > 0"}
    )
    assert filtered["total"] == 0


async def test_notebook_scope_needs_a_notebook_path(jp_fetch: Any, three_runs: list[str]) -> None:
    status, body = await api(jp_fetch, "runs", params={"path": "proj", "notebook": "1"})
    assert status == 400
    assert "notebook" in body["error"]["message"]


@pytest.mark.parametrize(
    ("params", "message_part"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"descending": "maybe"}, "descending"),
        ({"kind": "cells"}, "kind"),
        ({"status": "done"}, "status"),
        ({"sort": "colour"}, "sort"),
        ({"where": "lr >>> 1"}, "filter"),
        ({"where": "lr > 0) UNION SELECT 1 --"}, ""),
        ({"where": "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0"}, ""),
        ({"where": "1=1) --"}, "bad filter"),
        ({"where": "1=1) UNION SELECT 'x', 1 --"}, "bad filter"),
        ({"where": "current_setting('threads') > 0"}, "the function current_setting"),
        ({"where": "(SELECT count(*) FROM duckdb_databases()) > 0"}, "subquery"),
        ({"where": "(SELECT count(*) FROM range(3000000) a, range(3000000) b) > 0"}, "subquery"),
    ],
)
async def test_bad_list_parameters_are_a_400_with_a_message(
    jp_fetch: Any, three_runs: list[str], params: dict[str, str], message_part: str
) -> None:
    status, body = await api(jp_fetch, "runs", params={"path": "proj", **params})
    assert status == 400
    assert message_part in body["error"]["message"]


async def test_a_folder_without_store_lists_no_runs(jp_fetch: Any, jp_root_dir: Path) -> None:
    (jp_root_dir / "fresh").mkdir()
    status, page = await api(jp_fetch, "runs", params={"path": "fresh/a.ipynb"})
    assert status == 200
    assert (page["runs"], page["total"]) == ([], 0)


# ------------------------------------------------------------------ which store
@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.ipynb", "proj/../../x.ipynb", "~/nb"])
async def test_paths_that_leave_the_server_root_are_refused(
    jp_fetch: Any, project: Project, path: str
) -> None:
    status, body = await api(jp_fetch, "runs", params={"path": path})
    assert status == 400
    assert body["error"]["type"] == "UsageError"


async def test_a_symlink_out_of_the_root_is_refused(
    jp_fetch: Any, jp_root_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / ".nbtrack").mkdir(parents=True)
    (jp_root_dir / "link").symlink_to(outside)
    status, body = await api(jp_fetch, "status", params={"path": "link/nb.ipynb"})
    assert status == 400
    assert "outside the server root" in body["error"]["message"]


async def test_a_notebook_in_a_subfolder_uses_the_store_of_its_project(
    jp_fetch: Any, three_runs: list[str], project: Project, jp_root_dir: Path
) -> None:
    _, page = await api(jp_fetch, "runs", params={"path": "proj/sub/other.ipynb"})
    assert page["total"] == 3
    # A sibling folder with its own store shows that store, not ours.
    other = resolve_project(start=jp_root_dir)
    assert other.db_path != project.db_path
    _, root_page = await api(jp_fetch, "runs", params={"path": "top.ipynb"})
    assert root_page["total"] == 0


# ------------------------------------------------------------------ one run
async def test_a_run_by_prefix_has_code_params_metrics_and_environment(
    jp_fetch: Any, three_runs: list[str]
) -> None:
    status, run = await api(jp_fetch, "runs", three_runs[1][:6], params={"path": "proj"})
    assert status == 200
    assert run["run_id"] == three_runs[1]
    assert run["source"] == "x = 2"
    assert run["params"] == {"lr": 0.01, "depth": 3}
    assert run["metrics"] == {"acc": 0.9}
    assert run["environment"]["python"]


async def test_an_unknown_run_is_a_404_with_a_message(jp_fetch: Any, three_runs: list[str]) -> None:
    for parts in (("runs", "ffffffff"), ("runs", "ffffffff", "metrics")):
        status, body = await api(jp_fetch, *parts, params={"path": "proj"})
        assert status == 404
        assert body["error"]["type"] == "RunNotFoundError"
        assert "ffffffff" in body["error"]["message"]


async def test_a_run_in_a_folder_without_store_is_a_404(jp_fetch: Any, jp_root_dir: Path) -> None:
    (jp_root_dir / "fresh").mkdir()
    status, body = await api(jp_fetch, "runs", "last", params={"path": "fresh"})
    assert status == 404
    assert "no run recorded" in body["error"]["message"]


async def test_metric_series_come_step_by_step(jp_fetch: Any, three_runs: list[str]) -> None:
    status, body = await api(jp_fetch, "runs", three_runs[1], "metrics", params={"path": "proj"})
    assert status == 200
    assert body["run_id"] == three_runs[1]
    assert [(p["step"], p["value"]) for p in body["series"]["acc"]] == [(0, 0.6), (1, 0.9)]


async def test_nan_metrics_travel_as_strings(jp_fetch: Any, project: Project) -> None:
    run_id = record_run(
        project,
        "train",
        params={"lr": 1.0},
        metrics={"loss": [1.0, float("nan")]},
        **train_cell(project),
    )
    _, run = await api(jp_fetch, "runs", run_id, params={"path": "proj"})
    _, series = await api(jp_fetch, "runs", run_id, "metrics", params={"path": "proj"})
    assert run["metrics"]["loss"] == "NaN"
    assert series["series"]["loss"][1]["value"] == "NaN"


async def test_the_run_list_is_the_python_listing_value_for_value(
    jp_fetch: Any, project: Project
) -> None:
    # Given runs with NaN and infinite values, nested and odd-string parameters and tags
    record_run(
        project,
        "odd",
        params={
            "nan": float("nan"),
            "nested": {"a": [1, 2.5, None, "NaN"], "b": {"c": True}},
            "quote": 'say "Infinity" \\ now\n',
            "unicode": "α→β",
        },
        metrics={"m": float("nan"), "p": float("-inf"), "q": [1.0, -2.5e-7]},
        tags={"team": "a"},
        **train_cell(project),
    )
    record_run(project, "plain", params={"lr": 0.01}, metrics={"acc": 0.5})
    # When the panel lists them
    status, page = await api(jp_fetch, "runs", params={"path": "proj", "limit": "10"})
    # Then each row is the run's summary as the Python API has it, and the page its paging
    assert status == 200
    expected = json.loads(json.dumps(Client(project).list_runs(RunQuery(limit=10)).to_dict()))
    assert page["runs"] == [run_summary(r) for r in expected["runs"]]
    assert (page["total"], page["limit"], page["offset"]) == (2, 10, 0)
    assert (page["param_keys"], page["metric_keys"]) == (
        expected["param_keys"],
        expected["metric_keys"],
    )


# ------------------------------------------------------------------ diff and compare
async def test_diff_shows_what_differs_between_two_runs(
    jp_fetch: Any, three_runs: list[str]
) -> None:
    a, b = three_runs[0], three_runs[1]
    status, body = await api(jp_fetch, "diff", params={"path": "proj", "a": a[:8], "b": b})
    assert status == 200
    assert (body["a"], body["b"]) == (a, b)
    text = json.dumps(body["diff"])
    assert "lr" in text and "acc" in text
    assert "depth" not in text  # the same in both: left out by default
    _, full = await api(jp_fetch, "diff", params={"path": "proj", "a": a, "b": b, "all": "true"})
    assert "depth" in json.dumps(full["diff"])


async def test_the_panel_and_the_python_api_agree_on_runs_and_diffs(
    jp_fetch: Any, three_runs: list[str], project: Project
) -> None:
    """What the panel shows is what the summary widget and ``nbtrack.diff`` show."""
    client = Client(project)
    a, b = three_runs[0], three_runs[2]
    _, run = await api(jp_fetch, "runs", a, params={"path": "proj"})
    _, diff = await api(jp_fetch, "diff", params={"path": "proj", "a": a, "b": b})
    assert run == json.loads(json.dumps(client.get_run(a).to_dict()))
    assert diff["diff"] == json.loads(json.dumps(client.diff(a, b).to_dict()))


async def test_diff_needs_two_known_runs(jp_fetch: Any, three_runs: list[str]) -> None:
    status, body = await api(jp_fetch, "diff", params={"path": "proj", "a": three_runs[0]})
    assert status == 400
    assert "two runs" in body["error"]["message"]
    status, _ = await api(
        jp_fetch, "diff", params={"path": "proj", "a": three_runs[0], "b": "eeee"}
    )
    assert status == 404


async def test_compare_diffs_every_run_against_the_first(
    jp_fetch: Any, three_runs: list[str]
) -> None:
    status, body = await api(
        jp_fetch, "compare", params={"path": "proj", "ids": ",".join(three_runs)}
    )
    assert status == 200
    assert [r["run_id"] for r in body["runs"]] == three_runs
    assert len(body["diffs"]) == 2
    status, body = await api(jp_fetch, "compare", params={"path": "proj", "ids": three_runs[0]})
    assert status == 400


# ------------------------------------------------------------------ re-run
TRAIN_CELLS = [
    ("lr = 0.1", ["parameters"]),
    ("import nbtrack\n%load_ext nbtrack", []),
    (
        "%%track train\nacc = 1.0 - lr\nfor step in range(3):\n    nbtrack.log_metric('loss', lr / (step + 1))",
        [],
    ),
]


def execute_notebook(project: Project, lr: float) -> str:
    """Execute a small tracked notebook with papermill as a pipeline does; return its notebook run."""
    from nbtrack.pipelines.recording import ExecutionRequest, execute_recorded

    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    notebook.cells = [
        nbformat.v4.new_code_cell(source, metadata={"tags": tags}) for source, tags in TRAIN_CELLS
    ]
    path = project.root / "train.ipynb"
    text = nbformat.writes(notebook)
    path.write_text(text)
    record = execute_recorded(
        project, ExecutionRequest(notebook=str(path), notebook_text=text, parameters={"lr": lr})
    )
    assert record.status == "finished", record.error
    return record.run_id


async def wait_for_job(jp_fetch: Any, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, job = await api(jp_fetch, "jobs", job_id)
        if job["state"] in ("finished", "failed"):
            return job
        await asyncio.sleep(0.25)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


async def test_rerun_starts_one_background_job_and_records_a_linked_run(
    jp_fetch: Any, project: Project
) -> None:
    original = execute_notebook(project, lr=0.2)
    status, job = await api(
        jp_fetch, "runs", original, "rerun", params={"path": "proj"}, method="POST", body="{}"
    )
    assert status == 202
    assert job["created"] is True and job["state"] in ("queued", "running")
    # Asking again while it runs gives the same job, not a second execution.
    status, again = await api(
        jp_fetch, "runs", original[:8], "rerun", params={"path": "proj"}, method="POST", body="{}"
    )
    assert (status, again["job_id"], again["created"]) == (202, job["job_id"], False)

    done = await wait_for_job(jp_fetch, job["job_id"])
    assert done["state"] == "finished", done["error"]
    assert done["result"]["reproduced"] is True
    new_id = done["result"]["run_id"]
    _, new_run = await api(jp_fetch, "runs", new_id, params={"path": "proj"})
    assert new_run["rerun_of"] == original
    assert new_run["rerun_verdict"] == "reproduced"
    assert new_run["params"] == {"lr": 0.2}
    # The job names the re-run's cell run, which the runs table lists with its link.
    _, table = await api(jp_fetch, "runs", params={"path": "proj"})
    shown = {r["run_id"]: r for r in table["runs"]}[done["result"]["shown_run_id"]]
    [original_cell] = [r for r in table["runs"] if r["parent_id"] == original]
    assert (shown["rerun_of"], shown["rerun_verdict"]) == (original_cell["run_id"], "reproduced")
    _, info = await api(jp_fetch, "status", params={"path": "proj"})
    assert info["rerun_available"] is True


async def test_rerun_of_a_run_without_notebook_is_refused_at_once(
    jp_fetch: Any, project: Project
) -> None:
    adhoc = record_run(project, "adhoc", params={"lr": 1})
    status, body = await api(
        jp_fetch, "runs", adhoc, "rerun", params={"path": "proj"}, method="POST", body="{}"
    )
    assert status == 409
    assert body["error"]["type"] == "PipelineError"
    assert "no notebook path" in body["error"]["message"]


async def test_an_unknown_job_is_a_404(jp_fetch: Any) -> None:
    status, body = await api(jp_fetch, "jobs", "abc123")
    assert status == 404
    assert "abc123" in body["error"]["message"]
