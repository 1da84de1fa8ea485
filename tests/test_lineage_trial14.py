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
