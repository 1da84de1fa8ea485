"""Headless runs as a data scientist launches them (eighteenth papermill and pipeline
trial): parameters cells with type hints and comments, parameters read through a
function, grids of two parameters filtered and sorted afterwards, sweep members
re-run and compared, notebooks with no tracked cell, output notebooks and files written
into the project, with real kernels, real papermill and the real CLI, then the record
read back as a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import json
import subprocess

from conftest import kernel_env, run_cli
from test_pipelines_trial12 import _notebook
from test_pipelines_trial16 import LOAD, PAPERMILL, _papermill


def test_a_grid_over_parameters_named_like_sql_keywords_is_filtered_by_their_bare_names(
    tmp_path,
):
    """``nbtrack sweep nb.ipynb -p order 1 2 -p group a b`` (a polynomial's order, a data
    group: names a notebook uses), then ``nbtrack ls --where "order > 1 and group = 'b'"``:
    "bad filter …: syntax error at or near "order"", where ``lr > 0.1`` finds runs by
    their bare names; only ``params.order`` or a quoted ``"order"`` worked."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = order * (2 if group == 'b' else 1)"
    _notebook(
        tmp_path / "nb.ipynb", [(LOAD, []), ("order = 1\ngroup = 'a'", ["parameters"]), (fit, [])]
    )
    done = run_cli(
        "sweep", "nb.ipynb", "-p", "order", "1", "2", "-p", "group", "a", "b", "-j", "2",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    def where(condition: str, kind: str = "notebook") -> list[tuple[object, ...]]:
        done = run_cli("ls", "--kind", kind, "--where", condition, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs = json.loads(done.stdout)["runs"]
        return sorted(
            (r["params"]["order"], r["params"]["group"], r["metrics"].get("s")) for r in runs
        )

    assert where("order > 1 and group = 'b'") == [(2, "b", None)]
    assert where("order = 1 OR group = 'a'", "cell") == [(1, "a", 1), (1, "b", 2), (2, "a", 2)]
    assert where("s >= 2 and order < 2", "cell") == [(1, "b", 2)]
    # a filter that is wrong stays an error naming the filter as written
    done = run_cli("ls", "--where", "order >", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "bad filter 'order >'" in done.stderr


def test_a_papermill_run_with_no_tracked_cell_is_recorded_and_its_rerun_says_what_to_do(
    tmp_path,
):
    """``papermill plain.ipynb out.ipynb -p lr 0.5`` of a notebook with ``%load_ext
    nbtrack`` and no ``%%track`` cell: the notebook run is recorded with ``lr=0.5``
    (papermill) and its notebook path; ``nbtrack rerun`` of it said "records no notebook
    path (was it made outside a notebook?)", where ``show`` names plain.ipynb; and
    ``rerun --current`` said "mode: as-saved (asked for (--as-saved))"."""
    (tmp_path / ".nbtrack").mkdir()
    work = "s = lr * 2\nopen('o.txt', 'w').write(str(s))"
    _notebook(tmp_path / "plain.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (work, [])])
    assert _papermill(tmp_path, "plain.ipynb", "out.ipynb", "-p", "lr", "0.5") == 0
    (tmp_path / "out.ipynb").unlink()
    done = run_cli("ls", "--kind", "all", "--json", cwd=tmp_path)
    (run,) = json.loads(done.stdout)["runs"]
    assert (run["kind"], run["status"], run["notebook_path"]) == (
        "notebook",
        "finished",
        "plain.ipynb",
    )
    assert (run["params"], run["param_sources"]) == ({"lr": 0.5}, {"lr": "papermill"})
    short = run["run_id"][:8]
    done = run_cli("rerun", short, cwd=tmp_path)
    assert done.returncode == 1
    assert " ".join(done.stderr.split()) == (
        f"nbtrack: error: run {short} of plain.ipynb ran no %%track cell, and nbtrack keeps "
        "the code a kernel ran and its notebook's snapshot with those: nothing recorded to "
        f"re-execute; `nbtrack rerun {short} --current` executes plain.ipynb as it is today"
    )
    done = run_cli("rerun", short, "--current", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mode: as-saved (asked for (--current))" in done.stderr
    assert done.stdout.startswith("new run ")
    shown = run_cli("show", done.stdout.split()[2], "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["params"] == {"lr": 0.5}


def test_a_dask_execution_retried_after_its_worker_died_says_so(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.5 2 --executor dask`` on a LocalCluster with
    Dask's default retries, the point ``lr=2`` killing its worker once mid-cell (as an
    out-of-memory kill would): Dask re-ran it on the other worker and the record was a
    plain ``finished`` run, nothing saying an attempt died after writing into the project
    (here ``killed``)."""
    from distributed import LocalCluster

    (tmp_path / ".nbtrack").mkdir()
    fit = (
        "%%track fit -m s\nimport os, signal\nfrom pathlib import Path\n"
        "if lr > 1 and not Path('killed').exists():\n"
        "    Path('killed').write_text('x')\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "s = lr * 2"
    )
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        done = run_cli(
            "sweep", "nb.ipynb", "-p", "lr", "0.5", "2", "--no-progress", "--json",
            "--executor", "dask", "--scheduler", cluster.scheduler_address, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "killed").exists()
    rows = {r["parameters"]["lr"]: r for r in json.loads(done.stdout)["runs"]}
    assert {lr: r["status"] for lr, r in rows.items()} == {0.5: "finished", 2: "finished"}
    shown = {lr: run_cli("show", r["run_id"], "--json", cwd=tmp_path) for lr, r in rows.items()}
    tags = {lr: json.loads(s.stdout)["tags"] for lr, s in shown.items()}
    assert tags[2]["dask_worker_deaths"] == "1"
    assert "dask_worker_deaths" not in tags[0.5]


def test_a_sweep_sorted_by_a_misspelt_metric_still_prints_what_it_ran(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.3 0.2 --sort los`` (for ``loss``): both
    executions ran and were recorded, then the sweep printed only "--sort los: no such
    metric in this sweep (metrics: loss)" and exited 2: no table, no sweep id, no run
    ids, an exit code that says nothing ran right."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m loss\nloss = lr * 8"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    done = run_cli(
        "sweep", "nb.ipynb", "-p", "lr", "0.3", "0.2", "--sort", "los", "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--sort los: no such metric in this sweep (metrics: loss); in grid order" in (
        done.stderr
    )
    table = [line.split()[1:] for line in done.stdout.splitlines()[1:3]]
    assert table == [["finished", "0.3", "2.4"], ["finished", "0.2", "1.6"]]
    assert done.stdout.splitlines()[3].startswith("sweep ")


def test_a_filter_on_a_parameter_swept_over_numbers_and_text_says_how_to_compare_it(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.5 auto`` (a learning rate or the library's own
    choice), then ``nbtrack ls --where "lr > 0.2"``: "Binder Error: Cannot compare values of
    type VARCHAR and type DECIMAL(2,1) - an explicit cast is required", with nothing
    saying that one point's ``auto`` made ``lr`` a text column, nor what to write."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = 1.0 if lr == 'auto' else lr * 2"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    done = run_cli(
        "sweep", "nb.ipynb", "-p", "lr", "0.5", "auto", "-j", "2", "--no-progress", cwd=tmp_path
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_cli("ls", "--kind", "notebook", "--where", "lr > 0.2", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "(a parameter that holds text in some runs, as 'auto' beside numbers, is a text "
        "column: compare it as a number with TRY_CAST(name AS DOUBLE), which is NULL for "
        "the text)"
    ) in done.stderr
    hinted = "TRY_CAST(lr AS DOUBLE) > 0.2"
    done = run_cli("ls", "--kind", "notebook", "--where", hinted, "--json", cwd=tmp_path)
    assert [r["params"]["lr"] for r in json.loads(done.stdout)["runs"]] == [0.5]


def test_a_notebook_papermill_reads_from_stdin_is_not_recorded_as_its_output(tmp_path):
    """``cat nb.ipynb | papermill - out.ipynb -p lr 0.7`` (a notebook generated by a
    script, piped in): papermill's ``-`` was skipped as if it were an option, so the
    output was taken for the notebook: the notebook run and its cell run were recorded
    as ``out.ipynb``'s, a file papermill was writing, not the notebook that ran."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = lr * 2"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    done = subprocess.run(
        [PAPERMILL, "-", "out.ipynb", "-p", "lr", "0.7", "-k", "python3"],
        cwd=tmp_path, env=kernel_env(), capture_output=True, text=True, timeout=120,
        input=(tmp_path / "nb.ipynb").read_text(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_cli("ls", "--kind", "all", "--json", cwd=tmp_path)
    runs = sorted(json.loads(done.stdout)["runs"], key=lambda r: r["kind"])
    assert [(r["kind"], r["notebook_path"], r["params"]) for r in runs] == [
        ("cell", None, {"lr": 0.7}),
        ("notebook", None, {"lr": 0.7}),
    ]
    done = run_cli("rerun", runs[1]["run_id"], "--json", cwd=tmp_path)
    assert json.loads(done.stdout or "{}").get("rerun_verdict") == "reproduced", done.stderr
