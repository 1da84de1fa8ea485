"""``%%track`` and ``%track`` in a real kernel, read back from the real DuckDB file."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import nbformat
import pytest

from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
from waiting import wait_until

TRAIN_CELL = """%%track train -m acc
lr = 0.01
import pickle
import pandas as pd
df = pd.read_csv("data/train.csv")
for i in range(50):
    nbtrack.log_metric("loss", 1.0 / (i + 1), step=i)
with open("model.pkl", "wb") as fh:
    pickle.dump(df.shape, fh)
acc = 0.5 + lr * 10
"""


def _notebook(path: Path, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    for cid, src in cells:
        cell = nbformat.v4.new_code_cell(src)
        cell["id"] = cid
        nb.cells.append(cell)
    nbformat.write(nb, path)


@pytest.fixture
def lab_project(project_dir: Path) -> Path:
    """A git repository with a notebook and a data file, as a JupyterLab user has."""
    (project_dir / "data").mkdir()
    (project_dir / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n5,6\n")
    _notebook(
        project_dir / "train.ipynb",
        [("setup", "%load_ext nbtrack\nimport nbtrack"), ("cell-train", TRAIN_CELL)],
    )
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=project_dir, check=True)
    subprocess.run([*git, "add", "."], cwd=project_dir, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project_dir, check=True)
    (project_dir / "notes.txt").write_text("untracked\n")
    (project_dir / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n5,6\n7,8\n")  # dirty
    return project_dir


def _settle(project: Path) -> Client:
    """The store once the kernel's background writer stored every run: none still
    running, no spool left to ingest."""
    client = Client(resolve_project(project))

    def pending() -> dict[str, object]:
        spool = client.project.spool_dir
        if not client.project.db_path.exists():
            return {"store": "not created yet"}
        return {
            "running": client.list_runs(RunQuery(kind=None, status="running")).total,
            "spooled": sorted(p.name for p in spool.iterdir()) if spool.exists() else [],
        }

    wait_until(
        pending,
        lambda seen: seen == {"running": 0, "spooled": []},
        what="the kernel to store its runs",
    )
    return client


def test_a_tracked_cell_records_params_metrics_data_code_and_environment(
    lab_project, kernel_factory
):
    k = kernel_factory(JPY_SESSION_NAME=str(lab_project / "train.ipynb"))
    k.ok("%load_ext nbtrack\nimport nbtrack", cell_id="setup")
    first = k.ok(TRAIN_CELL, cell_id="cell-train")
    client = _settle(lab_project)
    run = client.get_run("last")

    assert run.status == "finished" and run.name == "train"
    assert run.params == {"lr": 0.01} and run.param_sources == {"lr": "auto"}
    assert run.metrics["acc"] == pytest.approx(0.6)
    series = client.metric_series(run.run_id)["loss"]
    assert [p.step for p in series] == list(range(50))
    assert series[-1].value == pytest.approx(1 / 50)
    data = {(d.path, d.role): d for d in run.data}
    assert set(data) == {("data/train.csv", "input"), ("model.pkl", "output")}
    csv = data[("data/train.csv", "input")]
    assert csv.size == len("x,y\n1,2\n3,4\n5,6\n7,8\n") and csv.hash.startswith("xxh3")
    assert client.cache.has(csv.hash) and csv.cached
    assert run.source == TRAIN_CELL.rstrip() and run.cell_id == "cell-train"
    assert run.notebook_path == "train.ipynb" and run.execution_count == 2
    assert run.code_matches_notebook is True
    assert client.cache.has(run.notebook_hash)
    assert json.loads(client.cache.read_bytes(run.notebook_hash))["cells"][1]["id"] == "cell-train"
    assert len(run.git_commit) == 40 and run.git_dirty is True and "+7,8" in run.git_diff
    assert run.environment.python.count(".") == 2 and "duckdb" in run.environment.packages
    assert run.started_at < run.ended_at

    # The summary under the cell: id, params, metrics; the first run says so.
    assert run.short_id in first.text and "lr=0.01" in first.text and "acc=0.6" in first.text
    assert "first run of this cell" in first.text
    bundle = first.mimebundles()[-1]
    assert run.short_id in bundle["text/html"] and run.short_id in bundle["text/plain"]

    # Run it again with another lr and more data: the summary shows what changed.
    (lab_project / "data" / "train.csv").write_text("x,y\n1,2\n")
    second = k.ok(TRAIN_CELL.replace("lr = 0.01", "lr = 0.02"), cell_id="cell-train")
    assert f"since {run.short_id}" in second.text
    assert "param lr: 0.01 → 0.02" in second.text
    assert "metric acc: 0.6 → 0.7 (+0.1)" in second.text
    assert "input data/train.csv: changed" in second.text
    assert "code changed" in second.text
    client = _settle(lab_project)
    newer = client.get_run("last")
    assert newer.run_id != run.run_id and newer.code_matches_notebook is False


WAIT_FOR_WARNINGS = """%%track
import time
give_up = time.monotonic() + 60
while len(nbtrack.active_run().warnings) < 2 and time.monotonic() < give_up:
    time.sleep(0.02)
"""


def test_git_state_and_snapshot_that_cannot_be_recorded_are_warnings_on_the_run(
    project_dir, kernel_factory
):
    from conftest import run_cli

    # given a notebook in a folder whose .git points nowhere (git fails there), and a
    # store whose cache folder cannot be written (a file stands where it should be)
    (project_dir / ".git").write_text("gitdir: /nonexistent/repo\n")
    _notebook(project_dir / "nb.ipynb", [("c1", WAIT_FOR_WARNINGS)])
    (project_dir / ".nbtrack").mkdir()
    (project_dir / ".nbtrack" / "cache").write_text("not a folder")
    k = kernel_factory(JPY_SESSION_NAME=str(project_dir / "nb.ipynb"))
    k.ok("%load_ext nbtrack\nimport nbtrack")

    # when a tracked cell runs until nbtrack has gathered what it could in the background
    reply = k.ok(WAIT_FOR_WARNINGS, cell_id="c1")

    # then the summary under the cell says what was not recorded
    assert "warning: no git state recorded: git status failed: fatal: not a git repository" in (
        reply.text
    )
    assert "warning: no notebook snapshot kept:" in reply.text

    # and the run keeps them as warning tags (the session code needs the cache too),
    # with what could be recorded
    run = _settle(project_dir).get_run("last")
    kinds = ["code", "git", "notebook"]
    assert sorted(run.tags) == [f"nbtrack.warning.{k}" for k in kinds]
    assert run.warnings == [run.tags[f"nbtrack.warning.{k}"] for k in kinds]
    assert run.tags["nbtrack.warning.code"].startswith("no session code kept:")
    assert run.status == "finished" and run.git_commit is None and run.notebook_hash is None
    assert run.code_matches_notebook is True

    # and nbtrack show lists them as warnings, not as tags
    shown = run_cli("show", "last", cwd=project_dir).stdout
    warned = [line.split(None, 1)[1] for line in shown.splitlines() if line.startswith("warning ")]
    assert [w[:40] for w in warned] == [w[:40] for w in run.warnings]
    assert "tag nbtrack." not in shown


def test_a_failing_cell_is_recorded_failed_and_the_error_still_reaches_the_user(
    kernel, project_dir
):
    reply = kernel.run("%%track\nx = 1\nraise ValueError('bad data in row 3')")
    assert reply.status == "error" and reply.ename == "ValueError"
    assert "bad data in row 3" in reply.text
    run = _settle(project_dir).get_run("last")
    assert run.status == "failed" and "ValueError: bad data in row 3" in run.error
    assert run.params == {"x": 1}


def test_the_last_expression_is_shown_and_variables_stay_defined(kernel, project_dir):
    reply = kernel.ok("%%track\na = 20\na + 1")
    assert any(
        o["msg_type"] == "execute_result" and o["content"]["data"]["text/plain"] == "21"
        for o in reply.outputs
    )
    assert kernel.ok("print(a * 2)").text.strip().startswith("40")


BAD_LINES = [
    "%%track --bogus",
    "%%track -x",
    "%%track -t",
    "%%track -t novalue",
    "%%track -t =v",
    "%%track -p",
    "%%track -m",
    "%%track -i",
    "%%track -o",
    "%%track -p 1abc",
    "%%track -m not-a-name",
    "%%track -p a.b",
    "%%track 'unbalanced",
    '%%track "open -p x',
    "%%track name1 name2",
    "%%track --no-auto=3",
    "%%track --no-cache yes please",
    "%%track -m acc -t k=v extra words",
    "%%track -p x -m",
    "%%track -t a=b c",
    "%%track -t k=v -t",
    "%%track -- -p",
]


def test_malformed_magic_lines_are_usage_errors_that_run_and_record_nothing(kernel, project_dir):
    assert len(BAD_LINES) >= 20
    for line in BAD_LINES:
        reply = kernel.run(f"{line}\nside_effect = 'ran'\nopen('touched.txt', 'w').close()")
        assert reply.status == "error" and reply.ename == "UsageError", (line, reply.text)
        assert "usage: %%track" in reply.text or "usage:" in reply.text, (line, reply.text)
        assert kernel.ok("print('side_effect' in dir())").text.strip() == "False", line
    assert not (project_dir / "touched.txt").exists()
    empty = kernel.run("%%track\n\n")
    assert empty.status == "error" and "empty" in empty.text
    client = Client(resolve_project(project_dir))
    assert (
        not client.project.db_path.exists() or client.sql("SELECT count(*) FROM runs")[1][0][0] == 0
    )


def test_odd_values_unicode_and_huge_cells_are_kept(kernel, project_dir):
    kernel.ok(
        "class Weird:\n    def __repr__(self):\n        return 'Weird<42>'\nw = Weird()\n"
        "import numpy as np"
    )
    cell = (
        "%%track données -p w -m ε -t équipe=vision -t \"note=hello world\" -t 'k=it is'\n"
        "température = 0.7\n"
        "nom = 'modèle-α'\n"
        "nbtrack.log_metric('nan_metric', float('nan'))\n"
        "nbtrack.log_metric('inf_metric', float('inf'))\n"
        "nbtrack.log_metric('np_metric', np.float32(0.25))\n"
        "ε = np.float64(1e-3)\n" + "".join(f"v{i} = {i}\n" for i in range(3000))
    )
    kernel.ok(cell)
    client = _settle(project_dir)
    run = client.get_run("last")
    assert run.name == "données"
    assert run.tags == {"équipe": "vision", "note": "hello world", "k": "it is"}
    assert run.params["w"] == "Weird<42>" and run.params["nom"] == "modèle-α"
    assert run.params["température"] == 0.7 and run.params["v2999"] == 2999
    assert math.isnan(run.metrics["nan_metric"]) and run.metrics["inf_metric"] == math.inf
    assert run.metrics["np_metric"] == 0.25 and run.metrics["ε"] == pytest.approx(1e-3)
    assert run.source == cell.rstrip()
    as_json = json.loads(json.dumps(run.to_dict(), allow_nan=False))
    assert (
        as_json["metrics"]["nan_metric"] == "NaN" and as_json["metrics"]["inf_metric"] == "Infinity"
    )


def test_files_opened_through_pandas_numpy_and_open_are_detected_but_not_the_environment(
    kernel, project_dir
):
    (project_dir / "in.csv").write_text("a\n1\n2\n")
    (project_dir / "notes.txt").write_text("hello")
    kernel.ok("import numpy as np\nnp.save('arr.npy', np.arange(3))")
    kernel.ok(
        "%%track io\n"
        "import json, os, pandas as pd, numpy as np\n"
        "df = pd.read_csv('in.csv')\n"
        "df.to_csv('out.csv')\n"
        "arr = np.load('arr.npy')\n"
        "np.save('twice.npy', arr * 2)\n"
        "text = open('notes.txt').read()\n"
        "open(json.__file__).read()\n"
        "open(os.path.join('.nbtrack', 'x.tmp'), 'w').close() if os.path.isdir('.nbtrack') else None\n"
        "import importlib, email.mime.text\n"
    )
    run = _settle(project_dir).get_run("last")
    got = {(d.path, d.role) for d in run.data}
    assert got == {
        ("in.csv", "input"),
        ("arr.npy", "input"),
        ("notes.txt", "input"),
        ("out.csv", "output"),
        ("twice.npy", "output"),
    }


def test_inputs_and_outputs_can_be_named_and_caching_turned_off(kernel, project_dir):
    (project_dir / "raw").mkdir()
    for i in range(3):
        (project_dir / "raw" / f"part{i}.txt").write_text(f"part {i}\n")
    kernel.ok(
        "%%track --no-auto --no-cache -i raw -o report.txt\nopen('report.txt', 'w').write('done')\nk = 3"
    )
    run = _settle(project_dir).get_run("last")
    kinds = {(d.path, d.role): d for d in run.data}
    assert set(kinds) == {("raw", "input"), ("report.txt", "output")}
    assert kinds[("raw", "input")].kind == "dir" and kinds[("raw", "input")].hash
    assert kinds[("report.txt", "output")].cached is False
    assert run.params == {}  # --no-auto: no literal assignments


def test_line_magics_show_tables_of_the_store(kernel, project_dir):
    kernel.ok("%%track a -m m\nlr = 0.1\nm = 1.0")
    kernel.ok("%%track a -m m\nlr = 0.2\nm = 2.0")
    _settle(project_dir)  # the cells returned; their runs reach DuckDB in the background
    ls = kernel.ok("%track ls --sort metrics.m")
    html = ls.mimebundles()[-1]["text/html"]
    assert html.index("<td>0.2</td>") < html.index("<td>0.1</td>")  # sorted by m, largest first
    ids = [r.run_id for r in _settle(project_dir).list_runs().runs]
    shown = kernel.ok(f"%track show {ids[0][:6]}")
    assert ids[0] in shown.text and "param lr" in shown.text
    diffed = kernel.ok(f"%track diff {ids[1]} {ids[0]}")
    assert "lr" in diffed.text and "changed" in diffed.text
    sql = kernel.ok("%track sql SELECT count(*) AS n FROM runs")
    assert "2" in sql.text
    # the query as written, its quotes kept
    quoted = kernel.ok(
        "%track sql SELECT count(*) AS n FROM params WHERE key='lr' AND value <> '\"x\"'"
    )
    assert "2" in quoted.text
    refused = kernel.run('%track sql "DELETE FROM runs"')
    assert refused.status == "error" and refused.ename == "UsageError" and "--write" in refused.text
    wrote = kernel.ok(f"%track sql --write \"DELETE FROM runs WHERE run_id = '{ids[1]}'\"")
    assert "backed up the store to" in wrote.text and ".bak" in wrote.text
    assert _settle(project_dir).list_runs().total == 1
    bad = kernel.run("%track show zzzz")
    assert bad.status == "error" and bad.ename == "UsageError" and "no run" in bad.text
    bad = kernel.run("%track frobnicate")
    assert bad.status == "error" and "invalid choice" in bad.text


def test_outside_a_tracked_cell_logging_is_an_error(kernel):
    reply = kernel.run("nbtrack.log_metric('x', 1.0)")
    assert reply.status == "error" and reply.ename == "NoActiveRunError" and "%%track" in reply.text


def test_a_cell_writing_many_files_says_how_many_and_still_shows_its_code_change(
    kernel, project_dir
):
    """Found by a new user's fourth trial: a cell writing 2,000 shards listed 12 of them
    with no "more", and its "since" lines stopped after 24 without saying so: a code
    change or a failed status after them was never shown."""
    shards = "import os\nos.makedirs('shards', exist_ok=True)\nfor i in range(30):\n"
    kernel.ok(f"%%track shards\n{shards}    open(f'shards/{{i}}.txt', 'w').write(str(i))")
    second = kernel.ok(f"%%track shards\n{shards}    open(f'shards/{{i}}.txt', 'w').write('x')")
    assert ".txt, … 18 more\n" in second.text  # the data line: 12 files listed, of 30
    assert "… 18 more files changed" in second.text and "code changed" in second.text


def test_track_ls_shows_a_whole_number_parameter_as_it_was_set(kernel, project_dir):
    """Found by a new user's fourth trial: ``%track ls`` showed ``epochs = 3`` as 3.0,
    and NaN for the runs without it (``nbtrack.runs()`` gives 3 and <NA>)."""
    kernel.ok("%%track a\nepochs = 3")
    kernel.ok("%%track b\nlr = 0.5")
    _settle(project_dir)
    text = kernel.ok("%track ls --columns name,epochs,lr").text
    rows = {line.split()[1]: line.split()[2:] for line in text.splitlines()[1:]}
    assert rows == {"a": ["3", "NaN"], "b": ["<NA>", "0.5"]}, text  # (a float's gap: NaN)
