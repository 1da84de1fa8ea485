"""Whole-notebook workflows of the fourteenth trial, in real kernels: what the record
and the summary under the cell say across an interactive session.

Each test is a reproducer from the fourteenth trial: a session a user works through
(a cell re-run after an error, ...), and what the run and its summary must say.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle

TRAIN = (
    "%%track train -m acc\nC = 1.0\nmodel = LogisticRegression(C=C).fit(X_train, y_train)\n"
    "acc = model.score(X_train, y_train)"
)


def _session(kernel) -> None:
    """Data, a clean cell, features, then the tracked training cell run once."""
    kernel.ok("from sklearn.linear_model import LogisticRegression", cell_id="c0")
    kernel.ok("X_train = [[0], [1], [2], [3]]\ny_train = [0, 0, 1, 1]", cell_id="c1")
    kernel.ok(TRAIN, cell_id="c2")


def test_a_metric_a_failed_run_never_reached_is_not_said_unchanged(project_dir, kernel):
    """Found by the trial: ``del X_train`` (a cleanup cell), then the training cell re-run:
    it raised ``NameError`` before ``acc = ...``, and its summary warned "-m acc: not
    recorded: the cell did not change it", as if the cell had run through and left the
    metric alone. The cell stopped before it set the metric; the warning says so."""
    _session(kernel)
    kernel.ok("del X_train", cell_id="c3")
    shown = kernel.run(TRAIN, cell_id="c2").text
    assert "-m acc: not recorded: the cell stopped before it set it" in shown
    assert "did not change it" not in shown
    first, failed = _cell_runs(_settle(project_dir), "train")
    assert (first.status, failed.status) == ("finished", "failed")
    assert "acc" not in failed.metrics


def test_a_rerun_after_an_error_is_compared_with_the_last_run_that_went_through(
    project_dir, kernel_factory
):
    """Found by the trial: the training cell failed (``del X_train`` by a cleanup cell),
    the user put X_train back and re-ran it. The summary compared with the failed run:
    "read X_train: added", "metric acc: added", "status: failed → finished", where the
    run was the very run of before the error; after a restart the previous session's
    failed run was compared with too. A run is compared with the cell's newest run that
    finished (a failed one only when the cell has none), in the session and across."""
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack")
    _session(kernel)
    first = _cell_runs(_settle(project_dir), "train")[0].run_id[:8]
    kernel.ok("del X_train", cell_id="c3")
    failed = kernel.run(TRAIN, cell_id="c2").text
    assert f"since {first}:" in failed and "status: finished → failed" in failed
    kernel.ok("X_train = [[0], [1], [2], [3]]", cell_id="c4")
    shown = kernel.ok(TRAIN, cell_id="c2").text
    assert f"same as the previous run {first}" in shown, shown
    kernel.run("del X_train", cell_id="c3")
    kernel.run(TRAIN, cell_id="c2")  # fails again, and the kernel is restarted
    runs = _cell_runs(_settle(project_dir), "train")
    assert [r.status for r in runs] == ["finished", "failed", "finished", "failed"]
    kernel.close()
    again = kernel_factory()
    again.ok("%load_ext nbtrack")
    again.ok("from sklearn.linear_model import LogisticRegression", cell_id="c0")
    again.ok("X_train = [[0], [1], [2], [3]]\ny_train = [0, 0, 1, 1]", cell_id="c1")
    shown = again.ok(TRAIN, cell_id="c2").text
    assert f"same as the previous run {runs[2].run_id[:8]}" in shown, shown


def test_a_module_autoreload_reloaded_is_no_stale_input(project_dir, kernel):
    """Found by the trial: ``%autoreload 2`` and a project module ``utils.py``, edited
    between two runs of ``v = utils.scale(3) + scale(3)``: the cell ran the new code
    (the metric moved), yet its summary warned "stale input: utils came from utils.py
    (imported by In[n]), which was edited since: importlib.reload(utils)", and the same
    for ``scale`` (``from utils import scale``): the run started before autoreload's
    hook reloaded the module. Now the edit is the input that changed, with no warning;
    without autoreload, the warning stays."""
    (project_dir / "utils.py").write_text("def scale(x):\n    return x * 2\n")
    kernel.ok("%load_ext autoreload\n%autoreload 2\nimport utils\nfrom utils import scale")
    cell = "%%track sc -m v\nv = utils.scale(3) + scale(3)"
    kernel.ok(cell)
    (project_dir / "utils.py").write_text("def scale(x):\n    return x * 50\n")
    shown = kernel.ok(cell).text
    assert "metric v: 12 → 300" in shown and "input utils.py: changed" in shown, shown
    assert "stale" not in shown
    kernel.ok("%autoreload 0")
    (project_dir / "utils.py").write_text("def scale(x):\n    return x * 7\n")
    shown = kernel.ok(cell).text
    assert "stale input: utils came from utils.py" in shown, shown
    assert "stale input: scale came from utils.py" in shown, shown


def test_a_data_file_renamed_with_its_path_parameter_is_one_move(project_dir, kernel):
    """Found by the trial: ``!mv raw.csv raw2.csv`` and ``path = 'raw2.csv'`` in the
    cell that sets the path, then the reading cell re-run: its summary said "input
    raw.csv: not read by this run" and "input raw2.csv: read by this run only", two
    unrelated files to the eye, where the bytes read were the very ones of before.
    The same bytes under a new path are one line: the file renamed."""
    (project_dir / "raw.csv").write_text("a\n1\n2\n")
    kernel.ok("path = 'raw.csv'", cell_id="p")
    cell = "%%track rd -m n\nn = len(open(path).readlines())"
    kernel.ok(cell, cell_id="r")
    kernel.ok("!mv raw.csv raw2.csv")
    kernel.ok("path = 'raw2.csv'", cell_id="p")
    shown = kernel.ok(cell, cell_id="r").text
    assert "input raw.csv → raw2.csv: the same bytes, renamed" in shown, shown
    assert "not read by this run" not in shown and "read by this run only" not in shown
    assert "param path: 'raw.csv' → 'raw2.csv'" in shown
    (project_dir / "raw3.csv").write_text("a\n1\n")
    kernel.ok("path = 'raw3.csv'", cell_id="p")
    shown = kernel.ok(cell, cell_id="r").text  # other bytes: two files, as before
    assert "input raw2.csv: not read by this run" in shown
    assert "input raw3.csv: read by this run only" in shown


def test_a_named_cell_moved_to_a_new_cell_is_compared_with_its_last_run(
    project_dir, kernel_factory
):
    """Found by the trial: ``%%track tr`` cut and pasted lower in the notebook (JupyterLab
    gives the pasted cell a new id), ``lr`` changed, the cell re-run: its summary said
    "first run of this cell", no word of lr 0.1 → 0.2, in the session and after a
    restart. A cell the user named is its name too: with no run of its id, it is
    compared with the newest run of that name in the notebook."""
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack")
    kernel.ok("lr = 0.1", cell_id="p")
    cell = "%%track tr -m s\ns = lr * 3"
    kernel.ok(cell, cell_id="n1")
    kernel.ok("lr = 0.2", cell_id="p")
    shown = kernel.ok(cell, cell_id="n2").text
    assert "param lr: 0.1 → 0.2" in shown, shown
    kernel.close()
    again = kernel_factory()
    again.ok("%load_ext nbtrack")
    again.ok("lr = 0.3", cell_id="p")
    shown = again.ok(cell, cell_id="n3").text
    assert "param lr: 0.2 → 0.3" in shown, shown
    shown = again.ok("%%track -m s\ns = lr * 3", cell_id="n4").text
    assert "first run of this cell" in shown  # unnamed: a new cell is a new cell
