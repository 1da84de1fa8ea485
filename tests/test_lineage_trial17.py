"""Whole-notebook workflows of the seventeenth trial, in real kernels: notebooks written
the way data scientists write them, with ways to reach files earlier trials did not try
(``file://`` URLs, fsspec, ``os.open``, ``mmap``, archive members, ``np.savetxt``,
pickles), code changing under the notebook (``%autoreload 2`` on a project module's
classes, ``%run -i``, ``exec`` of a file), parameters from ``argparse`` defaults,
``dataclasses.replace`` and dict merges, and records kept over many runs.

Each test is a reproducer from the trial: the cells a user runs, and what the run, its
summary under the cell, and the store must say.
"""

from __future__ import annotations

import time


def test_a_class_autoreload_updated_in_place_is_no_stale_input(project_dir, kernel):
    """Found by the trial: ``%autoreload 2``, ``from feat import M`` and ``m = M()`` in the
    setup cell, ``feat.py``'s method edited between two runs of ``v = M().fit(1) +
    m.fit(1)``: the cell ran the new method (the metric moved), yet its summary warned
    "stale input: M came from feat.py (imported by In[n]), which was edited since".
    Autoreload patches the class the notebook holds in place, as it does a function:
    the edit is the input that changed, with no warning; without autoreload, the
    warning stays."""
    (project_dir / "feat.py").write_text("class M:\n    def fit(self, x):\n        return x + 1\n")
    kernel.ok("%load_ext autoreload\n%autoreload 2\nfrom feat import M\nm = M()")
    cell = "%%track ar -m v\nv = M().fit(1) + m.fit(1)"
    kernel.ok(cell, cell_id="c1")
    time.sleep(1.1)  # autoreload compares whole-second mtimes on some filesystems
    (project_dir / "feat.py").write_text("class M:\n    def fit(self, x):\n        return x + 10\n")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "metric v: 4 → 22" in shown and "input feat.py: changed" in shown, shown
    assert "stale" not in shown and "read M" not in shown, shown
    kernel.ok("%autoreload 0")
    time.sleep(1.1)
    (project_dir / "feat.py").write_text("class M:\n    def fit(self, x):\n        return x + 7\n")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "stale input: M came from feat.py" in shown, shown
