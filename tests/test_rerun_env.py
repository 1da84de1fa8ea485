"""The right environment: a re-run's verdict names how its environment differs from the
recorded one, ``--strict-env`` makes that a failure, and ``--env recorded`` builds (with
uv, from PyPI, once) an environment holding the recorded versions and runs there.

Real papermill, real kernels, real virtual environments; ``six`` and ``idna`` are the
small pure-Python packages whose recorded versions differ from the ones installed here.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

from conftest import kernel_env, run_cli
from nbtrack.client import Client
from nbtrack.models import Batch, Environment, Run
from nbtrack.pipelines.recording import ExecutionRequest, execute_recorded
from nbtrack.project import resolve_project

OLD = {"six": "1.16.0", "idna": "3.6"}

VERSIONS_CELLS = [
    "import nbtrack\n%load_ext nbtrack",
    "%%track versions\nimport idna, six\nwith open('versions.txt', 'w') as fh:\n"
    "    fh.write(f'six={six.__version__} idna={idna.__version__}')\n"
    "nbtrack.log_metric('ok', 1.0)",
]


@pytest.fixture
def env_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("envs")


def recorded_with(project_dir: Path, packages: dict[str, str]) -> Run:
    """A notebook execution whose cell run's environment is then recorded with ``packages``
    changed (as if it had been made on another machine)."""
    (project_dir / ".nbtrack").mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in VERSIONS_CELLS]
    path = project_dir / "versions.ipynb"
    nbformat.write(nb, path)
    project = resolve_project(project_dir)
    record = execute_recorded(
        project, ExecutionRequest(str(path), path.read_text(encoding="utf-8"), {})
    )
    assert record.ok, record.error
    client = Client(project)
    [cell] = client.children(record.run_id)
    assert cell.environment is not None
    changed = {**cell.environment.packages, **packages}
    env = Environment(f"elsewhere-{len(packages)}", cell.environment.python, "elsewhere", changed)
    client.write_batches([Batch(cell.run_id, update={"env_id": env.env_id}, environment=env)])
    return client.get_run(cell.run_id)


def test_the_verdict_names_environment_differences_and_strict_env_fails_on_them(project_dir):
    # given a run whose recorded environment had older six and idna than this one
    original = recorded_with(project_dir, OLD)
    six, idna = metadata.version("six"), metadata.version("idna")

    # when it is re-run here, the difference is said before executing, and the verdict
    # (the code does the same under both) reproduces under it
    done = run_cli("rerun", original.run_id, cwd=project_dir)
    assert "differs from the one run" in done.stderr
    assert f"six {six} instead of 1.16.0" in done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"reproduced, under idna {idna} instead of 3.6, six {six} instead of 1.16.0: "
        in done.stdout
    )

    # with --strict-env the same difference means not reproduced
    done = run_cli("rerun", original.run_id, "--strict-env", "--json", cwd=project_dir)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["rerun_verdict"] == "not reproduced"
    assert result["verdict"]["environment"] == [
        f"idna {idna} instead of 3.6",
        f"six {six} instead of 1.16.0",
    ]


def test_env_recorded_runs_in_an_environment_with_the_recorded_versions_built_once(
    project_dir, env_cache
):
    original = recorded_with(project_dir, OLD)
    env = kernel_env(NBTRACK_ENV_CACHE=str(env_cache))

    done = run_cli("rerun", original.run_id, "--env", "recorded", cwd=project_dir, env=env)
    text = done.stdout + done.stderr
    assert "environment: recorded elsewhere-2, built: " in text, text
    workspace = next(ln for ln in done.stdout.splitlines() if ln.startswith("workspace: "))
    inside = project_dir / workspace.removeprefix("workspace: ") / "versions.txt"
    # the run imported the recorded versions
    assert inside.read_text() == "six=1.16.0 idna=3.6"
    # and recorded them as its environment: nothing differs from the original's
    assert "environment: six" not in done.stdout and "under six" not in done.stdout
    # the user's own file holds this environment's versions, untouched
    here = f"six={metadata.version('six')} idna={metadata.version('idna')}"
    assert (project_dir / "versions.txt").read_text() == here

    again = run_cli("rerun", original.run_id, "--env", "recorded", cwd=project_dir, env=env)
    assert "environment: recorded elsewhere-2, reused: " in again.stdout, again.stderr
    assert len(list(env_cache.iterdir())) == 1


def test_an_environment_that_cannot_be_built_names_the_package_and_leaves_nothing(
    project_dir, env_cache
):
    original = recorded_with(project_dir, {"six": "0.0.1"})
    env = kernel_env(NBTRACK_ENV_CACHE=str(env_cache))
    done = run_cli("rerun", original.run_id, "--env", "recorded", cwd=project_dir, env=env)
    assert done.returncode == 1
    assert "cannot build the recorded environment: six==0.0.1 could not be installed" in done.stderr
    assert list(env_cache.iterdir()) == []
    assert len(Client(resolve_project(project_dir)).list_runs().runs) == 1  # nothing executed
