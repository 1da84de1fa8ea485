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


def test_a_chain_of_cells_re_run_from_the_start_warns_of_the_skipped_middle(project_dir, kernel):
    """Found by the trial: three tracked cells, ``data`` (``raw.csv`` filtered by
    ``threshold`` into ``clean.parquet``), ``features`` (that into ``X.parquet``, and ``X``
    kept), ``model`` (reading ``X.parquet``, or ``X``). Re-running only the middle one
    held ("input X.parquet: changed"); but after ``threshold = 8`` and ``data`` re-run,
    ``model`` re-run without ``features`` read the old features and its summary said
    "same as the previous run", nothing more. A file (or a value) an earlier run of the
    kernel made from a file another run wrote again since is a stale input, as a name
    made from a changed name is; once ``features`` ran again, nothing is stale."""
    (project_dir / "raw.csv").write_text("a\n" + "\n".join(map(str, range(20))) + "\n")
    kernel.ok("import pandas as pd\nthreshold = 5\nn_feats = 2", cell_id="c0")
    data = (
        "%%track data -m rows\ndf = pd.read_csv('raw.csv')\ndf = df[df.a > threshold]\n"
        "df.to_parquet('clean.parquet')\nrows = len(df)"
    )
    feats = (
        "%%track features -m cols\nclean = pd.read_parquet('clean.parquet')\n"
        "X = clean.assign(**{f'f{i}': clean.a**i for i in range(n_feats)})\n"
        "X.to_parquet('X.parquet')\ncols = X.shape[1]"
    )
    model = "%%track model -m s\ns = int(pd.read_parquet('X.parquet').sum().sum())"
    model2 = "%%track model2 -m s\ns = int(X.sum().sum())"
    for code, cid in [(data, "d"), (feats, "f"), (model, "m"), (model2, "m2")]:
        kernel.ok(code, cell_id=cid)
    kernel.ok("n_feats = 3", cell_id="c1")
    kernel.ok(feats, cell_id="f")
    shown = kernel.ok(model, cell_id="m").text
    assert "input X.parquet: changed" in shown and "stale" not in shown, shown
    kernel.ok("threshold = 8", cell_id="c2")
    kernel.ok(data, cell_id="d")
    shown = kernel.ok(model, cell_id="m").text
    assert "warning: stale input: X.parquet was written by run " in shown, shown
    assert "(features) from clean.parquet, which run " in shown, shown
    shown = kernel.ok(model2, cell_id="m2").text
    assert "warning: stale input: X was made by run " in shown, shown
    kernel.ok(feats, cell_id="f")
    shown = kernel.ok(model, cell_id="m").text
    assert "input X.parquet: changed" in shown and "stale" not in shown, shown
    shown = kernel.ok(model2, cell_id="m2").text
    assert "stale" not in shown, shown
    runs = _cell_runs(_settle(project_dir), "model")
    assert [_inputs(r) for r in runs] == [["X.parquet"]] * 4


def test_a_time_window_and_settings_in_value_types_are_parameters(project_dir, kernel):
    """Found by the trial: ``lookback = timedelta(days=3)`` beside ``start =
    datetime(2024, 1, 1, tzinfo=utc)`` read by the tracked cell: the date was a parameter,
    the window only "reads: lookback (timedelta)", and after ``timedelta(days=4)`` the
    re-run said "read lookback: changed", not from what to what. A duration is a setting
    as a date is (its text, as ``str`` gives it). Held beside it: an ``enum.Flag``
    combination, a ``Fraction``, a ``Decimal``, a ``NamedTuple`` replaced, a dataclass
    whose ``__post_init__`` derives a field, a class attribute changed in place
    (``Config.lr = 0.02``) and a ``partial`` with positional arguments, each with its
    change in the summary."""
    kernel.ok(
        "import enum, functools, datetime as dt\nfrom fractions import Fraction\n"
        "from decimal import Decimal\nfrom typing import NamedTuple\n"
        "from dataclasses import dataclass\n"
        "class Opt(enum.Flag):\n    A = 1\n    B = 2\n    C = 4\n"
        "class HP(NamedTuple):\n    lr: float\n    depth: int = 3\n"
        "@dataclass\nclass Cfg:\n    lr: float = 0.1\n    epochs: int = 2\n"
        "    def __post_init__(self):\n        self.total = self.lr * self.epochs\n"
        "class Config:\n    lr = 0.01\n"
        "def f(a, b, c=1):\n    return a + b + c\n"
        "lookback = dt.timedelta(days=3)\nstart = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)\n"
        "flags = Opt.A | Opt.B\nfrac = Fraction(1, 3)\nrate = Decimal('0.05')\nhp = HP(0.2)\n"
        "cfg = Cfg()\np = functools.partial(f, 1, 2)",
        cell_id="c0",
    )
    cell = (
        "%%track types -m v\nv = float(frac) + float(rate) + hp.depth + cfg.total + Config.lr + p()\n"
        "v += (Opt.B in flags) + (start + lookback).day"
    )
    shown = kernel.ok(cell, cell_id="c1").text
    assert "reads:" not in shown, shown
    kernel.ok(
        "lookback = dt.timedelta(days=4)\nflags = Opt.A | Opt.C\nfrac = Fraction(2, 3)\n"
        "rate = Decimal('0.07')\nhp = hp._replace(depth=4)\ncfg = Cfg(lr=0.3)\n"
        "Config.lr = 0.02\np = functools.partial(f, 1, 5)",
        cell_id="c2",
    )
    shown = kernel.ok(cell, cell_id="c1").text
    for line in (
        "param lookback: '3 days, 0:00:00' → '4 days, 0:00:00' (upstream)",
        "param flags: 'Opt.A|B' → 'Opt.A|C' (upstream)",
        "param frac: '1/3' → '2/3' (upstream)",
        "param rate: 0.05 → 0.07 (upstream)",
        "param hp.depth: 3 → 4 (upstream)",
        "param cfg.lr: 0.1 → 0.3 (upstream)",
        "param Config.lr: 0.01 → 0.02 (upstream)",
        "param p.b: 2 → 5 (upstream)",
    ):
        assert line in shown, shown
    assert "reads:" not in shown and "stale" not in shown, shown
    first = _cell_runs(_settle(project_dir), "types")[0]
    assert first.params["start"] == "2024-01-01T00:00:00+00:00", first.params


def test_a_dict_of_notebook_functions_is_code_reading_its_globals(project_dir, kernel):
    """Found by the trial: ``acts = {"relu": relu, "id": lambda x: x * gain}`` and ``hooks =
    [lambda x: x + offset]`` in a setup cell, the tracked cell ``v = acts["id"](1) +
    hooks[0](0)``. After ``gain = 3`` its re-run warned "stale input: acts was made by
    In[n] from gain, which was changed since" and recorded "param gain: removed", though
    the lambda read the new gain when called (the metric moved with it). A dict, list or
    tuple holding only notebook functions is code, as each function is: the globals they
    read are the parameters, with no warning; one holding a ``partial`` made from a
    setting changed since is still stale."""
    kernel.ok(
        "from functools import partial\ngain = 2\noffset = 1\nlr = 0.1\n"
        "def relu(x):\n    return max(x, 0)\ndef opt(x, lr):\n    return x * lr\n"
        "acts = {'relu': relu, 'id': lambda x: x * gain}\nhooks = [lambda x: x + offset]\n"
        "opts = {'sgd': partial(opt, lr=lr)}",
        cell_id="c0",
    )
    cell = "%%track reg -m v\nv = acts['id'](1) + acts['relu'](-1) + hooks[0](0)"
    kernel.ok(cell, cell_id="c1")
    kernel.ok("gain = 3\noffset = 5", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "param gain: 2 → 3 (upstream)" in shown, shown
    assert "param offset: 1 → 5 (upstream)" in shown and "metric v: 3 → 8" in shown, shown
    assert "stale" not in shown and "reads:" not in shown, shown
    kernel.ok("lr = 0.5", cell_id="c3")
    shown = kernel.ok("%%track o -m v\nv = opts['sgd'](2)", cell_id="c4").text
    assert "stale input: opts was made by In[2] from lr, which was changed since" in shown, shown
    first, again = _cell_runs(_settle(project_dir), "reg")
    assert (first.params, again.params) == ({"gain": 2, "offset": 1}, {"gain": 3, "offset": 5})


def test_an_iterator_the_cell_advances_is_a_changed_read(project_dir, kernel):
    """Found by the trial: ``stream = iter(range(100))``, ``loader = (np.full(3, i) for i in
    itertools.count())`` and a generator function's ``bg = batches()`` in a setup cell,
    the tracked cell ``n = next(loader).sum() + next(stream) + next(bg)`` run three times:
    each run drew the next items (the metric 0 → 5 → 10), and the summary said only the
    metric moved; ``read stream`` was never "changed" (the fingerprint taken at the
    first run was reused: the same object at the same version), and a generator has no
    pickle to take one from. An iterator is fingerprinted anew at each run, a generator
    by where it stands (its place in its code and its plain locals)."""
    kernel.ok(
        "import numpy as np, itertools\nstream = iter(range(100))\n"
        "loader = (np.full(3, i) for i in itertools.count())\n"
        "def batches():\n    for b in range(3):\n        yield b\nbg = batches()",
        cell_id="c0",
    )
    cell = "%%track nxt -m n\nn = int(next(loader).sum()) + next(stream) + next(bg)"
    kernel.ok(cell, cell_id="c1")
    for metric in ("0 → 5", "5 → 10"):
        shown = kernel.ok(cell, cell_id="c1").text
        assert f"metric n: {metric}" in shown, shown
        for name in ("bg", "loader", "stream"):
            assert f"read {name}: changed" in shown, shown


def test_a_failed_cell_does_not_record_the_metric_an_earlier_run_left(project_dir, kernel):
    """Found by the trial: ``-m n`` on ``batch = next(it); n = len(batch)``, run until the
    iterator ran out: the failed run (``StopIteration`` at ``next``) recorded ``n=10``,
    the count the run before left (a small int is a shared object: "unchanged" could
    not be told from "set again"). Where the cell stopped tells: a metric bound only at
    or after the statement that raised is not recorded, with the warning; one bound
    before it (``n = 3`` then ``1 / 0``) still is."""
    kernel.ok("it = iter([[1] * 10, [2] * 10])", cell_id="c0")
    cell = "%%track ev -m n\nbatch = next(it)\nn = len(batch)"
    kernel.ok(cell, cell_id="c1")
    kernel.ok(cell, cell_id="c1")
    shown = kernel.run(cell, cell_id="c1").text
    assert "-m n: not recorded: the cell stopped before it set it" in shown, shown
    assert "metric n: removed" in shown, shown
    assert kernel.run("%%track late -m n\nn = 3\n1 / 0", cell_id="c2").status == "error"
    runs = _cell_runs(_settle(project_dir), "ev")
    assert [(r.status, r.metrics.get("n")) for r in runs] == [
        ("finished", 10),
        ("finished", 10),
        ("failed", None),
    ]
    (late,) = _cell_runs(_settle(project_dir), "late")
    assert late.metrics.get("n") == 3


def test_files_written_in_roundabout_ways_are_the_outputs_named(project_dir, kernel):
    """Held in the trial: a gzip CSV from pandas, ``np.savez_compressed``, a pickle
    through a ``BytesIO`` then ``Path.write_bytes``, a ``NamedTemporaryFile`` in the project
    renamed into place, ``shutil.make_archive``, ``write_text`` through a symlink (the
    target recorded), a folder of CSVs read by ``glob`` (a part added: "read by this run
    only"), a file read and overwritten by one cell (input and output, "changed" as the
    cell re-reads what it wrote), all under ``%%capture`` stacked on ``%%track``."""
    (project_dir / "csvs").mkdir()
    for i in range(2):
        (project_dir / "csvs" / f"p{i}.csv").write_text("a\n1\n")
    (project_dir / "raw.csv").write_text("a\n1\n2\n")
    (project_dir / "link.txt").symlink_to(project_dir / "real.txt")
    kernel.ok("import pandas as pd, numpy as np, pickle, io, tempfile, shutil, os, glob\n"
              "from pathlib import Path\nk = 1")  # fmt: skip
    cells = {
        "gz": "pd.DataFrame({'a': range(5 * k)}).to_csv('d.csv.gz', compression='gzip')",
        "npz": "np.savez_compressed('a.npz', x=np.arange(3 * k))",
        "pkb": "buf = io.BytesIO()\npickle.dump({'k': k}, buf)\nPath('m.pkl').write_bytes(buf.getvalue())",
        "tmpf": "with tempfile.NamedTemporaryFile('w', dir='.', delete=False) as f:\n"
        "    f.write('x' * k)\nos.rename(f.name, 'final.txt')",
        "arch": "Path('todir').mkdir(exist_ok=True)\nPath('todir/a.txt').write_text('a' * k)\n"
        "shutil.make_archive('bundle', 'zip', 'todir')",
        "sym": "Path('link.txt').write_text('hello' * k)",
        "glob": "n = sum(len(pd.read_csv(p)) for p in sorted(glob.glob('csvs/*.csv')))",
        "rw": "df = pd.read_csv('raw.csv')\ndf['b'] = df.a * k\ndf.to_csv('raw.csv', index=False)",
    }
    for name, code in cells.items():
        kernel.ok(f"%%capture out\n%%track {name}\n{code}")
    kernel.ok("k = 2")
    (project_dir / "csvs" / "p2.csv").write_text("a\n5\n")
    shown = {name: kernel.ok(f"%%track {name}\n{code}").text for name, code in cells.items()}
    assert "input csvs/p2.csv: read by this run only" in shown["glob"], shown["glob"]
    assert "input raw.csv: changed" in shown["rw"] and "stale" not in shown["rw"], shown["rw"]
    client = _settle(project_dir)
    got = {}
    for name in cells:
        first, again = _cell_runs(client, name)
        assert _inputs(first) == _inputs(again) or name == "glob", name
        got[name] = (_inputs(first), sorted(f.path for f in again.outputs))
    assert got == {
        "gz": ([], ["d.csv.gz"]),
        "npz": ([], ["a.npz"]),
        "pkb": ([], ["m.pkl"]),
        "tmpf": ([], ["final.txt"]),
        "arch": ([], ["bundle.zip", "todir/a.txt"]),
        "sym": ([], ["real.txt"]),
        "glob": (["csvs/p0.csv", "csvs/p1.csv"], []),
        "rw": (["raw.csv"], ["raw.csv"]),
    }


def test_an_instance_sees_its_class_attribute_changed_in_place(project_dir, kernel):
    """Found by the trial: ``class Config: lr = 0.1`` with ``cfg = Config(seed=1)`` in a
    setup cell, the tracked cell reading ``cfg.lr``; ``Config.lr = 0.2`` in a scratch cell
    and the cell re-run: it recorded ``cfg.lr: 0.1 → 0.2`` (the instance reads its class's
    attribute) and yet warned "stale input: cfg was made by In[n] from Config, which was
    changed since". An instance of the very class changed in place is current; one of a
    class since redefined (``class Config`` run again) is still stale."""
    kernel.ok(
        "class Config:\n    lr = 0.1\n    def __init__(self, seed=0):\n        self.seed = seed\n"
        "cfg = Config(seed=1)",
        cell_id="c0",
    )
    cell = "%%track cls -m v\nv = cfg.lr + cfg.seed"
    kernel.ok(cell, cell_id="c1")
    kernel.ok("Config.lr = 0.2", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "param cfg.lr: 0.1 → 0.2 (upstream)" in shown and "stale" not in shown, shown
    kernel.ok("class Config:\n    lr = 0.5", cell_id="c3")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "stale input: cfg was made by In[2] from Config" in shown, shown
