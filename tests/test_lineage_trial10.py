"""Notebook shapes of the tenth trial, in real kernels: what the record says.

Each test is a reproducer from the tenth trial: a notebook pattern the earlier trials
did not try, and what a careful data scientist says the run must record.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def test_a_name_restored_by_store_is_not_recorded_with_the_kernels_value(
    project_dir, kernel_factory, tmp_path_factory
):
    """Found by the trial: ``%store -r zz`` in the tracked cell brings back the stored 5,
    and the run recorded ``zz=99 (upstream)``, the value the notebook held before the
    cell replaced it: a parameter the cell never used."""
    kernel = kernel_factory(IPYTHONDIR=str(tmp_path_factory.mktemp("ipython")))
    kernel.ok("%load_ext nbtrack\nzz = 5\n%store zz\nzz = 99\nk = 2")
    shown = kernel.ok("%%track st -m w\n%store -r zz\nw = zz * k")
    assert "zz=99" not in shown.text
    (run,) = _cell_runs(_settle(project_dir), "st")
    assert run.metrics["w"] == 10
    assert run.params == {"k": 2}
    assert [i.name for i in run.named_inputs] == ["k"]


def test_a_seed_an_untracked_cell_gave_the_global_generator_is_a_parameter(project_dir, kernel):
    """Found by the trial: ``SEED = 1`` then ``np.random.seed(SEED)`` in a setup cell,
    and a tracked cell drawing ``np.random.rand()``: the run recorded no parameter, so
    changing SEED and running again said only "metric v: 0.417 → 0.436". The seed the
    global generator got is a parameter of the cells that draw from that module; a cell
    that seeds the generator itself records its own."""
    kernel.ok("import numpy as np, random\nSEED = 1\nnp.random.seed(SEED)")
    kernel.ok("%%track draw -m v\nv = float(np.random.rand())")
    kernel.ok("%%track mean -m m\nm = float(np.mean([1, 2]))")
    kernel.ok("%%track other -m r\nr = random.random()")
    kernel.ok("SEED = 2\nnp.random.seed(SEED)")
    shown = kernel.ok("%%track draw -m v\nv = float(np.random.rand())")
    assert "param SEED: 1 → 2" in shown.text
    client = _settle(project_dir)
    first, _ = _cell_runs(client, "draw")
    assert first.params == {"SEED": 1}
    assert first.param_sources == {"SEED": "upstream"}
    (other,) = _cell_runs(client, "other")
    assert other.params == {}


def test_an_attribute_named_as_a_metric_says_how_to_record_it(project_dir, kernel):
    """Found by the trial: ``%%track grid -m search.best_score_`` (GridSearchCV's score)
    stopped with "-m takes variable names" and no way forward: the message now says to
    bind the value in the cell and name that."""
    shown = kernel.run("%%track grid -m search.best_score_\nx = 1")
    assert shown.status == "error"
    assert "best_score_ = search.best_score_" in shown.text
