"""Headless runs as users launch them (sixteenth papermill and pipeline trial): other
runners (nbclient from a script, ``jupyter execute``, papermill on its own output), a
notebook that stops itself with ``sys.exit``, sweeps over awkward values and on a Dask
LocalCluster, re-runs of cell runs and of chained notebooks, with real kernels, real
papermill and real processes, then the record read back as a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import kernel_env
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
