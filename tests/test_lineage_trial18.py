"""Whole-notebook workflows of the eighteenth trial, in real kernels: notebooks written
the way data scientists write them, with configuration held in value types earlier
trials did not try (``enum.Flag``, ``Fraction``, ``Decimal``, ``datetime``, a
``NamedTuple`` replaced, a dataclass with ``__post_init__``, class attributes), state kept
by ``global`` in notebook functions, closures, lambdas and generators kept in variables,
files written and read in unusual ways, and a data → features → model chain of tracked
cells re-run from the middle.

Each test is a reproducer from the trial: the cells a user runs, and what the run, its
summary under the cell, and the store must say.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def _inputs(run) -> list[str]:
    return sorted(f.path for f in run.inputs)


def test_a_counter_the_cell_keeps_by_global_is_not_stale_through_a_closure(project_dir, kernel):
    """Found by the trial: a setup cell with ``def bump(): global counter; counter +=
    scale``, a model factory whose nested function reads ``lr`` and ``mult = lambda x: x *
    scale``; the tracked cell ``m = make_model(); v = m(10) + mult(1) + bump()``. After
    ``lr = 0.2`` its re-run warned "stale input: counter was made by In[n] from lr, which
    was changed since", In[n] being its own earlier run, though it made ``counter`` again
    with the new ``lr`` (the metric moved with it); after ``make_model`` was redefined,
    "counter was made by … from mult; mult was made by In[1] from scale". A value the cell
    made itself is made again from what it reads now, through the functions it calls
    too; a value another cell made with ``mult`` before ``scale`` changed is still stale."""
    kernel.ok(
        "lr = 0.1\nscale = 2\ncounter = 0\n"
        "def bump():\n    global counter\n    counter += scale\n    return counter\n"
        "def make_model():\n    def inner(x):\n        return x * lr\n    return inner\n"
        "mult = lambda x: x * scale\nfeat = mult(5)",
        cell_id="c0",
    )
    cell = "%%track fn -m v\nm = make_model()\nv = m(10) + mult(1) + bump()"
    kernel.ok(cell, cell_id="c1")
    kernel.ok("lr = 0.2", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "metric v: 5 → 8" in shown and "stale" not in shown, shown
    kernel.ok("def make_model():\n    return lambda x: x * 100\nscale = 3", cell_id="c3")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "metric v: 8 → 1010" in shown and "stale" not in shown, shown
    shown = kernel.ok("%%track uses -m v\nv = feat", cell_id="c4").text
    assert "stale input: feat was made by In[2] from scale, which was changed since" in shown, shown
    runs = _cell_runs(_settle(project_dir), "fn")
    assert [(r.params["counter"], r.params.get("lr")) for r in runs] == [
        (2, 0.1),
        (4, 0.2),
        (7, None),
    ]
