"""Notebook shapes of the thirteenth trial, in real kernels: what the record says.

Each test is a reproducer from the thirteenth trial: a notebook pattern the earlier
trials did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from nbtrack.models import Run
from test_lineage import _cell_runs
from test_magics import _settle


def _one_run(project_dir, kernel, setup: str, cell: str) -> Run:
    """``setup`` run, then the tracked ``cell`` (``%%track NAME ...``): its one run."""
    kernel.ok(setup)
    kernel.ok(cell)
    (run,) = _cell_runs(_settle(project_dir), cell.split()[1])
    return run


def test_a_library_function_the_cell_calls_is_no_parameter(project_dir, kernel):
    """Found by the trial: ``classification_report(y, pred, output_dict=True)`` and
    ``accuracy_score(y, pred)`` in an evaluation cell recorded two parameters,
    ``accuracy_score={'parameter_constraints': {...}, ...}`` and
    ``classification_report={'prefer_skip_nested_validation': True}``: scikit-learn
    wraps every metric in a closure (``validate_params``), and a closure's values were
    taken for settings the notebook made it with. A library's own closure holds the
    library's settings; one the notebook made (``make_objective(2.0)``) still counts."""
    setup = (
        "from sklearn.metrics import accuracy_score, classification_report\n"
        "def make_objective(a):\n    return lambda x: a * x\nobjective = make_objective(2.0)"
    )
    cell = (
        "%%track ev -m acc\ny, pred = [0, 1, 1], [0, 1, 0]\nacc = accuracy_score(y, pred)\n"
        "rep = classification_report(y, pred, output_dict=True)\ns = objective(acc)"
    )
    run = _one_run(project_dir, kernel, setup, cell)
    assert run.params == {"objective": {"a": 2.0}, "y": [0, 1, 1], "pred": [0, 1, 0]}
