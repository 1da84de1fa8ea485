"""Whole-notebook workflows of the fifteenth trial, in real kernels: notebooks written the
way data scientists write them (boosting and torch training loops, folders of CSVs,
configuration objects, notebook mechanics), and what their runs record.

Each test is a reproducer from the trial: the cells a user runs, and what the run, its
summary under the cell, and the store must say.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def test_a_cell_that_only_defines_functions_reads_nothing(project_dir, kernel):
    """Found by the trial: a tracked cell defining ``def helper(a): return a * lr`` (and a
    class whose method reads ``depth``), calling neither, recorded ``lr=0.3 (upstream)``
    as its parameter: the body runs in later cells, which read ``lr`` when they call it.
    A body counts when the cell may run it: it names the function (a call, ``map(f,
    ...)``), or a lambda's."""
    kernel.ok("lr = 0.3\ndepth = 4\nscale = 2", cell_id="c0")
    defs = (
        "%%track defs\ndef helper(a):\n    return a * lr\n"
        "class Model:\n    def fit(self):\n        return depth\n"
    )
    shown = kernel.ok(defs, cell_id="c1").text
    assert "params:  —" in shown, shown
    kernel.ok("%%track use -m out\nout = helper(2)", cell_id="c2")
    kernel.ok(
        "%%track both -m out\ndef f(r):\n    return r * scale\n"
        "out = sum(map(f, [1, 2])) + Model().fit()",
        cell_id="c3",
    )
    client = _settle(project_dir)
    (d,), (u,), (b,) = (_cell_runs(client, n) for n in ("defs", "use", "both"))
    assert d.params == {} and [i.name for i in d.named_inputs] == []
    assert (u.params, u.param_sources) == ({"lr": 0.3}, {"lr": "upstream"})
    assert b.params == {"scale": 2, "depth": 4}


def test_a_library_object_imported_by_name_is_no_input(project_dir, kernel):
    """Found by the trial: ``from numpy import s_`` and ``from ipywidgets import
    interact`` in the setup cell, used by the tracked cell: its summary said "reads: s_
    (IndexExpression, In[2])" and "interact (_InteractFactory, ...)", as if they were
    data the notebook made. A library's own object is code, as its functions are; a
    notebook's object of a library class (``idx = pd.IndexSlice``... bound to a name
    of its own, ``arr``) is still an input."""
    kernel.ok(
        "import numpy as np\nfrom numpy import s_\nfrom ipywidgets import interact\n"
        "arr = np.arange(10)\ndef cb(lr=0.1):\n    return lr",
        cell_id="c0",
    )
    shown = kernel.ok(
        "%%track slices\npart = arr[s_[2:5]]\nw = interact(cb, lr=(0.0, 1.0, 0.1))",
        cell_id="c1",
    ).text
    assert "s_ (" not in shown and "interact (" not in shown, shown
    (run,) = _cell_runs(_settle(project_dir), "slices")
    assert [i.name for i in run.named_inputs] == ["arr"]


def test_a_cell_that_makes_its_input_again_from_a_changed_setting_is_not_stale(project_dir, kernel):
    """Found by the trial: ``params`` from a setup cell, the training cell
    ``params.update(learning_rate=lr)``; ``lr = 0.2`` and the training cell re-run: its
    summary warned "stale input: params was made by In[3] from lr, which was changed
    since by In[4]", In[3] being that very cell, which had just made it again from the
    new lr. A value the cell itself made is not stale through a name it reads now; one
    another cell made from it still is."""
    kernel.ok("params = dict(num_leaves=7)\nlr = 0.1", cell_id="c0")
    train = "%%track upd -m s\nparams.update(learning_rate=lr)\ns = params['learning_rate'] * 10"
    kernel.ok(train, cell_id="c1")
    kernel.ok("scaled = {k: v * 2 for k, v in params.items()}", cell_id="c2")
    kernel.ok("lr = 0.2", cell_id="c3")
    shown = kernel.ok(train, cell_id="c1").text
    assert "stale" not in shown, shown
    shown = kernel.ok("%%track use\nout = scaled['learning_rate'] + lr", cell_id="c4").text
    assert "stale input: scaled was made by" in shown, shown
    (again,) = _cell_runs(_settle(project_dir), "upd")[1:]
    assert again.params["params"] == {"num_leaves": 7, "learning_rate": 0.2}
