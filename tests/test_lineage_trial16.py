"""Whole-notebook workflows of the sixteenth trial, in real kernels: notebooks written the
way data scientists write them, with readers and writers earlier trials did not try
(DuckDB's SQL, SQLite through pandas, memory maps, appended logs), work off the main
thread (thread and process pools, subprocesses, shell cells, joblib), parameters reached
in unusual ways and metrics of unusual types, and what their runs record.

Each test is a reproducer from the trial: the cells a user runs, and what the run, its
summary under the cell, and the store must say.
"""

from __future__ import annotations

from test_lineage import _cell_runs
from test_magics import _settle


def _inputs(run) -> list[str]:
    return sorted(f.path for f in run.inputs)


def test_a_pool_made_before_the_cell_reports_its_workers_reads(project_dir, kernel):
    """Found by the trial: ``pool = Pool(2)`` (fork) or a ``ProcessPoolExecutor`` kept in
    a setup cell, ``pool.map(work, ...)`` in the tracked cell, ``work`` reading
    ``part{i}.csv``: no input recorded; the executor's first tracked cell recorded them
    (its workers were forked in it), the next cell using the same workers none. A worker
    forked before the cell, by an untracked cell or an earlier tracked one, reports
    the files it reads while a tracked cell runs, as one forked in the cell does."""
    for i in range(4):
        (project_dir / f"part{i}.csv").write_text("a\n" + "\n".join(map(str, range(i + 2))))
    kernel.ok(
        "import multiprocessing as mp\nfrom concurrent.futures import ProcessPoolExecutor\n"
        "import pandas as pd\n"
        "def work(i):\n    return len(pd.read_csv(f'part{i}.csv'))\n"
        "pool = mp.get_context('fork').Pool(2)\n"
        "ex = ProcessPoolExecutor(2, mp_context=mp.get_context('fork'))",
        cell_id="c0",
    )
    kernel.ok("%%track p1 -m n\nn = sum(pool.map(work, [0, 1]))", cell_id="c1")
    kernel.ok("untracked = pool.map(work, [3])", cell_id="c2")
    kernel.ok("%%track p2 -m n\nn = sum(pool.map(work, [2, 3]))", cell_id="c3")
    kernel.ok("%%track e1 -m n\nn = sum(ex.map(work, [0, 1]))", cell_id="c4")
    kernel.ok("%%track e2 -m n\nn = sum(ex.map(work, [1, 2]))", cell_id="c5")
    client = _settle(project_dir)
    got = {name: _inputs(_cell_runs(client, name)[0]) for name in ("p1", "p2", "e1", "e2")}
    assert got == {
        "p1": ["part0.csv", "part1.csv"],
        "p2": ["part2.csv", "part3.csv"],
        "e1": ["part0.csv", "part1.csv"],
        "e2": ["part1.csv", "part2.csv"],
    }
    leftover = kernel.ok(
        "import glob, os, tempfile\n"
        "print(glob.glob(os.path.join(tempfile.gettempdir(), f'nbtrack-forked-{os.getpid()}-*')))"
    ).text
    assert leftover.strip() == "[]", leftover


def test_a_library_wrapper_of_a_notebook_function_is_code(project_dir, kernel):
    """Found by the trial: ``vec = np.vectorize(raw)`` and joblib's ``@memory.cache def
    load(path)`` in the setup cell, ``raw`` reading ``gain``; the tracked cell calls
    both. Its summary said "reads: load (MemorizedFunc, In[1]), vec (vectorize, In[1])",
    ``gain`` was no parameter, and after ``gain = 3`` the re-run warned "stale input: vec
    was made by In[1] from gain, which was changed since" although ``vec`` called ``raw``
    with the new gain (its metric moved with it). A library's callable that wraps a
    notebook function is code, as the function is: what the function reads is read."""
    (project_dir / "d.csv").write_text("a\n1\n2\n")
    kernel.ok(
        "import numpy as np, pandas as pd\nfrom joblib import Memory\n"
        "memory = Memory('cachedir', verbose=0)\ngain = 2\n"
        "def raw(x):\n    return x * gain\n"
        "vec = np.vectorize(raw)\n"
        "@memory.cache\ndef load(path):\n    return int(pd.read_csv(path).a.sum())",
        cell_id="c0",
    )
    cell = "%%track use -m v\nv = float(vec(np.arange(3)).sum()) + load('d.csv')"
    shown = kernel.ok(cell, cell_id="c1").text
    assert "reads:" not in shown, shown
    kernel.ok("gain = 3", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "stale" not in shown and "reads:" not in shown, shown
    first, again = _cell_runs(_settle(project_dir), "use")
    assert (first.params, again.params) == ({"gain": 2}, {"gain": 3})
    assert [i.name for i in again.named_inputs] == ["gain"] and again.metrics["v"] == 12


def test_a_lazy_reader_an_earlier_cell_made_reads_its_files_in_the_cell(project_dir, kernel):
    """Found by the trial: ``rel = duckdb.read_csv("data.csv")`` (or ``duckdb.sql("...
    FROM 'data.csv'")``) and ``dset = pyarrow.dataset.dataset("parts")`` in a setup
    cell, ``rel.df()``/``dset.to_table()`` in the tracked cell: a DuckDB relation and an
    Arrow dataset read their files when they are run, in the tracked cell, yet the run
    recorded no input (the wrappers saw the path in the setup cell, outside any run);
    after ``data.csv`` changed, "read rel: changed" and no word of the file. The files a
    relation's SQL or a dataset names are read by the cell that uses it."""
    import pandas as pd

    pd.DataFrame({"a": range(10)}).to_csv(project_dir / "data.csv", index=False)
    (project_dir / "parts").mkdir()
    for i in range(2):
        pd.DataFrame({"a": range(i + 2)}).to_parquet(project_dir / "parts" / f"p{i}.parquet")
    kernel.ok(
        "import duckdb, pyarrow.dataset as ds\nrel = duckdb.read_csv('data.csv')\n"
        "big = duckdb.sql(\"SELECT * FROM 'data.csv' WHERE a > 4\")\n"
        "dset = ds.dataset('parts', format='parquet')",
        cell_id="c0",
    )
    kernel.ok("%%track rel -m n\nn = len(rel.df()) + len(big.df())", cell_id="c1")
    kernel.ok("%%track dset -m n\nn = dset.to_table().num_rows", cell_id="c2")
    pd.DataFrame({"a": range(20)}).to_csv(project_dir / "data.csv", index=False)
    shown = kernel.ok("%%track rel -m n\nn = len(rel.df()) + len(big.df())", cell_id="c1").text
    assert "input data.csv: changed" in shown, shown
    client = _settle(project_dir)
    first, again = _cell_runs(client, "rel")
    (ds_run,) = _cell_runs(client, "dset")
    assert _inputs(first) == _inputs(again) == ["data.csv"]
    assert _inputs(ds_run) == ["parts/p0.parquet", "parts/p1.parquet"]


def test_a_memory_map_an_earlier_cell_opened_is_read_by_the_cell(project_dir, kernel):
    """Found by the trial: ``arr = np.load("big.npy", mmap_mode="r")`` and ``mm =
    np.memmap("mm.bin", ...)`` in a setup cell, ``arr[:10].sum()`` in the tracked cell:
    the bytes come from the file as the cell reads them, yet the run recorded no input,
    only "reads: arr (memmap)". A memory map the cell uses is a read of its file."""
    kernel.ok(
        "import numpy as np\nnp.save('big.npy', np.arange(100.0))\n"
        "np.arange(10, dtype='f4').tofile('mm.bin')\n"
        "arr = np.load('big.npy', mmap_mode='r')\nmm = np.memmap('mm.bin', dtype='f4', mode='r')\n"
        "head = arr[:10]",
        cell_id="c0",
    )
    kernel.ok("%%track mm -m s\ns = float(head.sum() + mm[:5].sum())", cell_id="c1")
    (run,) = _cell_runs(_settle(project_dir), "mm")
    assert _inputs(run) == ["big.npy", "mm.bin"]


def test_settings_imported_by_name_from_a_project_module_are_parameters(project_dir, kernel):
    """Found by the trial: ``import proj_cfg`` in a setup cell, the training cell ``from
    proj_cfg import LR, EPOCHS``; ``proj_cfg.py`` edited (``LR = 0.2``) and reloaded, the
    cell run again: its metric went 0.3 → 0.6 and the run said nothing of why, no
    parameter and no input (the module, imported before, is not opened again). The
    settings a cell imports by name from a project module are its parameters, and the
    module's file is read; a library's names (``from math import pi``) are neither."""
    (project_dir / "proj_cfg.py").write_text("LR = 0.1\nEPOCHS = 3\nLAYERS = [64, 32]\n")
    kernel.ok("import importlib, sys\nsys.path.insert(0, '.')\nimport proj_cfg", cell_id="c0")
    cell = (
        "%%track fi -m lr\nfrom proj_cfg import LR, EPOCHS, LAYERS as layers\n"
        "from math import pi\nlr = LR * EPOCHS + len(layers) * 0 + pi * 0"
    )
    kernel.ok(cell, cell_id="c1")
    (project_dir / "proj_cfg.py").write_text("LR = 0.2\nEPOCHS = 3\nLAYERS = [64, 32]\n")
    kernel.ok("importlib.reload(proj_cfg)", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "param LR: 0.1 → 0.2" in shown and "input proj_cfg.py: changed" in shown, shown
    first, again = _cell_runs(_settle(project_dir), "fi")
    assert first.params == {"LR": 0.1, "EPOCHS": 3, "layers": [64, 32]}
    assert again.params["LR"] == 0.2 and _inputs(again) == ["proj_cfg.py"]


def test_a_functions_own_argument_is_not_the_global_of_its_name(project_dir, kernel):
    """Found by the trial: a setup cell with ``lr = 0.1``, ``def make_opt(lr): return
    {"lr": lr}`` and ``opt = make_opt(0.5)`` (or a ``Dataset`` whose ``__getitem__(self,
    i)`` beside a ``for i in range(6)`` loop); the tracked cell reads ``opt``. Its run
    recorded ``lr=0.1 (upstream)`` as the parameter behind ``opt`` (made with 0.5), and
    after ``lr = 0.2`` warned "stale input: opt was made by In[1] from lr". A function's
    parameters and locals are its own: what it was made from are the names it reads
    from outside, its defaults among them (``def f(s=seed)`` is made from seed)."""
    kernel.ok(
        "lr = 0.1\nseed = 3\ndef make_opt(lr, s=seed):\n    step = lr * 2\n    return {'lr': lr, 's': s}\n"
        "opt = make_opt(0.5)\nscale = (lambda lr: lr * 2)(4)",
        cell_id="c0",
    )
    cell = "%%track use -m v\nv = opt['lr'] + scale"
    kernel.ok(cell, cell_id="c1")
    kernel.ok("lr = 0.2", cell_id="c2")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "stale" not in shown and "lr=" not in shown, shown
    kernel.ok("seed = 4", cell_id="c3")
    shown = kernel.ok(cell, cell_id="c1").text
    assert "stale input: opt was made by" in shown, shown
    first = _cell_runs(_settle(project_dir), "use")[0]
    assert first.params == {"opt": {"lr": 0.5, "s": 3}, "scale": 8}, first.params


def test_a_file_an_earlier_cell_opened_is_read_by_the_cell_reading_it(project_dir, kernel):
    """Found by the trial: ``fh = open("data.csv")`` or ``chunks = pd.read_csv("data.csv",
    chunksize=10)`` in a setup cell, ``fh.readlines()``/``for c in chunks`` in the
    tracked cell: the cell read the file and its run recorded no input, only "reads: fh
    (TextIOWrapper)". A file object open for reading (or pandas' chunked reader over
    one) that the cell uses is a read of its file; one open for writing is not."""
    (project_dir / "data.csv").write_text("a\n" + "\n".join(map(str, range(30))) + "\n")
    kernel.ok(
        "import pandas as pd\nfh = open('data.csv')\nchunks = pd.read_csv('data.csv', chunksize=10)\n"
        "log = open('log.txt', 'w')",
        cell_id="c0",
    )
    kernel.ok("%%track fh -m n\nn = len(fh.readlines())", cell_id="c1")
    kernel.ok("%%track ch -m n\nn = sum(len(c) for c in chunks)\nlog.write('x')", cell_id="c2")
    client = _settle(project_dir)
    (fh,), (ch,) = _cell_runs(client, "fh"), _cell_runs(client, "ch")
    assert _inputs(fh) == _inputs(ch) == ["data.csv"]
