"""Parameters found by dataflow, named inputs and stale inputs, in real kernels and papermill.

Each test is a reproducer of issue 15: what a user wrote in a notebook, and what the
record must say about it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import kernel_env, run_cli
from nbtrack import launcher
from nbtrack.client import Client
from nbtrack.dataflow import analyze
from nbtrack.lineage import Lineage
from nbtrack.models import Run
from test_magics import _settle

BIN = Path(sys.executable).parent


def _cell_runs(client: Client, name: str) -> list[Run]:
    """The runs of one named cell, oldest first, read back in full."""
    _, rows = client.sql(f"SELECT run_id FROM runs WHERE name = '{name}' ORDER BY started_at")
    return client.get_runs([r[0] for r in rows])


class Notebook:
    """Cells executed in one namespace with the bookkeeping a kernel does after each."""

    def __init__(self) -> None:
        self.ns: dict = {"__name__": "__main__"}
        self.lineage = Lineage(self.ns)
        self.count = 0

    def run(self, code: str, cell_id: str | None = None) -> None:
        self.count += 1
        exec(code, self.ns)
        self.lineage.after_cell(code, self.count, cell_id)

    def reads(self, code: str) -> dict:
        return {r.name: r for r in self.lineage.reads(analyze(code))}


def test_staleness_follows_inputs_transitively_and_cells_run_again():
    nb = Notebook()
    nb.run("x = 1", "a")
    nb.run("y = x * 10", "b")
    nb.run("w = y + 1", "c")
    assert nb.reads("w")["w"].stale is None
    nb.run("x = 2", "a")
    assert nb.reads("w")["w"].stale == (
        "w was made by In[3] from y; y was made by In[2] from x, which was changed since by In[4]"
    )
    nb.run("y = x * 10", "b")  # re-running b makes y fresh again, but w still old
    assert (
        nb.reads("w")["w"].stale == "w was made by In[3] from y, which was changed since by In[5]"
    )
    nb.run("v = 1", "d")
    nb.run("pass", "d")  # d ran again without making v
    assert nb.reads("v")["v"].stale == (
        "v was made by In[6], and that cell ran again (In[7]) without making it"
    )


def test_parameters_behind_a_value_untracked_cells_made_are_the_reading_cell_s():
    """A sixth trial: ``SEED`` set in a config cell, ``idx`` made from it by an untracked
    cell, a tracked cell reading ``idx``: SEED was nowhere in the record, so changing it
    changed the score with no parameter to show why."""
    nb = Notebook()
    nb.run("SEED = 1\nDATA = 'data.csv'", "config")
    nb.run("import numpy as np\nrows = np.arange(10)", "load")
    nb.run("idx = np.random.default_rng(SEED).permutation(rows)\nhalf = idx // 2", "split")
    reads = nb.reads("score = sum(half)")
    assert {n: (r.is_param, r.value, r.origin) for n, r in reads.items()} == {
        "half": (False, None, "upstream"), "SEED": (True, 1, "upstream"),
    }  # fmt: skip
    assert reads["SEED"].record().note == "made half"  # through idx, to any depth
    # a value made by a tracked cell: its run holds the parameters, the read links to it
    nb.lineage.after_cell("idx = np.random.default_rng(SEED).permutation(rows)", 9, "split", "r1")
    assert set(nb.reads("score = sum(idx)")) == {"idx"}
    # a parameter changed since the value was made: not behind it, the read is stale
    nb.run("idx = np.random.default_rng(SEED).permutation(rows)", "split")
    nb.run("SEED = 2", "config")
    stale = nb.reads("score = sum(idx)")
    assert set(stale) == {"idx"} and "from SEED, which was changed" in stale["idx"].stale


def test_staleness_is_per_name_a_cell_made_not_per_cell():
    """Found by a new user's trial: ``raw`` and ``train = raw.sample(frac=frac)`` made in
    one cell; changing ``frac`` made ``raw`` stale too."""
    nb = Notebook()
    nb.run("frac = 0.5\nbase = 10", "cfg")
    nb.run("raw = list(range(base))\ntrain = raw[: int(len(raw) * frac)]\nn = len(train)", "load")
    nb.run("frac = 0.8", "cfg2")
    assert nb.reads("raw")["raw"].stale is None
    assert nb.reads("train")["train"].stale == (
        "train was made by In[2] from frac, which was changed since by In[3]"
    )
    assert nb.reads("n")["n"].stale.startswith("n was made by In[2] from frac")  # via train
    nb.run("base = 20", "cfg3")  # and everything made from raw is stale with it
    assert "from base" in nb.reads("raw")["raw"].stale
    assert nb.reads("train")["train"].stale is not None


def test_rebinding_an_equal_value_is_no_change_and_unseen_rebinding_loses_the_producer():
    nb = Notebook()
    nb.run("x = 1.5", "a")
    nb.run("y = x * 2", "b")
    nb.run("x = 1.5", "a")  # same value again: y is not stale
    assert nb.reads("y")["y"].stale is None
    nb.ns["x"] = 9.0  # rebound by something the analysis did not see (exec, a debugger)
    r = nb.reads("x")["x"]
    assert r.producer is None and r.value == 9.0


def test_equal_plain_containers_are_no_change_up_to_a_bound_and_a_changed_one_is():
    nb = Notebook()
    cfg = "G = [5]\nC = {'a': (1, 'x'), 'b': {2.0}, 'c': [[True]]}"
    big = "B = list(range(3000))\nD = [[[[[1]]]]]"
    nb.run(cfg, "cfg")
    nb.run(big, "big")
    nb.run("t = (G, C, B, D)", "make")
    nb.run(cfg, "cfg")
    assert nb.reads("t")["t"].stale is None
    nb.run("C = {'a': (1, 'x'), 'b': {2.0}, 'c': [[1]]}", "other")  # True became 1
    assert nb.reads("t")["t"].stale.startswith("t was made by In[3] from C")
    nb.run("t = (G, C, B, D)", "make")
    nb.run("G.append(6)", "grow")  # changed by a method: a change too
    assert nb.reads("t")["t"].stale.startswith("t was made by In[6] from G")
    for name, code in (("B", "B = list(range(3000))"), ("D", "D = [[[[[1]]]]]")):
        nb.run("t = (G, C, B, D)", "make")
        nb.run(code, name)  # past the bounds (3,000 items; 5 levels): compared by identity
        assert nb.reads("t")["t"].stale.startswith(f"t was made by In[{nb.count - 1}] from {name}")


def test_the_cell_before_papermills_injected_cell_holds_the_defaults():
    nb = Notebook()
    nb.run("seed = 1\nlr = 0.1", "params")
    nb.run("# Parameters\nseed = 3\n", "injected")
    reads = nb.reads("f(seed, lr)")
    assert (reads["seed"].origin, reads["lr"].origin) == ("papermill", "default")


def test_bookkeeping_touches_only_the_names_a_cell_binds():
    nb = Notebook()
    nb.ns.update({f"v{i}": i for i in range(10_000)})
    nb.run("a = v1 + v2")
    assert set(nb.lineage.names) == {"a"} and nb.lineage.names["a"].reads == {}


def test_a_parameter_set_in_an_earlier_cell_is_recorded_and_its_change_shown(project_dir, kernel):
    """Reproducer 1: ``gamma`` in an untracked cell, ``SVC(gamma=gamma)`` in the tracked one."""
    kernel.ok("from sklearn.svm import SVC\ngamma = 0.001")
    first = kernel.ok("%%track t\nclf = SVC(gamma=gamma)")
    kernel.ok("gamma = 0.01")
    second = kernel.ok("%%track t\nclf = SVC(gamma=gamma)")

    client = _settle(project_dir)
    a, b = _cell_runs(client, "t")
    assert a.params == {"gamma": 0.001} and a.param_sources == {"gamma": "upstream"}
    assert b.params == {"gamma": 0.01}
    assert "gamma=0.001" in first.text
    assert "param gamma: 0.001 → 0.01" in second.text
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir)
    assert shown.returncode == 0 and "gamma" in shown.stdout and "0.01" in shown.stdout


def test_a_seed_behind_an_untracked_split_shows_in_the_summary_and_the_diff(project_dir, kernel):
    """The sixth trial: SEED changed, the split re-run untracked, the tracked fit re-run:
    the score moved and the record gave no parameter that could explain it."""
    kernel.ok("import numpy as np", cell_id="imports")
    kernel.ok("SEED = 0", cell_id="config")
    split = "idx = np.random.default_rng(SEED).permutation(20)\ntrain = idx[:10]"
    kernel.ok(split, cell_id="split")
    first = kernel.ok("%%track fit\nscore = float(train.mean())", cell_id="fit")
    kernel.ok("SEED = 1", cell_id="config")
    kernel.ok(split, cell_id="split")
    second = kernel.ok("%%track fit\nscore = float(train.mean())", cell_id="fit")
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert (a.params, b.params) == ({"SEED": 0}, {"SEED": 1})
    assert b.param_sources == {"SEED": "upstream"}
    assert "SEED=0" in first.text and "param SEED: 0 → 1" in second.text
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    assert "SEED" in shown and "train" in shown


def test_names_read_through_notebook_functions_are_parameters_of_the_cell(project_dir, kernel):
    kernel.ok("gamma = 0.5\nunused = 7\ndef make():\n    return {'gamma': gamma}")
    kernel.ok("def train():\n    return make()")
    kernel.ok("%%track fit\nmodel = train()")
    run = _settle(project_dir).get_run("last")
    assert run.params == {"gamma": 0.5} and run.param_sources == {"gamma": "upstream"}


def test_an_augmented_literal_is_recorded_with_its_value_at_the_end_of_the_cell(
    project_dir, kernel
):
    """Reproducer 5: ``n = 100`` then ``n *= 2`` is 200."""
    kernel.ok("%%track grow\nn = 100\nn *= 2")
    run = _settle(project_dir).get_run("last")
    assert run.params == {"n": 200} and run.param_sources == {"n": "auto"}


def test_a_literal_a_loop_changes_is_recorded_as_written(project_dir, kernel):
    """An accumulator and a decayed learning rate are the values the user wrote, not
    what the loop left (``total=6``, ``lr=0.0125``); the summary says the same."""
    out = kernel.ok(
        "%%track loop\ntotal = 0\nlr = 0.1\nhistory = []\nfor x in [1, 2, 3]:\n"
        "    total += x\n    lr *= 0.5\n    history.append(x)\nn = 100\nn *= 2"
    )
    assert kernel.ok("print(total, lr, history)").text.strip() == "6 0.0125 [1, 2, 3]"
    run = _settle(project_dir).get_run("last")
    assert run.params == {"total": 0, "lr": 0.1, "n": 200}  # (an empty list filled: none)
    assert set(run.param_sources.values()) == {"auto"}
    assert "0.0125" not in out.text


def test_m_takes_numbers_dicts_and_series_and_says_what_is_not_a_metric(project_dir, kernel):
    """Reproducer 9: ``-m report`` (a dict), ``-m losses`` (a list), ``-m acc`` (a literal)."""
    out = kernel.ok(
        "%%track score -m report losses acc name\n"
        "report = {'f1': 0.8, 'macro avg': {'recall': 0.5}, 'label': 'x'}\n"
        "losses = [0.9, 0.5, 0.25]\nacc = 0.9\nname = 'svc'"
    )
    client = _settle(project_dir)
    run = client.get_run("last")
    logged = {k: v for k, v in run.metrics.items() if not k.startswith("system/")}
    assert logged == {"report.f1": 0.8, "report.macro avg.recall": 0.5, "losses": 0.25,
                      "losses.mean": (0.9 + 0.5 + 0.25) / 3, "acc": 0.9}  # fmt: skip
    assert [p.value for p in client.metric_series(run.run_id)["losses"]] == [0.9, 0.5, 0.25]
    assert "acc" not in run.params and "name" not in run.params
    assert "-m name: not a metric: a str" in out.text
    listed = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)
    assert "acc" not in listed["param_keys"] and listed["metric_keys"].count("acc") == 1


def test_a_cell_reading_stale_state_is_warned_and_the_run_says_why(project_dir, kernel):
    """Reproducer 12: a (x = 1), b (y = x * 10), a again (x = 2), c (z = y + x)."""
    kernel.ok("x = 1", cell_id="a")
    kernel.ok("y = x * 10", cell_id="b")
    kernel.ok("x = 2", cell_id="a")
    out = kernel.ok("%%track c\nz = y + x\nprint(z)", cell_id="c")
    assert "12" in out.text
    assert "stale input: y was made by In[" in out.text and "from x, which was changed" in out.text
    run = _settle(project_dir).get_run("last")
    stale = {i.name: i.reason for i in run.named_inputs if i.stale}
    assert list(stale) == ["y"] and "from x" in stale["y"]
    # ... and `nbtrack show` says so beside the parameter y, not only its JSON
    shown = run_cli("show", run.run_id, cwd=project_dir).stdout
    [line] = [ln for ln in shown.splitlines() if "param y" in ln]
    assert "10 (upstream; stale: y was made by In[" in line and "from x" in line


def test_values_that_are_not_parameters_are_named_inputs_linked_to_their_run(project_dir, kernel):
    kernel.ok("import numpy as np")
    kernel.ok("%%track prepare\nX_train = np.arange(12.0).reshape(3, 4)\nsize = len(X_train)")
    kernel.ok("class Odd:\n    def __repr__(self):\n        raise RuntimeError('no')\nodd = Odd()")
    kernel.ok("%%track train -p odd\nmodel = (X_train.sum(), odd)")
    client = _settle(project_dir)
    prepare, train = _cell_runs(client, "prepare")[0], _cell_runs(client, "train")[0]
    inputs = {i.name: i for i in train.named_inputs}
    x = inputs["X_train"]
    assert x.type == "numpy.ndarray" and x.shape == "3×4" and x.fingerprint
    assert x.producer_run_id == prepare.run_id and not x.stale
    assert inputs["odd"].type == "Odd"  # a repr that raises is recorded by its type
    assert train.params == {"odd": "<Odd>"}
    shown = run_cli("show", train.run_id, cwd=project_dir).stdout
    assert "read X_train" in shown
    assert f"numpy.ndarray 3×4 {x.fingerprint} from run {prepare.short_id} In[3]" in shown

    # prepare makes other data, train runs again: the diff names the input and its maker
    kernel.ok("%%track prepare\nX_train = np.ones((3, 4))\nsize = len(X_train)")
    again = kernel.ok("%%track train -p odd\nmodel = (X_train.sum(), odd)")
    client = _settle(project_dir)
    newer = _cell_runs(client, "prepare")[1]
    assert f"read X_train: changed (made by run {newer.short_id})" in again.text
    diffed = run_cli("diff", train.run_id, "last", cwd=project_dir).stdout
    assert "X_train" in diffed and newer.short_id in diffed


def _papermill(
    workdir: Path, cells: list[tuple[str, list[str]]], *params: str, fails: bool = False
) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    for src, tags in cells:
        cell = nbformat.v4.new_code_cell(src)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    path = workdir / "nb.ipynb"
    nbformat.write(nb, path)
    out = workdir / "out.ipynb"
    args = [str(BIN / "papermill"), str(path), str(out), "--cwd", str(workdir), "-k", "python3"]
    done = subprocess.run(
        [*args, *params], cwd=workdir, env=kernel_env(), capture_output=True, text=True
    )
    assert (done.returncode != 0) == fails, done.stderr[-3000:]
    return out


def test_papermill_records_defaults_and_overrides_on_the_notebook_run_and_only_reads_on_cells(
    project_dir,
):
    """Reproducers 2 and 3: injected values only where read; the defaults on the notebook run."""
    _papermill(
        project_dir,
        [
            ("%load_ext nbtrack", []),
            ("n_clusters = 3\nseed = 0\nlabel = 'base'", ["parameters"]),
            ("%%track cluster\nk = dict(n_clusters=4, seed=seed)", []),
            ("%%track other\nm = n_clusters * 2", []),
        ],
        "-p", "n_clusters", "10",
    )  # fmt: skip
    client = _settle(project_dir)
    cluster, other = _cell_runs(client, "cluster")[0], _cell_runs(client, "other")[0]
    # k, a dict of settings and names the cell wrote, holds the 4 it used (eighth trial)
    assert cluster.params == {"seed": 0, "k": {"n_clusters": 4, "seed": 0}}
    assert cluster.param_sources == {"seed": "default", "k": "auto"}
    assert other.params == {"n_clusters": 10} and other.param_sources == {"n_clusters": "papermill"}
    notebook = client.get_run(cluster.parent_id)
    assert notebook.params == {"n_clusters": 10, "seed": 0, "label": "base"}
    assert notebook.param_sources == {"n_clusters": "papermill", "seed": "default",
                                      "label": "default"}  # fmt: skip


def test_papermill_parameters_are_kept_when_nbtrack_is_loaded_after_the_parameters_cell(
    project_dir,
):
    """Reproducer 4: parameters cell, then ``%load_ext nbtrack``, then a tracked cell."""
    _papermill(
        project_dir,
        [
            ("seed = 1\nlr = 0.1", ["parameters"]),
            ("%load_ext nbtrack", []),
            ("%%track fit\nscore = seed * lr", []),
        ],
        "-p", "seed", "3",
    )  # fmt: skip
    client = _settle(project_dir)
    fit = _cell_runs(client, "fit")[0]
    assert fit.params == {"seed": 3, "lr": 0.1}
    assert fit.param_sources == {"seed": "papermill", "lr": "default"}
    notebook = client.get_run(fit.parent_id)
    assert notebook.kind == "notebook" and notebook.params == {"seed": 3, "lr": 0.1}
    assert notebook.param_sources == {"seed": "papermill", "lr": "default"}


@pytest.mark.parametrize("load_first", [True, False])
def test_papermill_given_no_parameters_still_makes_a_notebook_run_with_the_defaults(
    project_dir, load_first
):
    """papermill injects no cell when given no parameters: the kernel learns it runs under
    papermill, and on which notebook, from papermill's command line. The notebook run
    holds the parameters cell's values as defaults, wherever ``%load_ext`` sits, and a
    cell that reads one says it is the default, not some upstream cell's value."""
    load = ("%load_ext nbtrack", [])
    cells = [("seed = 1\nlr = 0.1", ["parameters"]), ("%%track fit\nscore = seed * 2", [])]
    _papermill(project_dir, [load, *cells] if load_first else [cells[0], load, cells[1]])
    client = _settle(project_dir)
    fit = _cell_runs(client, "fit")[0]
    assert fit.params == {"seed": 1} and fit.param_sources == {"seed": "default"}
    assert fit.notebook_path == "nb.ipynb"
    notebook = client.get_run(fit.parent_id)
    assert (notebook.kind, notebook.name, notebook.status) == ("notebook", "nb", "finished")
    assert notebook.notebook_path == "nb.ipynb"
    assert notebook.params == {"seed": 1, "lr": 0.1}
    assert notebook.param_sources == {"seed": "default", "lr": "default"}


def test_jupyter_execute_names_the_notebook_it_runs(project_dir):
    """``jupyter execute nb.ipynb`` (a relative path, from the notebook's folder): the run
    records its notebook, so ``rerun`` and the panel find it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in ("%load_ext nbtrack", "%%track t\nx = 1")]
    nbformat.write(nb, project_dir / "nb.ipynb")
    done = subprocess.run(
        [str(BIN / "jupyter-execute"), "nb.ipynb", "--kernel_name=python3"],
        cwd=project_dir, env=kernel_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = _cell_runs(_settle(project_dir), "t")[0]
    assert run.notebook_path == "nb.ipynb" and run.parent_id is None


def test_papermill_called_from_a_script_names_the_notebook_it_runs(project_dir):
    """``papermill.execute_notebook(...)`` in a driver script, the way many sweeps are
    written: the kernel's parent names the script, not the notebook, so the runs named
    no notebook (no ``dag``, no as-saved ``rerun``). papermill writes its output
    notebook as it goes, with the injected cell and its input's path: the kernel finds
    it there, also when the output is in another folder and the kernel runs elsewhere."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    params = nbformat.v4.new_code_cell("lr = 0.1\nseed = 0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nbtrack"), params,
                nbformat.v4.new_code_cell("%%track fit\nscore = lr * 2 + seed")]  # fmt: skip
    (project_dir / "nbs").mkdir()
    (project_dir / ".nbtrack").mkdir()  # the project's store, above the notebook's folder
    nbformat.write(nb, project_dir / "nbs" / "train.ipynb")
    (project_dir / "drive.py").write_text(
        "import os, papermill as pm\nos.makedirs('outs', exist_ok=True)\n"
        "for lr in (0.2, 0.3):\n"
        "    pm.execute_notebook('nbs/train.ipynb', f'outs/o_{lr}.ipynb', parameters={'lr': lr},\n"
        "                        kernel_name='python3', progress_bar=False,\n"
        "                        cwd='nbs' if lr == 0.3 else None)\n"
    )
    done = subprocess.run(
        [sys.executable, "drive.py"], cwd=project_dir, env=kernel_env(PWD=str(project_dir)),
        capture_output=True, text=True, timeout=300,  # (PWD: as a shell starts it)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = _settle(project_dir)
    runs = sorted(_cell_runs(client, "fit"), key=lambda r: r.params["lr"])
    assert [r.params for r in runs] == [{"lr": 0.2, "seed": 0}, {"lr": 0.3, "seed": 0}]
    assert [r.notebook_path for r in runs] == ["nbs/train.ipynb"] * 2
    parents = [client.get_run(r.parent_id) for r in runs if r.parent_id]
    assert [(p.name, p.notebook_path, p.params) for p in parents] == [
        ("train", "nbs/train.ipynb", {"lr": lr, "seed": 0}) for lr in (0.2, 0.3)
    ]


@pytest.mark.parametrize(
    ("argv", "tool", "notebook", "injects"),
    [
        (["papermill", "in.ipynb", "out.ipynb"], "papermill", "in.ipynb", False),
        (["/v/bin/python", "/v/bin/papermill", "-k", "python3", "in.ipynb"], "papermill",
         "in.ipynb", False),
        (["python", "-m", "papermill", "-p", "a.ipynb", "2", "in.ipynb", "o.ipynb"],
         "papermill", "in.ipynb", True),
        (["papermill", "--cwd", "sub", "in.ipynb", "o.ipynb", "-y", "a: 1"], "papermill",
         "in.ipynb", True),
        (["papermill", "--inject-paths", "in.ipynb", "o.ipynb"], "papermill", "in.ipynb", True),
        (["papermill", "missing.ipynb", "o.ipynb"], "papermill", None, False),
        (["jupyter", "nbconvert", "--to", "notebook", "--execute", "in.ipynb"], "nbconvert",
         "in.ipynb", False),
        (["/v/bin/jupyter-execute", "in.ipynb", "out.ipynb"], "execute", None, False),
    ],
)  # fmt: skip
def test_the_runner_and_its_notebook_are_read_from_its_command_line(
    tmp_path, argv, tool, notebook, injects
):
    (tmp_path / "in.ipynb").write_text("{}")
    (tmp_path / "out.ipynb").write_text("{}")
    found = launcher.parse(argv, str(tmp_path))
    want = str(tmp_path / notebook) if notebook else None
    assert found == launcher.Launch(tool, want, injects)


def test_a_relative_notebook_is_found_where_papermill_started_not_where_cwd_moved_it(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "in.ipynb").write_text("{}")
    (tmp_path / "sub" / "in.ipynb").write_text("{}")  # a namesake where --cwd points
    argv = ["papermill", "--cwd", "sub", "in.ipynb", "o.ipynb"]
    found = launcher.parse(argv, str(tmp_path / "sub"), pwd=str(tmp_path))
    assert found is not None and found.notebook == str(tmp_path / "in.ipynb")
    assert launcher.parse(["ipykernel_launcher", "-f", "k.json"], str(tmp_path)) is None
    assert launcher.parse(["jupyter-lab", "in.ipynb"], str(tmp_path)) is None


def test_a_plain_papermill_run_stopped_by_a_raising_cell_is_a_failed_notebook_run(project_dir):
    """``papermill in.ipynb out.ipynb`` (no nbtrack sweep) stops at a cell that raises: the
    notebook run says so, with the cell and its error, as the tracked cell before it ran."""
    _papermill(
        project_dir,
        [
            ("%load_ext nbtrack", []),
            ("lr = 0.1", ["parameters"]),
            ("%%track fit\nscore = lr * 2", []),
            ("raise ValueError('the data is empty')", []),
            ("%%track never\nx = 1", []),
        ],
        "-p", "lr", "0.5",
        fails=True,
    )  # fmt: skip
    client = _settle(project_dir)
    fit = _cell_runs(client, "fit")[0]
    assert fit.status == "finished" and _cell_runs(client, "never") == []
    notebook = client.get_run(fit.parent_id)
    assert (notebook.kind, notebook.status) == ("notebook", "failed")
    assert notebook.error == "In[5] raised ValueError: the data is empty"
    shown = run_cli("show", notebook.run_id, cwd=project_dir).stdout
    assert "failed" in shown and "In[5] raised ValueError: the data is empty" in shown


def test_hostile_unhashable_and_huge_values_never_stop_the_cell(project_dir, kernel):
    kernel.ok(
        "class Trap:\n"
        "    __hash__ = None\n"
        "    def __getattr__(self, name):\n        raise RuntimeError('trap')\n"
        "    def __eq__(self, other):\n        raise RuntimeError('eq')\n"
        "    def __len__(self):\n        raise RuntimeError('len')\n"
        "trap = Trap()\n"
        "big = [bytes([i]) * (1 << 20) for i in range(100)]"
    )
    out = kernel.ok("%%track hostile\nkept = (trap, len(big))")
    assert "nbtrack run" in out.text and "warning: could not" not in out.text
    run = _settle(project_dir).get_run("last")
    inputs = {i.name: i for i in run.named_inputs}
    assert run.status == "finished" and set(inputs) == {"trap", "big"}
    assert inputs["trap"].type == "Trap"
    assert inputs["big"].shape == "100" and inputs["big"].note.startswith("not fingerprinted")


def test_names_a_pandas_query_string_reads_are_parameters_and_their_change_shows(
    project_dir, kernel
):
    """Found by a new user's trial: ``df.query("amount > @min_amount")`` read min_amount."""
    kernel.ok("import pandas as pd\ndf = pd.DataFrame({'amount': [50, 90, 130]})\nmin_amount = 80")
    kernel.ok("def big(d):\n    return d.eval('amount * @scale')\nscale = 2")
    kernel.ok("%%track q -m n\nn = len(df.query('amount > @min_amount'))\ntotal = big(df).sum()")
    kernel.ok("min_amount = 120")
    second = kernel.ok(
        "%%track q -m n\nn = len(df.query('amount > @min_amount'))\ntotal = big(df).sum()"
    )
    a, b = _cell_runs(_settle(project_dir), "q")
    assert a.params == {"min_amount": 80, "scale": 2} and b.params["min_amount"] == 120
    assert "param min_amount: 80 → 120" in second.text


def test_a_name_read_then_rebound_to_a_literal_records_the_value_the_cell_used(project_dir, kernel):
    """``print(epochs); epochs = 3`` used epochs=5: the record says 5, from upstream."""
    kernel.ok("epochs = 5")
    out = kernel.ok("%%track ra\nprint(f'epochs={epochs}')\nepochs = 3")
    assert "epochs=5" in out.text
    run = _settle(project_dir).get_run("last")
    assert run.params == {"epochs": 5} and run.param_sources == {"epochs": "upstream"}
    # and the next cell reading epochs (now 3, made by that cell) is not called stale
    # because that cell read epochs itself, nor is a name made from a name the same cell
    # rebound
    kernel.ok("x = 1")
    kernel.ok("x = x * 2\ny = x + 1")
    later = kernel.ok("%%track after\nz = epochs + y")
    assert "stale input" not in later.text


def test_diff_shows_the_change_of_a_notebook_function_the_cell_calls(project_dir, kernel):
    """``def score`` defined anew between two runs of the same cell: the diff shows it,
    and the functions it calls (followed transitively), but not unrelated ones."""
    kernel.ok("def helper(x):\n    return x * 2\ndef score(x):\n    return helper(x) + 1")
    kernel.ok("def unrelated():\n    return 0")
    kernel.ok("%%track s -m out\nout = score(3)")
    kernel.ok("def helper(x):\n    return x * 3\ndef unrelated():\n    return 1")
    kernel.ok("%%track s -m out\nout = score(3)")
    a, b = _cell_runs(_settle(project_dir), "s")
    shown = run_cli("diff", a.run_id, b.run_id, cwd=project_dir)
    assert shown.returncode == 0, shown.stderr
    assert "-    return x * 2" in shown.stdout and "+    return x * 3" in shown.stdout
    assert f"run {b.run_id[:8]}: helper" in shown.stdout and "unrelated" not in shown.stdout
    diffed = json.loads(run_cli("diff", a.run_id, b.run_id, "--json", cwd=project_dir).stdout)
    assert "+    return x * 3" in diffed["code"]


def test_a_partial_of_a_notebook_function_is_followed(project_dir, kernel):
    kernel.ok("import functools\nrate = 0.7\ndef step(w, g):\n    return w - rate * g")
    kernel.ok("step_p = functools.partial(step, g=1.0)")
    kernel.ok("%%track use_partial\nw = step_p(1.0)")
    run = _settle(project_dir).get_run("last")
    assert run.params == {"rate": 0.7, "step_p": {"g": 1.0}}  # (the g it holds: trial 11)


def test_m_on_a_variable_the_cell_did_not_change_is_not_recorded_and_says_so(project_dir, kernel):
    """Found by a new user's trial: ``-m acc`` on a cell that never set acc recorded the
    value an earlier cell left, with no word; a dict report dropped its non-numbers silently."""
    kernel.ok("%%track s2 -m acc\nacc = 0.9")
    kernel.ok("losses = [0.5]\nreport = {'f1': 0.5}")
    out = kernel.ok(
        "%%track s3 -m acc losses report summary\nlosses.append(0.25)\nif False:\n    acc = 0.1\n"
        "summary = {'f1': 0.7, 'stopped_early': True}"
    )
    run = _settle(project_dir).get_run("last")
    logged = {k: v for k, v in run.metrics.items() if not k.startswith("system/")}
    # appended in place: still a change, recorded; acc and report untouched: not recorded
    assert logged == {"losses": 0.25, "losses.mean": 0.375, "summary.f1": 0.7}
    assert "-m acc: not recorded: the cell did not change it" in out.text
    assert "-m report: not recorded: the cell did not change it" in out.text
    assert "-m summary: not a metric: summary.stopped_early (a bool)" in out.text


def test_a_name_read_in_a_query_string_makes_what_the_cell_made_stale(project_dir, kernel):
    """Found by a new user's trial: ``df.query("p > @limit")`` read limit as a parameter,
    yet changing limit left what the query made fresh."""
    kernel.ok("import pandas as pd\ndf = pd.DataFrame({'p': [1, 5, 9]})\nlimit = 3")
    kernel.ok("big = df.query('p > @limit')\nn = len(big)\nrows = df.eval('p * 2')")
    kernel.ok("limit = 6")
    out = kernel.ok("%%track q\nk = n + len(big) + len(rows)")
    assert "stale input: big was made by In[3] from limit, which was changed since" in out.text
    assert "stale input: n was made by In[3] from limit, which was changed" in out.text
    assert "rows was made" not in out.text


def test_a_value_changed_in_place_is_read_again_and_shown_changed(project_dir, kernel):
    """Found by a new user's trial: ``X /= 10``, ``Y[0] = ...`` through an alias, and an
    untracked ``df.dropna(inplace=True)`` kept the old fingerprint: "same as the previous run"."""
    kernel.ok(
        "import numpy as np\nimport pandas as pd\nX = np.arange(1.0, 7.0)\nY = X\n"
        "df = pd.DataFrame({'a': [1.0, None, 3.0]})"
    )
    track = "%%track fit\nm = X.sum() + len(df)"
    kernel.ok(track)
    seen = [kernel.ok("X /= 10"), kernel.ok(track)]
    seen += [kernel.ok("Y[0] = 100.0"), kernel.ok(track)]  # X changed through its alias
    seen += [kernel.ok("df.dropna(inplace=True)"), kernel.ok(track)]  # by a method
    seen += [kernel.ok("%%track scale\nX *= 2"), kernel.ok(track)]  # by a tracked cell
    again = kernel.ok(track)
    assert "read X: changed" in seen[1].text and "read df" not in seen[1].text
    assert "read X: changed" in seen[3].text
    assert "read df: changed" in seen[5].text and "read X" not in seen[5].text
    assert "read X: changed" in seen[7].text
    assert "same as the previous run" in again.text
    runs = _cell_runs(_settle(project_dir), "fit")
    prints = [{i.name: (i.shape, i.fingerprint) for i in r.named_inputs} for r in runs]
    assert len({p["X"] for p in prints}) == 4 and prints[3]["df"][0] == "2×1"


def test_a_config_cell_run_again_with_equal_containers_makes_nothing_stale(project_dir, kernel):
    """Found by a new user's trial: ``CONFIG = {...}`` and ``G = [5]`` run again unchanged
    made everything made from them stale."""
    cfg = "CONFIG = {'lr': 0.1, 'layers': [64, 32], 'opt': {'name': 'adam'}}\nG = [5]"
    kernel.ok(cfg, cell_id="cfg")
    kernel.ok("t = CONFIG['lr'] * G[0]", cell_id="make")
    kernel.ok(cfg, cell_id="cfg")
    same = kernel.ok("%%track use\nu = t * 2", cell_id="use")
    kernel.ok(cfg.replace("[64, 32]", "[64, 16]"), cell_id="cfg")
    changed = kernel.ok("%%track use\nu = t * 2", cell_id="use")
    assert "stale input" not in same.text
    assert "stale input: t was made by In[3] from CONFIG, which was changed since" in changed.text


def test_a_value_recomputed_to_an_equal_result_is_made_from_the_new_sources(project_dir, kernel):
    """Found by a new user's trial: "t was made by In[6] from G, which was changed since
    by In[5]", though In[6] ran after In[5]."""
    kernel.ok("G = [5]", cell_id="cfg")
    kernel.ok("t = len(G)\nr = t / 2", cell_id="make")
    kernel.ok("w = t * 10", cell_id="down")
    kernel.ok("G = [6]", cell_id="cfg")
    stale = kernel.ok("%%track use\nu = w + r", cell_id="use")
    kernel.ok("t = len(G)\nr = t / 2", cell_id="make")  # the same t and r again
    fresh = kernel.ok("%%track use\nu = w + r", cell_id="use")
    assert "stale input: w was made by In[4] from t; t was made by In[3] from G" in stale.text
    assert "stale input" not in fresh.text
