"""``nbtrack sweep``: a parameter grid executed on the local pool, each execution a notebook run.

Real kernels and real papermill on ``tests/notebooks/pipe_train.ipynb``; ``crash=True``
makes the kernel kill the worker process that launched it, mid-execution.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from nbtrack.cli import main
from nbtrack.client import Client
from nbtrack.models import Run, RunQuery
from nbtrack.pipelines.parameters import parse_axes
from nbtrack.pipelines.sweep import plan_sweep
from nbtrack.project import resolve_project
from waiting import wait_until

NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def pipe_project(project_dir: Path) -> Path:
    """A project holding the test notebooks and their data, with an empty store."""
    for name in ("pipe_train.ipynb", "pipe_noparams.ipynb"):
        shutil.copy(NOTEBOOKS / name, project_dir)
    (project_dir / "pipe_data.csv").write_text("1\n2\n3\n")
    (project_dir / ".nbtrack").mkdir()
    return project_dir


def notebook_runs(folder: Path) -> list[Run]:
    client = Client(resolve_project(folder))
    page = client.list_runs(RunQuery(kind="notebook", limit=100))
    return [client.get_run(r.run_id) for r in page.runs]


def wait_for_crashed_cells(folder: Path, parents: set[str], timeout: float = 30) -> list[Run]:
    """Cell runs of ``parents`` once their orphaned kernels died and were recovered as crashed."""

    def cells() -> list[Run]:
        client = Client(resolve_project(folder))  # a fresh client recovers dead kernels' spools
        return [c for p in parents for c in client.children(p)]

    return wait_until(
        cells,
        lambda found: len(found) == len(parents) and all(c.status == "crashed" for c in found),
        timeout=timeout,
        interval=0.5,
        what=f"{len(parents)} crashed cell runs",
    )


def test_a_grid_runs_in_parallel_and_prints_a_table_sorted_by_a_metric(pipe_project):
    done = run_cli(
        "sweep", "pipe_train.ipynb", "-p", "lr", "0.1", "0.2", "-p", "depth", "3", "5",
        "-j", "2", "--sort", "acc", "--json", cwd=pipe_project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4/4" in done.stderr  # the progress bar
    sweep = json.loads(done.stdout)
    assert (sweep["executions"], sweep["failed"]) == (4, 0)
    assert sweep["param_keys"] == ["lr", "depth"] and sweep["metric_keys"] == ["acc"]
    accs = [r["metrics"]["acc"] for r in sweep["runs"]]
    assert accs == sorted(accs, reverse=True)
    assert [(r["parameters"]["lr"], r["parameters"]["depth"]) for r in sweep["runs"]] == [
        (0.1, 5), (0.1, 3), (0.2, 5), (0.2, 3),
    ]  # fmt: skip
    for row in sweep["runs"]:
        assert Path(row["executed_notebook"]).is_file()

    runs = notebook_runs(pipe_project)
    assert len(runs) == 4
    assert {r.tags["sweep"] for r in runs} == {sweep["sweep_id"]}
    client = Client(resolve_project(pipe_project))
    for run in runs:
        [cell] = client.children(run.run_id)
        assert cell.params["lr"] == run.params["lr"] and cell.param_sources["lr"] == "papermill"
        assert {d.path for d in cell.data} == {"pipe_data.csv", "pipe_out.txt"}


def test_a_failed_execution_is_recorded_with_its_error_and_the_others_go_on(pipe_project):
    done = run_cli(
        "sweep", "pipe_train.ipynb", "-p", "data_file", "missing.csv", "pipe_data.csv",
        "-p", "epochs", "2", "--sort", "acc", "--asc", "--no-progress", cwd=pipe_project,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        "parameter 'epochs' is not assigned in the 'parameters' cell "
        "(it declares: lr, depth, seed, noise, crash, data_file, out_file); papermill injects it anyway"
    ) in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["notebook_run", "status", "data_file", "epochs", "acc"]
    assert lines[1].split()[1:4] == ["finished", "pipe_data.csv", "2"]  # runs with acc first
    assert lines[2].split()[1:] == ["failed", "missing.csv", "2"]
    assert "2 execution(s), 1 failed" in done.stdout
    assert "raised FileNotFoundError" in done.stdout
    # and the footer names real ids that lead to the cell runs, and a real executed notebook
    best = lines[1].split()[0]
    sweep_id = re.search(r"sweep (\w+): 2 execution", done.stdout)[1]
    assert f"nbtrack ls --parent {sweep_id}; of one execution: nbtrack ls --parent {best}" in (
        done.stdout
    )
    assert f"executed notebooks: .nbtrack/executions/{best}" in done.stdout
    for parent, expected in ((best, 1), (sweep_id, 2)):
        listed = run_cli("ls", "--parent", parent, "--json", cwd=pipe_project)
        cells = json.loads(listed.stdout)["runs"]
        assert len(cells) == expected and {c["kind"] for c in cells} == {"cell"}
        if expected == 1:
            assert cells[0]["parent_id"].startswith(best)
    statuses = {r.params["data_file"]: (r.status, r.error) for r in notebook_runs(pipe_project)}
    assert statuses["pipe_data.csv"] == ("finished", None)
    status, error = statuses["missing.csv"]
    assert status == "failed" and "`%%track train` raised FileNotFoundError" in error


def test_a_worker_killed_mid_execution_fails_that_execution_only_and_keeps_what_was_stored(
    pipe_project,
):
    done = run_cli(
        "sweep", "pipe_train.ipynb", "-p", "crash", "False", "True", "-p", "lr", "0.1", "0.2",
        "-j", "2", "--json", "--no-progress", cwd=pipe_project,
    )  # fmt: skip
    assert done.returncode == 1
    sweep = json.loads(done.stdout)
    by_crash = {(r["parameters"]["crash"], r["parameters"]["lr"]): r for r in sweep["runs"]}
    for lr in (0.1, 0.2):
        assert by_crash[(False, lr)]["status"] == "finished"
        killed = by_crash[(True, lr)]
        assert killed["status"] == "failed"
        assert killed["error"] == "the worker process was killed (SIGKILL) during the execution"
    killed_ids = {by_crash[(True, lr)]["run_id"] for lr in (0.1, 0.2)}
    stored = {r.run_id: r for r in notebook_runs(pipe_project)}
    assert len(stored) == 4 and {stored[i].status for i in killed_ids} == {"failed"}
    # The cells the dead workers' kernels were running: crashed, with what they had logged.
    for cell in wait_for_crashed_cells(pipe_project, killed_ids):
        logged = {k: v for k, v in cell.metrics.items() if not k.startswith("system/")}
        assert logged == {"progress": 0.5}


def test_random_samples_of_the_grid_are_reproducible_with_a_seed(pipe_project):
    axes = parse_axes([["lr", "0.1", "0.2", "0.3"], ["depth", "1", "2", "3"]])
    first = plan_sweep(pipe_project / "pipe_train.ipynb", axes, random_k=3, seed=7)
    again = plan_sweep(pipe_project / "pipe_train.ipynb", axes, random_k=3, seed=7)
    assert first.points == again.points and len(first.points) == 3 and first.grid_size == 9
    assert [r.parameters for r in first.requests] == first.points
    assert len({r.tags["sweep"] for r in first.requests}) == 1
    everything = plan_sweep(pipe_project / "pipe_train.ipynb", axes, random_k=20, seed=1)
    assert len(everything.points) == 9
    assert everything.warnings == ["--random 20 is more than the 9 grid points: running all"]


def test_a_notebook_without_a_parameters_cell_is_executed_with_papermills_behaviour_stated(
    pipe_project,
):
    done = run_cli(
        "sweep", "pipe_noparams.ipynb", "-p", "x", "2", "--no-progress", cwd=pipe_project
    )
    assert done.returncode == 0, done.stderr
    assert "pipe_noparams.ipynb has no cell tagged 'parameters'" in done.stderr
    assert "injects the parameters in a new cell at the top of the notebook" in done.stderr
    # As the warning says: the notebook's own `x = 1` overrides the injected x = 2.
    assert done.stdout.splitlines()[1].split()[1:] == ["finished", "2", "1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "lr", "[0.1"], "malformed parameter value '[0.1'"),
        (["-p", "1lr", "0.1"], "malformed parameter name '1lr'"),
        (["-p", "lr"], "-p lr needs at least one value"),
        (
            ["-p", "lr", "0.1", "--executor", "slurm"],
            "unknown executor 'slurm' (valid: dask, local)",
        ),
        (["-p", "lr", "0.1", "--executor", "dask"], "--executor dask needs --scheduler ADDRESS"),
        (["-p", "lr", "0.1", "-j", "0"], "-j must be at least 1"),
        (
            ["-p", "lr", "0.1", "--timeout", "-5"],
            "a time limit per cell is a number of seconds above 0, not -5",
        ),
        (["-p", "lr", "0.1", "--timeout", "0"], "above 0, not 0; leave --timeout out for none"),
        (["-p", "lr", "0.1", "--timeout", "nan"], "above 0, not nan"),
    ],
)
def test_malformed_sweeps_are_usage_errors_that_run_nothing(pipe_project, capsys, args, message):
    assert main(["sweep", "pipe_train.ipynb", *args]) == 2
    assert message in capsys.readouterr().err
    assert notebook_runs(pipe_project) == []


def test_a_missing_notebook_is_a_usage_error(pipe_project, capsys):
    assert main(["sweep", "nope.ipynb", "-p", "lr", "1"]) == 2
    assert "no such notebook: nope.ipynb" in capsys.readouterr().err
