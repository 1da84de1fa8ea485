"""Headless runs as users launch them (sixteenth papermill and pipeline trial): other
runners (nbclient from a script, ``jupyter execute``, papermill on its own output), a
notebook that stops itself with ``sys.exit``, sweeps over awkward values and on a Dask
LocalCluster, re-runs of cell runs and of chained notebooks, with real kernels, real
papermill and real processes, then the record read back as a user would.

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
from test_magics import _settle
from test_pipelines_trial12 import _notebook

LOAD = "%load_ext nbtrack"
PAPERMILL = str(Path(sys.executable).parent / "papermill")


def _papermill(folder: Path, *args: str) -> int:
    done = subprocess.run(
        [PAPERMILL, *args, "-k", "python3"],
        cwd=folder, env=kernel_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode


@pytest.mark.parametrize(
    ("stop", "code", "status", "error"),
    [
        ("sys.exit(0)", 0, "finished", None),
        ("raise SystemExit", 0, "finished", None),
        ("sys.exit('bad data')", 1, "failed", "SystemExit: bad data"),
    ],
)
def test_a_notebook_that_stops_itself_with_sys_exit_0_is_finished_as_papermill_says(
    tmp_path, stop, code, status, error
):
    """``papermill nb.ipynb out.ipynb`` of a notebook whose tracked cell ends with
    ``sys.exit(0)`` (or a bare ``raise SystemExit``): papermill exits 0, as it documents
    for a notebook ended early on purpose, while the cell run and the notebook run read
    ``failed`` "In[3] raised SystemExit: 0". ``sys.exit('bad data')`` still fails both."""
    (tmp_path / ".nbtrack").mkdir()
    fit = f"%%track fit -m s\nimport sys\ns = lr * 2\n{stop}"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    assert _papermill(tmp_path, "nb.ipynb", "out.ipynb") == code
    _, rows = _settle(tmp_path).sql("SELECT kind, status, error FROM runs ORDER BY kind")
    where = None if error is None else f"In[3] raised {error}"
    assert rows == [("cell", status, error), ("notebook", status, where)]
    (cell,) = _settle(tmp_path).get_runs(["last"])
    assert cell.metrics["s"] == pytest.approx(0.2)


@pytest.mark.parametrize("cell_type", ["markdown", "raw"])
def test_a_markdown_parameters_cell_makes_no_defaults_of_the_code_cell_before_it(
    tmp_path, cell_type
):
    """``papermill nb.ipynb out.ipynb -p lr 0.5`` of a notebook whose cell tagged
    ``parameters`` is markdown (or raw): papermill injects its cell after that one, and the
    code cell that ran before it, a setup cell ``seed = 7; rows = [1, 2, 3]``, was taken
    for the defaults: the notebook run held ``seed`` and ``rows`` as ``default``
    parameters, and the cell reading ``rows`` held it as one too."""
    (tmp_path / ".nbtrack").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    tagged = {"markdown": nbformat.v4.new_markdown_cell, "raw": nbformat.v4.new_raw_cell}
    nb.cells = [
        nbformat.v4.new_code_cell(LOAD),
        nbformat.v4.new_code_cell("seed = 7\nrows = [1, 2, 3]"),
        tagged[cell_type]("## Parameters\n`lr`: the learning rate"),
        nbformat.v4.new_code_cell("%%track fit -m s\ns = lr * len(rows)"),
    ]
    nb.cells[2].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert _papermill(tmp_path, "nb.ipynb", "out.ipynb", "-p", "lr", "0.5") == 0
    _, rows = _settle(tmp_path).sql(
        "SELECT r.kind, p.key, p.source FROM params p JOIN runs r USING (run_id) ORDER BY 1, 2"
    )
    # rows: a value the cell read from an earlier cell, as a setup cell's always was
    assert rows == [
        ("cell", "lr", "papermill"),
        ("cell", "rows", "upstream"),
        ("notebook", "lr", "papermill"),
    ]


def test_a_sweep_of_a_notebook_whose_parameters_cell_is_markdown_says_where_papermill_injects(
    tmp_path,
):
    """``nbtrack sweep nb.ipynb -p lr 0.5`` of a notebook whose cell tagged ``parameters``
    is markdown warned "nb.ipynb has no cell tagged 'parameters': papermill injects the
    parameters in a new cell at the top", where papermill injects after that cell."""
    (tmp_path / ".nbtrack").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells = [
        nbformat.v4.new_code_cell(LOAD),
        nbformat.v4.new_markdown_cell("## Parameters"),
        nbformat.v4.new_code_cell("%%track fit -m s\ns = lr * 2"),
    ]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    done = run_cli("sweep", "nb.ipynb", "-p", "lr", "0.5", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "nb.ipynb's cell tagged 'parameters' is a markdown cell: papermill injects the "
        "parameters in a new cell after it, so any later assignment of lr in the notebook "
        "overrides the injected value"
    ) in " ".join(done.stderr.split())


def test_a_sweep_over_none_and_values_is_filtered_by_them_in_ls(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.5 None -p flag True None`` (None: no limit, no
    choice): its table showed a None as a blank (as it does a ``""``); then ``nbtrack ls
    --where``: ``lr > 0.1`` was "bad filter … Cannot compare
    values of type VARCHAR and type DECIMAL", ``flag = true`` "Could not convert string
    'null' to BOOL", and ``lr IS NULL`` found no run: a None was stored as the text
    ``null``, which made the column text and was no NULL."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = (lr or 0) * 2 if flag else 0"
    _notebook(
        tmp_path / "nb.ipynb",
        [(LOAD, []), ("lr = 0.1\nflag = False", ["parameters"]), (fit, [])],
    )
    done = run_cli(
        "sweep", "nb.ipynb", "-p", "lr", "0.5", "None", "-p", "flag", "True", "None", "-j", "2",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # the sweep's table shows a None as None, as ls does (it was a blank, like a "")
    rows = [line.split()[1:] for line in done.stdout.splitlines()[1:5]]
    assert sorted(rows) == sorted(
        [["finished", *point] for point in (["0.5", "True", "1"], ["0.5", "None", "0"],
                                            ["None", "True", "0"], ["None", "None", "0"])]
    )  # fmt: skip

    def where(condition: str) -> list[tuple[object, object]]:
        done = run_cli("ls", "--kind", "notebook", "--where", condition, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs = json.loads(done.stdout)["runs"]
        return sorted(((r["params"]["lr"], r["params"]["flag"]) for r in runs), key=str)

    assert where("lr > 0.1") == [(0.5, None), (0.5, True)]
    assert where("lr IS NULL") == [(None, None), (None, True)]
    assert where("flag = true") == [(0.5, True), (None, True)]
    assert where("params.flag IS NULL") == [(0.5, None), (None, None)]


def test_a_rerun_of_a_papermill_run_given_no_parameters_holds_its_defaults(tmp_path):
    """``papermill nb.ipynb out.ipynb`` (no parameters: papermill injects no cell), then
    ``nbtrack rerun`` of its notebook run (as executed: plain papermill saves no notebook):
    the original held ``lr=0.1, n=2`` (``default``), the re-run's held nothing, and
    ``nbtrack diff`` of the two said both parameters were removed."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = lr * n"
    _notebook(
        tmp_path / "nb.ipynb",
        [(LOAD, []), ("import math", []), ("lr = 0.1\nn = 2", ["parameters"]), (fit, [])],
    )
    assert _papermill(tmp_path, "nb.ipynb", "out.ipynb") == 0
    (cell,) = _settle(tmp_path).get_runs(["last"])
    original = _settle(tmp_path).get_run(cell.parent_id)
    assert original.param_sources == {"lr": "default", "n": "default"}
    done = run_cli("rerun", original.run_id, "--json", cwd=tmp_path)
    result = json.loads(done.stdout or "{}")
    verdict = (done.returncode, result.get("mode"), result.get("rerun_verdict"))
    assert verdict == (0, "as-executed", "reproduced"), done.stderr[-3000:]
    again = _settle(tmp_path).get_run(result["run_id"])
    assert (again.params, again.param_sources) == (original.params, original.param_sources)
