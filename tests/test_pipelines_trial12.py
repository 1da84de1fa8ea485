"""Re-execution as a user does it (issue 15, twelfth trial): plain ``papermill``,
``jupyter nbconvert --execute`` and ``nbtrack rerun`` of what they made, with real
kernels, then the record read back as a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import kernel_env, run_cli
from nbtrack.client import Client
from nbtrack.models import Run
from test_magics import _settle

BIN = Path(sys.executable).parent
FIT = "%%track fit\ns = lr * n"


def _notebook(path: Path, cells: list[tuple[str, list[str]]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def _run(folder: Path, *argv: str) -> None:
    done = subprocess.run(
        list(argv), cwd=folder, env=kernel_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _papermill(folder: Path, notebook: str, output: str, *params: str) -> None:
    _run(folder, str(BIN / "papermill"), notebook, output, "-k", "python3", *params)


def _fit(client: Client, notebook: str, injected: bool) -> Run:
    """The ``fit`` cell run of the papermill execution of ``notebook`` (with ``-p`` or not)."""
    _, rows = client.sql(
        f"SELECT run_id FROM runs WHERE name = 'fit' AND notebook_path = '{notebook}' "
        "ORDER BY started_at"
    )
    runs = client.get_runs([r[0] for r in rows])
    return next(r for r in runs if ("papermill" in r.param_sources.values()) == injected)


@pytest.fixture(scope="module")
def load_in_parameters_cell(tmp_path_factory: pytest.TempPathFactory) -> Client:
    """``%load_ext nbtrack`` written in the parameters cell itself, as its first line
    (executed with no parameters) or its last (executed with ``-p lr 0.7``)."""
    folder = tmp_path_factory.mktemp("loadext")
    (folder / ".nbtrack").mkdir()
    params = "lr = 0.1\nn = 2"
    _notebook(folder / "first.ipynb", [(f"%load_ext nbtrack\n{params}", ["parameters"]), (FIT, [])])
    _notebook(folder / "last.ipynb", [(f"{params}\n%load_ext nbtrack", ["parameters"]), (FIT, [])])
    _papermill(folder, "first.ipynb", "first_out.ipynb")
    _papermill(folder, "last.ipynb", "last_out.ipynb", "-p", "lr", "0.7")
    return _settle(folder)


@pytest.mark.parametrize(
    ("notebook", "params", "sources"),
    [
        # papermill nb.ipynb out.ipynb: the notebook run held no parameter at all, and the
        # cell run called the defaults `upstream` values
        ("first.ipynb", {"lr": 0.1, "n": 2}, {"lr": "default", "n": "default"}),
        # papermill nb.ipynb out.ipynb -p lr 0.7: the notebook run held lr alone (the
        # default n was lost: a cell holding a magic line is no Python)
        ("last.ipynb", {"lr": 0.7, "n": 2}, {"lr": "papermill", "n": "default"}),
    ],
)
def test_load_ext_in_the_parameters_cell_keeps_the_defaults(
    load_in_parameters_cell, notebook, params, sources
):
    client = load_in_parameters_cell
    fit = _fit(client, notebook, injected="papermill" in sources.values())
    assert (fit.params, fit.param_sources) == (params, sources)
    parent = client.get_run(fit.parent_id)
    assert (parent.kind, parent.status) == ("notebook", "finished")
    assert (parent.params, parent.param_sources) == (params, sources)


def test_nbconvert_with_an_output_notebook_names_the_notebook_it_runs(tmp_path):
    """``jupyter nbconvert --to notebook --execute nb.ipynb --output done.ipynb``: the
    output's name was taken for a second notebook to run, so the run named none."""
    (tmp_path / ".nbtrack").mkdir()
    _notebook(tmp_path / "nb.ipynb", [("%load_ext nbtrack", []), ("%%track t\nx = 1", [])])
    _run(tmp_path, str(BIN / "jupyter-nbconvert"), "--to", "notebook", "--execute", "nb.ipynb",
         "--output", "done.ipynb")  # fmt: skip
    _, rows = _settle(tmp_path).sql("SELECT notebook_path FROM runs WHERE name = 't'")
    assert rows == [("nb.ipynb",)]


def test_a_rerun_of_a_plain_papermill_run_holds_its_defaults_too(tmp_path):
    """``papermill nb.ipynb out.ipynb -p lr 0.7`` then ``nbtrack rerun`` (as executed: plain
    papermill saves no notebook): the re-run's notebook run held lr alone, not n=2."""
    (tmp_path / ".nbtrack").mkdir()
    _notebook(tmp_path / "nb.ipynb",
              [("%load_ext nbtrack", []), ("lr = 0.1\nn = 2", ["parameters"]), (FIT, [])])  # fmt: skip
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "-p", "lr", "0.7")
    original = _settle(tmp_path).get_run(_fit(_settle(tmp_path), "nb.ipynb", True).parent_id)
    done = run_cli("rerun", original.run_id, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["mode"], result["rerun_verdict"]) == ("as-executed", "reproduced")
    again = _settle(tmp_path).get_run(result["run_id"])
    assert again.params == original.params == {"lr": 0.7, "n": 2}
    assert again.param_sources == original.param_sources == {"lr": "papermill", "n": "default"}


def test_a_sweep_given_no_parameters_calls_the_defaults_its_cells_read_default(tmp_path):
    """``nbtrack sweep nb.ipynb`` with no ``-p`` (papermill then injects no cell): the cell
    run called lr and n ``upstream`` values, where plain papermill says ``default``."""
    (tmp_path / ".nbtrack").mkdir()
    _notebook(tmp_path / "nb.ipynb",
              [("%load_ext nbtrack", []), ("lr = 0.1\nn = 2", ["parameters"]), (FIT, [])])  # fmt: skip
    done = run_cli("sweep", "nb.ipynb", "--no-progress", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    client = _settle(tmp_path)
    fit = _fit(client, "nb.ipynb", injected=False)
    assert (fit.params, fit.param_sources) == (
        {"lr": 0.1, "n": 2},
        {"lr": "default", "n": "default"},
    )
    [row] = json.loads(done.stdout)["runs"]  # the sweep's notebook run, and no other
    assert client.sql("SELECT run_id FROM runs WHERE kind = 'notebook'")[1] == [(row["run_id"],)]
    parent = client.get_run(fit.parent_id)
    assert (parent.run_id, parent.params, parent.param_sources) == (
        row["run_id"],
        fit.params,
        fit.param_sources,
    )


def test_the_diff_of_two_notebook_runs_shows_what_their_cells_logged_and_wrote(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.1 0.2`` prints each notebook run with its acc; then
    ``nbtrack diff A B`` of those two ids showed lr alone: not the acc they differ by, nor
    the file they wrote."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m acc\nacc = lr * n\nopen('model.txt', 'w').write(str(acc))"
    _notebook(tmp_path / "nb.ipynb",
              [("%load_ext nbtrack", []), ("lr = 0.1\nn = 2", ["parameters"]), (fit, [])])  # fmt: skip
    done = run_cli("sweep", "nb.ipynb", "-p", "lr", "0.1", "0.2", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = sorted(json.loads(done.stdout)["runs"], key=lambda row: row["parameters"]["lr"])
    a, b = (row["run_id"] for row in rows)
    diff = _settle(tmp_path).diff(a, b)
    assert [(c.key, c.a, c.b) for c in diff.params] == [("lr", 0.1, 0.2)]
    assert [(c.key, c.a, c.b) for c in diff.metrics if c.key == "acc"] == [("acc", 0.2, 0.4)]
    assert [(c.path, c.role, c.kind) for c in diff.data] == [("model.txt", "output", "changed")]
    shown = run_cli("diff", a, b, cwd=tmp_path).stdout
    assert "acc" in shown and "model.txt" in shown


@pytest.mark.parametrize("params", [[], ["-p", "lr", "0.5"]])
def test_a_setup_cell_that_loads_nbtrack_then_raises_fails_the_notebook_run(tmp_path, params):
    """``papermill nb.ipynb out.ipynb`` where the first cell is ``%load_ext nbtrack`` and
    an import that fails: papermill stops there, and the notebook run said ``finished``;
    given ``-p`` (its cell comes after the failure), nothing at all was recorded."""
    (tmp_path / ".nbtrack").mkdir()
    setup = "%load_ext nbtrack\nimport no_such_module_here"
    _notebook(tmp_path / "nb.ipynb",
              [(setup, []), ("lr = 0.1", ["parameters"]), ("%%track fit\nx = lr", [])])  # fmt: skip
    done = subprocess.run(
        [str(BIN / "papermill"), "nb.ipynb", "out.ipynb", "-k", "python3", *params],
        cwd=tmp_path, env=kernel_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and "PapermillExecutionError" in done.stderr
    _, rows = _settle(tmp_path).sql("SELECT kind, status, error FROM runs")
    assert rows == [
        (
            "notebook",
            "failed",
            "In[1] raised ModuleNotFoundError: No module named 'no_such_module_here'",
        )
    ]


def test_a_rerun_that_fails_as_its_original_did_is_recorded_reproduced_as_it_says(tmp_path):
    """``nbtrack rerun`` of a papermill run whose cell raised printed "reproduced" and exited
    0, while the runs it made carried ``rerun_verdict = failed``: the panel and ``ls``
    said the opposite of the command. A failure that comes back the same is reproduced."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit\nx = lr\nraise ValueError(f'bad lr {lr}')"
    _notebook(tmp_path / "nb.ipynb",
              [("%load_ext nbtrack", []), ("lr = 0.1", ["parameters"]), (fit, [])])  # fmt: skip
    done = subprocess.run(
        [str(BIN / "papermill"), "nb.ipynb", "out.ipynb", "-k", "python3", "-p", "lr", "0.5"],
        cwd=tmp_path, env=kernel_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    client = _settle(tmp_path)
    _, rows = client.sql("SELECT run_id FROM runs WHERE kind = 'notebook' AND status = 'failed'")
    original = rows[0][0]
    done = run_cli("rerun", original, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert (result["status"], result["reproduced"]) == ("failed", True)
    assert result["rerun_verdict"] == "reproduced"
    again = _settle(tmp_path).get_runs([result["run_id"], *result["child_ids"]])
    assert {(r.status, r.rerun_verdict) for r in again} == {("failed", "reproduced")}
    # and their diff finds the outcome the same: one failure, said by papermill's kernel
    # ("In[3] raised ...") and by the replay ("a replayed cell raised ...")
    diffed = json.loads(run_cli("diff", original, result["run_id"], "--json", cwd=tmp_path).stdout)
    assert diffed["outcome"] == [], diffed["outcome"]


def test_a_later_cell_that_sets_an_injected_parameter_again_is_warned_under_the_cell(tmp_path):
    """A notebook with no ``parameters`` cell run with ``papermill -p lr 0.5``: papermill
    puts its cell first, a later ``lr = 0.1`` wins, and the notebook run's lr=0.5
    (papermill) is not what ran. The cell that read lr says so; nothing did."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit\ns = lr * 2"
    _notebook(tmp_path / "nb.ipynb", [("%load_ext nbtrack", []), ("lr = 0.1", []), (fit, [])])
    _notebook(tmp_path / "ok.ipynb",
              [("%load_ext nbtrack", []), ("lr = 0.1", ["parameters"]), (fit, [])])  # fmt: skip
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "-p", "lr", "0.5")
    _papermill(tmp_path, "ok.ipynb", "ok_out.ipynb", "-p", "lr", "0.5")

    def summary(output: str) -> str:
        cell = nbformat.read(tmp_path / output, as_version=4).cells[-1]
        return "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)

    assert "param lr: the cell read 0.1, not the 0.5 papermill injected" in summary("out.ipynb")
    assert "papermill injected" not in summary("ok_out.ipynb")  # (lr=0.5, as injected)
    fit_runs = _settle(tmp_path).get_runs(
        [r[0] for r in _settle(tmp_path).sql("SELECT run_id FROM runs WHERE name = 'fit'")[1]]
    )
    assert sorted(r.params["lr"] for r in fit_runs) == [0.1, 0.5]
