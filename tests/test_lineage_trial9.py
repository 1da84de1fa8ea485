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


def test_duckdb_sql_on_a_dataframe_runs_as_without_nbtrack(project_dir, kernel):
    """Found by the trial: ``duckdb.sql("SELECT ... FROM sales")`` on a DataFrame ``sales``
    (DuckDB's "SQL on pandas") raised "Table with name sales does not exist" in every
    cell after ``%load_ext nbtrack``: DuckDB looks the name up in the frame that called
    it, and that was nbtrack's wrapper. The file its SQL names is still recorded."""
    kernel.ok(
        "import duckdb, pandas as pd\nsales = pd.DataFrame({'amt': [5, 20, 30]})\n"
        "sales.to_csv('s.csv', index=False)"
    )
    assert kernel.ok("duckdb.sql('SELECT count(*) FROM sales').fetchall()").text == "[(3,)]"
    kernel.ok(
        "%%track scan -m n -m m\n"
        "n = duckdb.sql('SELECT count(*) FROM sales WHERE amt > 10').fetchall()[0][0]\n"
        "m = duckdb.connect().execute(\"SELECT max(amt) FROM 's.csv'\").fetchall()[0][0]"
    )
    (run,) = _cell_runs(_settle(project_dir), "scan")
    assert run.status == "finished"
    assert {k: v for k, v in run.metrics.items() if "/" not in k} == {"n": 2, "m": 30}
    assert [(d.path, d.role) for d in run.data] == [("s.csv", "input")]


def test_a_dataframe_duckdb_sql_names_is_a_named_input(project_dir, kernel):
    """Found by the trial: ``duckdb.sql("SELECT ... FROM sales")`` reads the DataFrame
    ``sales`` (DuckDB's replacement scan), and the run recorded no input: changing
    ``sales`` and running again said only "metric n: 4 → 5". A table its SQL names that
    is a variable of the notebook is read, as ``@name`` in ``df.query`` is; in a notebook
    function the cell calls too."""
    kernel.ok(
        "import duckdb, pandas as pd\n"
        "sales = pd.DataFrame({'k': [1, 2, 3], 'amt': [5, 20, 30]})\n"
        "regions = pd.DataFrame({'k': [1, 2], 'r': ['n', 's']})\n"
        "def top():\n    return duckdb.sql('select max(amt) from sales').fetchall()[0][0]\n"
        "t = 1.5"
    )
    kernel.ok(
        "%%track scan -m n -m m -m mx\n"
        "n = duckdb.sql('SELECT count(*) FROM sales WHERE amt > 10').fetchall()[0][0]\n"
        "con = duckdb.connect()\n"
        "m = con.execute('SELECT count(*) FROM sales s JOIN regions USING (k)').fetchall()[0][0]\n"
        "mx = top()\n"
        "con.execute('CREATE TABLE t AS SELECT 1 AS a')\n"
        "k = con.sql('SELECT count(*) FROM t').fetchall()"
    )
    kernel.ok("sales.loc[0, 'amt'] = 100")
    again = kernel.ok(
        "%%track scan2 -m n\nn = duckdb.sql('FROM sales SELECT sum(amt)').fetchall()[0][0]"
    )
    assert "reads:   sales (DataFrame, 3×2" in again.text
    first, second = (
        _cell_runs(_settle(project_dir), "scan")[0],
        _cell_runs(_settle(project_dir), "scan2")[0],
    )
    assert sorted(n.name for n in first.named_inputs) == ["regions", "sales"]
    assert first.params == {}  # `FROM t`, DuckDB's table t, is no read of the number t
    assert [n.name for n in second.named_inputs] == ["sales"]
    assert first.named_inputs[1].fingerprint != second.named_inputs[0].fingerprint


def test_m_on_a_1d_tensor_is_a_series_as_an_array_is(project_dir, kernel):
    """Found by the trial: ``-m losses`` on ``torch.stack(losses)`` (a 1-d tensor) said
    "not a metric: a torch.Tensor", while the same numbers as a numpy array, a list of
    0-d tensors or one 0-d tensor were recorded."""
    shown = kernel.ok(
        "%%track curve -m losses\nimport torch\n"
        "losses = torch.tensor([0.5, 0.25], requires_grad=True) * 1"
    )
    assert "not a metric" not in shown.text
    (run,) = _cell_runs(_settle(project_dir), "curve")
    assert {k: v for k, v in run.metrics.items() if "/" not in k} == {
        "losses": 0.25,
        "losses.mean": 0.375,
    }


def test_a_capture_below_track_reads_the_settings_its_body_reads(project_dir, kernel):
    """Found by the trial: ``%%track`` above ``%%capture cap`` recorded no parameter:
    what the cell read was looked for in IPython's ``run_cell_magic('capture', …)`` call,
    not in the body the magic runs (``%%capture`` above ``%%track``, and ``%%time`` below
    it, were right)."""
    kernel.ok("hidden = 8")
    kernel.ok('%%track outer2 -m c\n%%capture cap\nc = hidden + 1\nprint("hidden")')
    assert kernel.ok("print(cap.stdout)").text.strip() == "hidden"
    (run,) = _cell_runs(_settle(project_dir), "outer2")
    assert run.params == {"hidden": 8}
    assert run.param_sources == {"hidden": "upstream"}
    assert run.metrics["c"] == 9


def test_only_text_that_is_sql_names_tables():
    """What the SQL-names fix must not do: take English in a pandas expression or any
    string for SQL (``'data from cache'`` read ``cache``). A table is named only in text
    that starts as SQL does; an f-string is read whole, its expressions left out."""
    from nbtrack.dataflow import analyze

    flow = analyze(
        'con.execute("INSERT INTO log SELECT * FROM events")\n'
        'duckdb.sql(f"SELECT {cols} FROM sales WHERE a > {thr}")\n'
        "df.query(\"note == 'data from cache' and a > @lim\")"
    )
    assert flow.tables == frozenset({"events", "sales"})
    assert "cache" not in flow.reads and {"lim", "cols", "thr"} <= set(flow.reads)
