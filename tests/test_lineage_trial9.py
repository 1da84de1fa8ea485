"""Notebook shapes of the ninth trial, in real kernels: what the record says.

Each test is a reproducer from the ninth trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def test_a_setting_a_function_of_the_cell_rebinds_by_global_is_recorded_as_used(
    project_dir, kernel
):
    """Found by the trial: ``def setup(): global LR; LR = 0.5`` written in the tracked
    cell and called there trained with 0.5, and the run recorded the upstream 0.1 with no
    word (the same function defined in an earlier cell was recorded as the cell left it)."""
    kernel.ok("LR = 0.1")
    shown = kernel.ok(
        "%%track gl -m used\ndef setup():\n    global LR\n    LR = 0.5\nsetup()\nused = LR"
    )
    (run,) = _cell_runs(_settle(project_dir), "gl")
    assert run.params == {"LR": 0.5}
    assert run.param_sources == {"LR": "auto"}
    assert "param LR changed by the cell: 0.1 → 0.5" in shown.text


def test_a_setting_a_notebook_function_rebound_is_not_stale_through_that_function(
    project_dir, kernel
):
    """Found by the trial: ``def bump(): global epochs; epochs += 1`` in one cell and
    ``bump()`` in a tracked one made every later reader of ``epochs`` warn "epochs was
    made by In[3] from bump; bump was made by In[2] from epochs, which was changed since
    by In[3]": the change is the making of epochs itself, nothing to run again."""
    kernel.ok("epochs = 3")
    kernel.ok("def bump():\n    global epochs\n    epochs = epochs + 1")
    kernel.ok("%%track glob\nbump()")
    shown = kernel.ok("%%track main -m r\nr = epochs * 2")
    assert "stale" not in shown.text
    (run,) = _cell_runs(_settle(project_dir), "main")
    assert run.params == {"epochs": 4}
    assert [(n.name, n.stale) for n in run.named_inputs] == [("epochs", False)]

