"""Executors: the registry, and a sweep on a real Dask ``LocalCluster`` whose workers
execute against scratch stores and hand bundles back, one of them killed mid-execution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster

from conftest import run_cli
from nbtrack.client import Client
from nbtrack.exceptions import UsageError
from nbtrack.models import RunQuery
from nbtrack.pipelines import executors
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

NOTEBOOKS = Path(__file__).parent / "notebooks"


def test_the_registry_names_its_executors_and_refuses_unknown_ones():
    assert executors.names() == ["dask", "local"]
    assert executors.get("local") is executors.LocalExecutor
    with pytest.raises(UsageError, match=r"unknown executor 'ray' \(valid: dask, local\)"):
        executors.get("ray")
    with pytest.raises(UsageError, match="--scheduler is for --executor dask"):
        executors.get("local")(jobs=2, scheduler="tcp://somewhere:8786")


@pytest.fixture
def cluster():
    # Dask would retry a task whose worker died on another worker; a notebook that kills
    # its worker would then kill them all. No retries: the first death fails the execution.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        ) as local_cluster,
    ):
        yield local_cluster


def test_a_dask_sweep_stores_what_workers_hand_back_and_reports_a_killed_worker(
    project_dir, cluster
):
    shutil.copy(NOTEBOOKS / "pipe_train.ipynb", project_dir)
    (project_dir / "pipe_data.csv").write_text("1\n2\n3\n")
    (project_dir / ".nbtrack").mkdir()
    project = resolve_project(project_dir)
    earlier = RunWriter.start(project, kind="cell", name="earlier")
    earlier.log_metric("acc", 0.5)
    earlier.finish("finished")
    earlier.wait()

    done = run_cli(
        "sweep", "pipe_train.ipynb", "-p", "crash", "False", "True", "--json", "--no-progress",
        "--executor", "dask", "--scheduler", cluster.scheduler_address, cwd=project_dir,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    rows = {r["parameters"]["crash"]: r for r in json.loads(done.stdout)["runs"]}
    assert rows[True]["status"] == "failed"
    assert rows[True]["error"].startswith("the Dask worker died during the execution (KilledWorker")
    assert rows[False]["status"] == "finished"

    client = Client(project)
    finished = client.get_run(rows[False]["run_id"])
    assert (finished.kind, finished.notebook_path) == ("notebook", "pipe_train.ipynb")
    # the injected value, marked as such, beside the parameters cell's defaults
    assert (finished.params["crash"], finished.param_sources["crash"]) == (False, "papermill")
    assert (finished.params["lr"], finished.param_sources["lr"]) == (0.1, "default")
    [cell] = client.children(finished.run_id)
    assert cell.metrics["acc"] == pytest.approx(1 - 0.1 / 18, abs=1e-3)
    # Recorded against this project's root, with the bytes brought back from the worker.
    assert {(d.path, d.role, d.in_project) for d in cell.data} == {
        ("pipe_data.csv", "input", True),
        ("pipe_out.txt", "output", True),
    }
    for version in cell.data:
        assert client.cache.has(version.hash)
    assert client.cache.has(finished.notebook_hash)
    assert Path(rows[False]["executed_notebook"]).is_file()
    assert client.get_run(rows[True]["run_id"]).status == "failed"
    # Nothing stored before was lost; nothing but these runs was added.
    assert client.get_run(earlier.run_id).metrics == {"acc": 0.5}
    everything = client.list_runs(RunQuery(kind=None, limit=100))
    assert everything.total == 4  # earlier + two notebook runs + one cell run


@pytest.mark.parametrize("deaths", [1, 3])
def test_a_kernel_that_dies_before_it_starts_is_started_again(tmp_path: Path, deaths: int) -> None:
    """Kernels started at once can pick the same free port; the second dies binding it
    ("Kernel died before replying to kernel_info", seen in a ``sweep -j 2`` of the demo).
    No cell ran, so the execution starts a kernel again, up to three times in all."""
    import sys

    import nbformat

    from nbtrack.pipelines.execute import START_ATTEMPTS, ExecutionSpec, execute

    # Given: an interpreter for the kernel that exits at once on its first `deaths` starts
    count = tmp_path / "starts"
    python = tmp_path / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'n=$(cat "{count}" 2>/dev/null || echo 0); echo $((n + 1)) > "{count}"\n'
        f'[ "$n" -lt {deaths} ] && exit 1\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])

    # When: the notebook is executed with it
    outcome = execute(
        ExecutionSpec(
            notebook_text=nbformat.writes(nb), input_path=str(tmp_path / "nb.ipynb"),
            output_path=str(tmp_path / "out.ipynb"), parameters={}, cwd=str(tmp_path),
            python=str(python), start_timeout=30,
        )
    )  # fmt: skip

    # Then: one death is forgiven and the cell ran once; three are a failure that says so
    if deaths < START_ATTEMPTS:
        assert outcome.status == "finished", outcome.error
        done = nbformat.read(tmp_path / "out.ipynb", as_version=4)
        assert done.cells[0].outputs[0]["text"] == "42\n"
        assert count.read_text().strip() == str(deaths + 1)
    else:
        assert outcome.status == "failed"
        assert "Kernel died before replying to kernel_info" in (outcome.error or "")
        assert count.read_text().strip() == str(START_ATTEMPTS)
