"""Every file a tracked cell writes, whoever writes it, and the reads of native readers.

Each test runs real cells in a real kernel and reads the run back from the store:
the recorded path, role, in-project flag, and a hash equal to the file's own.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nbtrack.filewatch import FileWatcher
from nbtrack.hashing import hash_bytes, hash_file
from nbtrack.models import DataVersion
from test_lineage import _cell_runs
from test_magics import _settle


def _data(project: Path) -> dict[tuple[str, str], DataVersion]:
    run = _settle(project).get_run("last")
    assert run.status == "finished", run.error
    return {(d.path, d.role): d for d in run.data}


def _is_version_of(v: DataVersion, path: Path, in_project: bool = True) -> None:
    assert v.hash == hash_file(path), f"{v.path}: recorded hash is not the file's"
    assert v.size == path.stat().st_size and v.in_project is in_project


def test_parquet_written_by_arrow_links_the_cell_that_made_it_to_the_cell_that_reads_it(
    kernel, project_dir
):
    # given a cell that writes Parquet through pandas (Arrow's C++ opens the file)
    (project_dir / "raw.csv").write_text("x,y\n1,2\n3,4\n")
    kernel.ok(
        "%%track prepare\nimport pandas as pd\npd.read_csv('raw.csv').to_parquet('clean.parquet')"
    )
    made = _data(project_dir)
    # when another cell reads it back with pandas, and one with pyarrow's Feather
    kernel.ok(
        "%%track train\nimport pandas as pd, pyarrow.feather as feather\n"
        "df = pd.read_parquet('clean.parquet')\n"
        "feather.write_feather(df, 'clean.feather')\n"
        "t = feather.read_table('clean.feather')\n"
    )
    used = _data(project_dir)
    # then the Parquet file is the first cell's output and the second cell's input
    _is_version_of(made[("clean.parquet", "output")], project_dir / "clean.parquet")
    assert set(made) == {("raw.csv", "input"), ("clean.parquet", "output")}
    assert used[("clean.parquet", "input")].hash == made[("clean.parquet", "output")].hash
    # and a file the cell wrote then read back is its output, not an input
    assert set(used) == {("clean.parquet", "input"), ("clean.feather", "output")}
    _is_version_of(used[("clean.feather", "output")], project_dir / "clean.feather")


def test_a_dataset_written_in_partitions_is_one_folder_version_written_then_read(
    kernel, project_dir
):
    # Given: a cell writing a Parquet dataset partitioned by year (a folder, a file per
    # partition named anew by each write), and a cell reading the dataset back
    from nbtrack.hashing import StatCache
    from nbtrack.project import resolve_project
    from nbtrack.versioning import version_path

    kernel.ok(
        "%%track part\nimport pandas as pd\n"
        "df = pd.DataFrame({'y': [2020, 2020, 2021, 2022], 'v': [1, 2, 3, 4]})\n"
        "df.to_parquet('sales', partition_cols=['y'])"
    )
    made = _data(project_dir)
    kernel.ok("%%track readpart\nimport pandas as pd\nn = len(pd.read_parquet('sales'))")
    used = _data(project_dir)

    # Then: the writer's record is the folder, not the folder and each of its 3 files
    assert set(made) == {("sales", "output")}
    assert len(list((project_dir / "sales").rglob("*.parquet"))) == 3
    assert made[("sales", "output")].kind == "dir"
    now = version_path(
        resolve_project(project_dir), project_dir / "sales", "output", cache=None,
        stat_cache=StatCache(), save_stat_cache=False,
    )  # fmt: skip
    assert made[("sales", "output")].hash == now.hash
    # ... and the reader's input is that same version (the lineage links them)
    assert set(used) == {("sales", "input")}
    assert used[("sales", "input")].hash == made[("sales", "output")].hash


def test_duckdb_reads_the_files_its_sql_names_and_copy_writes_are_outputs(kernel, project_dir):
    (project_dir / "events.csv").write_text("k,v\na,1\nb,2\n")
    (project_dir / "parts").mkdir()
    for i in range(2):
        (project_dir / "parts" / f"p{i}.csv").write_text(f"k,v\nc{i},{i}\n")
    kernel.ok(
        "%%track\nimport duckdb\ncon = duckdb.connect()\n"
        "n = con.sql(\"SELECT count(*) FROM 'events.csv'\").fetchall()\n"
        "m = duckdb.read_csv('parts/*.csv').fetchall()\n"
        "con.execute(\"COPY (SELECT * FROM read_csv('events.csv')) TO 'events.parquet'\")\n"
    )
    data = _data(project_dir)
    assert set(data) == {
        ("events.csv", "input"),
        ("parts/p0.csv", "input"),
        ("parts/p1.csv", "input"),
        ("events.parquet", "output"),
    }
    _is_version_of(data[("events.csv", "input")], project_dir / "events.csv")
    _is_version_of(data[("events.parquet", "output")], project_dir / "events.parquet")


def test_boosting_model_and_data_files_their_native_code_opens_are_recorded(kernel, project_dir):
    """XGBoost's C++ opens the file ``load_model`` names, not Python: a cell loading a
    saved model recorded no input. So does LightGBM's for a ``Dataset`` built from a
    path; saved models are outputs (claimed as the kernel's own)."""
    kernel.ok(
        "import numpy as np, xgboost as xgb, lightgbm as lgb\n"
        "X = np.random.default_rng(0).normal(size=(200, 4)); y = (X[:, 0] > 0).astype(int)\n"
        "np.savetxt('train.csv', np.c_[y, X], delimiter=',')"
    )
    kernel.ok(
        "%%track fit\n"
        "b = xgb.train({'max_depth': 2}, xgb.DMatrix(X, label=y), num_boost_round=3)\n"
        "b.save_model('m.json')\n"
        "ds = lgb.Dataset('train.csv', params={'label_column': 0, 'verbose': -1})\n"
        "l = lgb.train({'verbose': -1}, ds, num_boost_round=3)"
    )
    fit = _data(project_dir)
    assert set(fit) == {("m.json", "output"), ("train.csv", "input")}
    kernel.ok(
        "%%track load\nb2 = xgb.Booster(); b2.load_model('m.json')\n"
        "c = xgb.XGBClassifier(); c.load_model('m.json')\nb3 = xgb.Booster(model_file='m.json')"
    )
    load = _data(project_dir)
    assert set(load) == {("m.json", "input")}
    assert load[("m.json", "input")].hash == fit[("m.json", "output")].hash


def test_a_sqlite_database_is_read_before_and_written_by_the_cell(kernel, project_dir):
    # given a database made by a first cell, its connection left open
    kernel.ok(
        "%%track\nimport sqlite3\ncon = sqlite3.connect('shop.db')\n"
        "con.execute('CREATE TABLE sales(n)')\ncon.commit()"
    )
    first = _data(project_dir)
    _is_version_of(first[("shop.db", "output")], project_dir / "shop.db")
    # when a second cell reads it and inserts a row
    kernel.ok(
        "%%track\nimport sqlite3\ncon2 = sqlite3.connect('shop.db')\n"
        "con2.execute('INSERT INTO sales VALUES (1)')\ncon2.commit()"
    )
    second = _data(project_dir)
    # then it read the first cell's version and wrote a new one
    assert set(second) == {("shop.db", "input"), ("shop.db", "output")}
    assert second[("shop.db", "input")].hash == first[("shop.db", "output")].hash
    _is_version_of(second[("shop.db", "output")], project_dir / "shop.db")
    assert second[("shop.db", "output")].hash != first[("shop.db", "output")].hash


def test_a_log_file_an_earlier_cell_opened_is_an_output_of_the_cell_that_writes_it(
    kernel, project_dir
):
    # given a log file and an append handle opened by an untracked cell, kept open
    kernel.ok(
        "import logging\nlogging.basicConfig(filename='train.log', level=logging.INFO, "
        "force=True)\nnotes = open('notes.txt', 'a')"
    )
    # when a tracked cell logs and appends through them (no open, close or rename)
    kernel.ok(
        "%%track fit\nlogging.info('epoch 1 loss 0.3')\nnotes.write('lr 0.1\\n')\nnotes.flush()"
    )
    data = _data(project_dir)
    # then both files are its outputs, at the versions it left
    assert set(data) == {("train.log", "output"), ("notes.txt", "output")}
    _is_version_of(data[("train.log", "output")], project_dir / "train.log")
    _is_version_of(data[("notes.txt", "output")], project_dir / "notes.txt")
    # and a tracked cell that writes neither has no output, not even when the kernel's
    # own standard error is a file of the project (``nohup jupyter lab``) it writes to
    kernel.ok(
        "import os\n_err, _out = os.dup(2), os.open('nohup.out', os.O_WRONLY | os.O_CREAT)\n"
        "os.dup2(_out, 2)\nos.close(_out)"
    )
    kernel.ok("%%track quiet\nx = 1\nos.write(2, b'a warning from native code\\n')")
    assert _data(project_dir) == {}
    kernel.ok("os.dup2(_err, 2)")


def test_an_atomic_save_is_recorded_under_its_final_name(kernel, project_dir):
    kernel.ok(
        "%%track\nimport os, pickle\n"
        "with open('model.pkl.tmp', 'wb') as fh:\n    pickle.dump({'w': [1, 2]}, fh)\n"
        "os.replace('model.pkl.tmp', 'model.pkl')\n"
        "import subprocess\n"
        "subprocess.run('echo 1 > .report.tmp && mv .report.tmp report.txt', shell=True, check=True)\n"
    )
    data = _data(project_dir)
    assert set(data) == {("model.pkl", "output"), ("report.txt", "output")}
    _is_version_of(data[("model.pkl", "output")], project_dir / "model.pkl")
    _is_version_of(data[("report.txt", "output")], project_dir / "report.txt")


def test_files_written_by_a_shell_line_are_outputs(kernel, project_dir):
    (project_dir / "a.csv").write_text("x\n1\n")
    kernel.ok("%%track\n!cp a.csv b.csv\n!mkdir -p out/deep && echo hi > out/deep/c.txt")
    data = _data(project_dir)
    assert {("b.csv", "output"), ("out/deep/c.txt", "output")} <= set(data)
    _is_version_of(data[("b.csv", "output")], project_dir / "b.csv")
    _is_version_of(data[("out/deep/c.txt", "output")], project_dir / "out" / "deep" / "c.txt")


def test_files_a_shell_line_names_are_inputs_at_the_version_before_it_ran(kernel, project_dir):
    """The outside check of issue 15: ``!cp a.csv b.csv`` recorded b.csv and not a.csv,
    silently. A file named on a shell line that exists when the cell starts is read,
    at that version; one the cell wrote (an old ``b.csv`` overwritten) is its output
    only, with no "read, then changed" warning; a word with an expansion is not guessed."""
    (project_dir / "a.csv").write_text("x\n1\n")
    (project_dir / "b.csv").write_text("old\n")
    (project_dir / "run.sh").write_text("cat a.csv > /dev/null\n")
    (project_dir / "notes.txt").write_text("n\n")
    out = kernel.ok(
        "%%track copy\nname = 'notes.txt'\n!cp a.csv b.csv\n"
        "lines = !wc -l {name}\n!sh ./run.sh --quiet\n%sx ls -- a.csv"
    )
    data = _data(project_dir)
    assert set(data) == {("a.csv", "input"), ("run.sh", "input"), ("b.csv", "output")}, data
    _is_version_of(data[("a.csv", "input")], project_dir / "a.csv")
    _is_version_of(data[("b.csv", "output")], project_dir / "b.csv")
    assert "changed by the cell" not in out.text
    # ... and the literal command of subprocess.run or os.system names its inputs too
    (project_dir / "c.csv").write_text("y\n2\n")
    kernel.ok(
        "%%track sub\nimport os, subprocess\n"
        "subprocess.run(['cp', 'c.csv', 'd.csv'], check=True)\nos.system('cat a.csv > e.csv')"
    )
    sub = _data(project_dir)
    assert set(sub) == {("c.csv", "input"), ("a.csv", "input"), ("d.csv", "output"),
                        ("e.csv", "output")}, sub  # fmt: skip


def test_files_written_by_joblib_workers_are_outputs(kernel, project_dir):
    kernel.ok(
        "%%track\nimport os\nfrom joblib import Parallel, delayed\n"
        "os.makedirs('parts', exist_ok=True)\n"
        "def work(i):\n    import os\n"
        "    with open(f'parts/p{i}.txt', 'w') as fh:\n        fh.write(f'{i} from {os.getpid()}')\n"
        "    return os.getpid()\n"
        "pids = Parallel(n_jobs=2)(delayed(work)(i) for i in range(4))\n"
        "assert os.getpid() not in pids\n",
        timeout=300,
    )
    data = _data(project_dir)
    assert {p for p, role in data if role == "output"} == {f"parts/p{i}.txt" for i in range(4)}
    for i in range(4):
        _is_version_of(data[(f"parts/p{i}.txt", "output")], project_dir / "parts" / f"p{i}.txt")


def test_files_read_by_forked_workers_are_inputs(kernel, project_dir):
    """Found by the sixth trial: a PyTorch ``DataLoader(..., num_workers=2)`` reads its
    shards in forked workers, and the run recorded no input at all (with
    ``num_workers=0`` it had every shard). A worker still alive after the cell (a pool
    kept for the next cell) adds nothing to a run that has ended. No log file is left."""
    for i in range(4):
        (project_dir / f"s{i}.txt").write_text(str(i))
    kernel.ok(
        "import multiprocessing as mp\ndef load(i):\n"
        "    with open(f's{i}.txt') as fh:\n        return int(fh.read())"
    )
    # Logs that kernels killed in such a cell left (a pid gone; this pid, reused) are
    # removed by the first tracked cell; one that forks nothing makes none.
    pid = kernel.ok("import os\nprint(os.getpid())").text.strip()
    tmp = Path(tempfile.gettempdir())
    left = [tmp / f"nbtrack-forked-{pid}-x0", tmp / "nbtrack-forked-99999999-x0"]
    for path in left:
        path.write_text("")
    kernel.ok("%%track none\nn = load(3)")
    assert not [p for p in left if p.exists()]
    assert not list(tmp.glob(f"nbtrack-forked-{pid}-*"))
    kernel.ok(
        "%%track shards -m total\npool = mp.get_context('fork').Pool(2)\n"
        "total = sum(pool.map(load, range(3)))",
        timeout=300,
    )
    data = _data(project_dir)
    assert {p for p, role in data if role == "input"} == {"s0.txt", "s1.txt", "s2.txt"}
    _is_version_of(data[("s2.txt", "input")], project_dir / "s2.txt")
    kernel.ok("n = sum(pool.map(load, [3]))\npool.close()\npool.join()", timeout=300)
    (run,) = _cell_runs(_settle(project_dir), "shards")
    assert {d.path for d in run.data if d.role == "input"} == {"s0.txt", "s1.txt", "s2.txt"}
    assert not list(tmp.glob(f"nbtrack-forked-{pid}-*"))  # removed


def test_a_project_module_the_cell_uses_is_an_input_in_every_run(kernel, project_dir):
    """Found by the sixth trial: ``import settings`` then ``settings.LR`` recorded
    ``settings.py`` as an input only in the first run (later imports are cached), so
    after ``LR`` changed and the module was reloaded the run said "input settings.py:
    not read by this run". A library module (numpy) is no input."""
    (project_dir / "settings.py").write_text("LR = 0.1\n")
    cell = "%%track use -m out\nimport settings, numpy\nout = settings.LR * numpy.float64(10)"
    kernel.ok(cell, cell_id="use")
    (project_dir / "settings.py").write_text("LR = 0.5\n")
    kernel.ok("import importlib\nimportlib.reload(settings)")
    second = kernel.ok(cell, cell_id="use").text
    a, b = _cell_runs(_settle(project_dir), "use")
    assert [d.path for d in a.data] == [d.path for d in b.data] == ["settings.py"]
    _is_version_of(next(d for d in b.data if d.path == "settings.py"), project_dir / "settings.py")
    assert "input settings.py: changed" in second, second


def test_a_hidden_data_folder_is_data_but_tool_folders_and_autosaves_are_not(kernel, project_dir):
    (project_dir / ".data").mkdir()
    (project_dir / ".data" / "in.csv").write_text("x\n1\n")
    kernel.ok(
        "%%track\nimport os, pandas as pd\n"
        "pd.read_csv('.data/in.csv').to_parquet('.data/out.parquet')\n"
        "os.makedirs('.ipynb_checkpoints', exist_ok=True)\n"
        "open('.ipynb_checkpoints/x-checkpoint.txt', 'w').write('x')\n"
        "os.makedirs('__pycache__', exist_ok=True)\n"
        "open('__pycache__/m.pyc', 'wb').write(b'x')\n"
        "!echo '{}' > autosaved.ipynb\n"  # as JupyterLab saves another open notebook
    )
    data = _data(project_dir)
    assert set(data) == {(".data/in.csv", "input"), (".data/out.parquet", "output")}
    _is_version_of(data[(".data/out.parquet", "output")], project_dir / ".data" / "out.parquet")


def test_files_outside_the_project_are_recorded_as_outside_and_not_cached(kernel, project_dir):
    outside = Path(tempfile.mkdtemp(prefix="nbtrack-outside-"))
    try:
        (outside / "lookup.csv").write_text("k\n1\n2\n")
        kernel.ok(
            "%%track\nimport pandas as pd\n"
            f"df = pd.read_csv({str(outside / 'lookup.csv')!r})\n"
            f"df.to_csv({str(outside / 'scores.csv')!r})\n"
            f"df.to_parquet({str(outside / 'scores.parquet')!r})\n"
            f"import sqlite3\ncon = sqlite3.connect({str(outside / 'cache.db')!r})\n"
            "con.execute('CREATE TABLE c(k)')\ncon.commit()\n"
        )
        data = {path: v for (path, _), v in _data(project_dir).items()}
        assert set(data) == {
            str(outside / n) for n in ("lookup.csv", "scores.csv", "scores.parquet", "cache.db")
        }
        for name, role in (
            ("lookup.csv", "input"),
            ("scores.csv", "output"),
            ("scores.parquet", "output"),
            ("cache.db", "output"),
        ):
            v = data[str(outside / name)]
            assert v.role == role and v.cached is False
            _is_version_of(v, outside / name, in_project=False)
    finally:
        for f in outside.iterdir():
            f.unlink()
        outside.rmdir()


def test_no_auto_records_only_the_named_files(kernel, project_dir):
    kernel.ok(
        "%%track --no-auto -o named.txt\nopen('named.txt', 'w').write('a')\n!echo b > other.txt"
    )
    assert set(_data(project_dir)) == {("named.txt", "output")}
    assert os.path.exists(project_dir / "other.txt")


def test_a_link_in_the_environment_into_the_project_is_data_and_its_other_files_are_not(
    tmp_path,
):
    # given a project and a Python environment folder (ignored) holding a module and
    # a link to one of the project's files (as an editable install by symlink makes)
    project, env = tmp_path / "project", tmp_path / "env" / "site-packages"
    (project / ".nbtrack").mkdir(parents=True)
    env.mkdir(parents=True)
    (project / "data.csv").write_text("x\n1\n")
    (env / "module.py").write_text("x = 1\n")
    (env / "linked.csv").symlink_to(project / "data.csv")
    watcher = FileWatcher(project, project / ".nbtrack", [str(env.parent)])
    # when the cell opens both, twice (the second time its folder is known)
    for _ in range(2):
        for name in ("module.py", "linked.csv"):
            watcher.saw(str(env / name), write=False, read=True)
    # then the project's file is recorded as read, under its real path; the module not
    assert list(watcher.reads) == [os.path.realpath(project / "data.csv")]


def test_a_parquet_file_rewritten_in_place_records_the_version_read_and_the_one_written(
    kernel, project_dir
):
    kernel.ok("%%track\nimport pandas as pd\npd.DataFrame({'a': [1, 2]}).to_parquet('t.parquet')")
    first = _data(project_dir)[("t.parquet", "output")]
    kernel.ok(
        "%%track\nimport pandas as pd\ndf = pd.read_parquet('t.parquet')\n"
        "df.assign(b=df.a * 2).to_parquet('t.parquet')"
    )
    data = _data(project_dir)
    assert data[("t.parquet", "input")].hash == first.hash
    _is_version_of(data[("t.parquet", "output")], project_dir / "t.parquet")
    assert data[("t.parquet", "output")].hash != first.hash


def test_a_duckdb_database_file_written_then_read(kernel, project_dir):
    kernel.ok(
        "%%track\nimport duckdb\ncon = duckdb.connect('w.duckdb')\n"
        "con.execute('CREATE TABLE t AS SELECT 42 AS a')\ncon.close()"
    )
    made = _data(project_dir)
    assert set(made) == {("w.duckdb", "output")}
    _is_version_of(made[("w.duckdb", "output")], project_dir / "w.duckdb")
    kernel.ok(
        "%%track\nimport duckdb\ncon = duckdb.connect('w.duckdb', read_only=True)\n"
        "rows = con.sql('SELECT a FROM t').fetchall()\ncon.close()"
    )
    read = _data(project_dir)
    assert set(read) == {("w.duckdb", "input")}
    assert read[("w.duckdb", "input")].hash == made[("w.duckdb", "output")].hash


def test_a_forked_worker_writes_are_outputs_and_it_does_not_steal_the_kernels_events(
    kernel, project_dir
):
    kernel.ok(
        "%%track\nimport multiprocessing as mp\n"
        "def work(i):\n    open(f'forked{i}.txt', 'w').write(str(i))\n"
        "ctx = mp.get_context('fork')\n"
        "with ctx.Pool(2) as pool:\n    pool.map(work, range(2))\n"
        "open('after.txt', 'w').write('parent')\n"
    )
    data = _data(project_dir)
    assert set(data) == {
        ("forked0.txt", "output"),
        ("forked1.txt", "output"),
        ("after.txt", "output"),
    }


def test_a_database_only_queried_is_an_input_not_an_output(kernel, project_dir):
    """Found by a new user's trial: a SQLite file a cell only read was also recorded as
    the cell's output (with the bytes it read), linking it as their producer."""
    kernel.ok(
        "import sqlite3\ncon = sqlite3.connect('db.sqlite')\n"
        "con.execute('CREATE TABLE t(x)')\ncon.execute('INSERT INTO t VALUES (1)')\n"
        "con.commit()\ncon.close()"
    )
    kernel.ok(
        "%%track rd\nimport sqlite3\ncon = sqlite3.connect('db.sqlite')\n"
        "n_rows = con.execute('SELECT count(*) FROM t').fetchone()[0]\ncon.close()"
    )
    data = _data(project_dir)
    assert set(data) == {("db.sqlite", "input")}
    _is_version_of(data[("db.sqlite", "input")], project_dir / "db.sqlite")


def test_a_file_an_earlier_cell_wrote_and_this_one_only_closes_is_not_its_output(
    kernel, project_dir
):
    """Found by a new user's fourth trial: ``con.close()`` of a SQLite connection an
    untracked cell had written through (or its collection, in an unrelated cell), and
    ``log.close()`` of a log flushed earlier, made the closing cell the file's writer."""
    kernel.ok(
        "import sqlite3\ncon = sqlite3.connect('shop.db')\ncon.execute('CREATE TABLE t(x)')\n"
        "con.execute('INSERT INTO t VALUES (1)')\ncon.commit()\n"
        "log = open('log.txt', 'w')\nlog.write('flushed\\n')\nlog.flush()\n"
        "buffered = open('buffered.txt', 'w')\nbuffered.write('still in memory')"
    )
    kernel.ok("%%track tidy\ncon.close()\nlog.close()\nbuffered.close()")
    data = _data(project_dir)
    # the one closed with bytes to write; the database is read through `con`, not written
    assert set(data) == {("buffered.txt", "output"), ("shop.db", "input")}
    _is_version_of(data[("buffered.txt", "output")], project_dir / "buffered.txt")


def test_a_database_queried_through_a_connection_an_earlier_cell_opened_is_an_input(
    kernel, project_dir
):
    """Found by a new user's fourth trial: ``con = sqlite3.connect(...)`` in a setup cell
    and ``pd.read_sql(q, con)`` in the tracked one recorded no data at all."""
    kernel.ok(
        "import sqlite3\ncon = sqlite3.connect('shop.db')\ncon.execute('CREATE TABLE t(x)')\n"
        "con.execute('INSERT INTO t VALUES (1)')\ncon.commit()\ncur = con.cursor()\n"
        "def count():\n    return cur.execute('SELECT count(*) FROM t').fetchone()[0]"
    )
    before = (project_dir / "shop.db").read_bytes()
    kernel.ok("%%track q\nn = con.execute('SELECT x FROM t').fetchall()")
    assert set(_data(project_dir)) == {("shop.db", "input")}
    kernel.ok("%%track add\ncon.execute('INSERT INTO t VALUES (2)')\ncon.commit()")
    data = _data(project_dir)
    assert set(data) == {("shop.db", "input"), ("shop.db", "output")}
    assert data[("shop.db", "input")].hash == hash_bytes(before)  # the version it read
    _is_version_of(data[("shop.db", "output")], project_dir / "shop.db")
    kernel.ok("%%track via\nrows = count()")  # a cursor, through a notebook function
    assert set(_data(project_dir)) == {("shop.db", "input")}


def test_files_read_by_a_cells_threads_at_once_are_all_inputs(kernel, project_dir):
    """Found by a new user's fourth trial: four CSVs read by a ThreadPoolExecutor were
    recorded as two: while one thread's read was being versioned, the others' reads
    were taken for nbtrack's own."""
    kernel.ok(
        "import pandas as pd\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "for i in range(8):\n    pd.DataFrame({'a': range(20_000)}).to_csv(f'p{i}.csv')"
    )
    kernel.ok(
        "%%track\nwith ThreadPoolExecutor(8) as ex:\n"
        "    parts = list(ex.map(pd.read_csv, [f'p{i}.csv' for i in range(8)]))"
    )
    assert set(_data(project_dir)) == {(f"p{i}.csv", "input") for i in range(8)}


def test_cache_config_and_local_folders_of_a_project_are_data(kernel, project_dir):
    """Found by a new user's trial: ``.cache/feat.txt`` in the project was never recorded
    (the home folder's own ``.cache`` is still left out, by its path)."""
    kernel.ok(
        "%%track feats\nimport os\nfor d in ('.cache', 'data/.local'):\n"
        "    os.makedirs(d, exist_ok=True)\n"
        "    open(os.path.join(d, 'feat.txt'), 'w').write('x')"
    )
    data = _data(project_dir)
    assert set(data) == {(".cache/feat.txt", "output"), ("data/.local/feat.txt", "output")}


def test_files_in_ipythons_own_folder_are_not_data_wherever_ipythondir_puts_it(
    kernel_factory, project_dir, tmp_path
):
    """Found by a new user's trial: with IPYTHONDIR set, IPython's history database
    was sometimes recorded as a cell's input and output."""
    ipython_dir = tmp_path / "ipython-home"
    k = kernel_factory(IPYTHONDIR=str(ipython_dir))
    k.ok("%load_ext nbtrack")
    k.ok(
        "%%track hist\nimport os, sqlite3\n"
        "con = sqlite3.connect(os.path.join(get_ipython().ipython_dir, 'history.sqlite'))\n"
        "con.execute('SELECT 1').fetchall()\ncon.close()\n"
        "open('made.txt', 'w').write('x')"
    )
    assert set(_data(project_dir)) == {("made.txt", "output")}


def test_two_kernels_running_cells_at_once_are_not_credited_with_each_others_files(
    kernel_factory, project_dir
):
    """Found by a new user's trial: ``nbtrack sweep -j 2`` recorded one point's model as
    its neighbour's output too (the project watch sees every process's writes)."""
    import threading

    a, b = kernel_factory(), kernel_factory()
    for k in (a, b):
        k.ok("%load_ext nbtrack")
    wait_for = "import os, time\nwhile not os.path.exists({0!r}): time.sleep(0.02)\n"
    # given kernel b's cell waiting for a's file before it writes its own,
    done: dict[str, object] = {}
    other = threading.Thread(
        target=lambda: done.setdefault(
            "b",
            b.ok("%%track b\n" + wait_for.format("models/a.pkl") + "open('models/b.pkl', 'w').write('b')\ntime.sleep(0.3)"),
        )
    )  # fmt: skip
    (project_dir / "models").mkdir()
    other.start()
    # when kernel a's cell writes its file and waits for b's, both cells running at once
    a.ok(
        "%%track a\nopen('models/a.pkl', 'w').write('a')\n"
        + wait_for.format("models/b.pkl")
        + "time.sleep(0.3)"
    )
    other.join(timeout=120)
    assert "b" in done
    # then each run holds only the file its own kernel wrote
    client = _settle(project_dir)
    outputs = {
        run.name: {d.path for d in run.data if d.role == "output"}
        for run in client.get_runs([r.run_id for r in client.list_runs().runs])
    }
    assert outputs == {"a": {"models/a.pkl"}, "b": {"models/b.pkl"}}
