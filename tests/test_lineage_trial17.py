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

from test_lineage import _cell_runs
from test_magics import _settle


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


def test_a_subclass_and_a_decorated_function_autoreload_patched_are_current(project_dir, kernel):
    """Held in the trial, beside the fix above: a subclass whose method calls ``super()``
    and a module function behind a ``functools.wraps`` decorator, edited under
    ``%autoreload 2``, run their new code and warn of nothing; the edit is the input
    that changed."""
    src = (
        "import functools\n"
        "class Base:\n    def fit(self, x):\n        return x\n"
        "class M(Base):\n    def fit(self, x):\n        return super().fit(x) + {k}\n"
        "def deco(f):\n    @functools.wraps(f)\n    def w(x):\n        return f(x)\n    return w\n"
        "@deco\ndef scale(x):\n    return x * {k}\n"
    )
    (project_dir / "feat.py").write_text(src.format(k=1))
    kernel.ok("%load_ext autoreload\n%autoreload 2\nfrom feat import M, scale")
    kernel.ok("%%track sup -m v\nv = M().fit(1)", cell_id="c1")
    kernel.ok("%%track dec -m v\nv = scale(2)", cell_id="c3")
    time.sleep(1.1)
    (project_dir / "feat.py").write_text(src.format(k=10))
    shown = kernel.ok("%%track sup -m v\nv = M().fit(1)", cell_id="c1").text
    assert "metric v: 2 → 11" in shown and "stale" not in shown, shown
    shown = kernel.ok("%%track dec -m v\nv = scale(2)", cell_id="c3").text
    assert "metric v: 2 → 20" in shown and "stale" not in shown, shown


def test_files_reached_through_urls_descriptors_and_archive_members_are_recorded(
    project_dir, kernel
):
    """Held in the trial: a ``file://`` URL read by pandas, ``os.open`` with ``os.read``,
    an archive member read in place (``tarfile.extractfile``, fsspec's ``zip://``),
    ``shutil.copyfileobj`` and ``os.replace`` of a scratch file are the inputs and
    outputs the user named, by their paths in the project."""
    import tarfile
    import zipfile

    (project_dir / "d.csv").write_text("a\n1\n2\n")
    with tarfile.open(project_dir / "a.tar", "w") as t:
        t.add(project_dir / "d.csv", arcname="d.csv")
    with zipfile.ZipFile(project_dir / "a.zip", "w") as z:
        z.write(project_dir / "d.csv", "d.csv")
    kernel.ok("import os, shutil, tarfile, fsspec\nimport pandas as pd")
    cells = {
        "url": "n = len(pd.read_csv('file://' + os.path.abspath('d.csv')))",
        "fd": "fd = os.open('d.csv', os.O_RDONLY)\nn = len(os.read(fd, 100))\nos.close(fd)",
        "tar": "with tarfile.open('a.tar') as t:\n    n = len(t.extractfile('d.csv').read())",
        "zip": "with fsspec.open('zip://d.csv::a.zip') as f:\n    n = len(f.read())",
        "cp": "with open('d.csv', 'rb') as s, open('c.csv', 'wb') as d:\n"
        "    shutil.copyfileobj(s, d)\nn = 1",
        "atomic": "pd.DataFrame({'a': [1]}).to_csv('o.tmp')\nos.replace('o.tmp', 'o.csv')\nn = 1",
    }
    for name, code in cells.items():
        kernel.ok(f"%%track {name} -m n\n{code}")
    client = _settle(project_dir)
    got = {}
    for name in cells:
        run = _cell_runs(client, name)[0]
        got[name] = (sorted(f.path for f in run.inputs), sorted(f.path for f in run.outputs))
    assert got == {
        "url": (["d.csv"], []),
        "fd": (["d.csv"], []),
        "tar": (["a.tar"], []),
        "zip": (["a.zip"], []),
        "cp": (["d.csv"], ["c.csv"]),
        "atomic": ([], ["o.csv"]),
    }
