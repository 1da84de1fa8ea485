"""Headless runs as users launch them (issue 15, thirteenth trial): papermill's logging
options, a shell redirect, a cell timeout, with real kernels, then the record read back
as a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from nbtrack import launcher
from test_magics import _settle
from test_pipelines_trial12 import _notebook

BIN = Path(sys.executable).parent
LOAD = "%load_ext nbtrack"


def _papermill(folder: Path, *args: str, stdout: object = subprocess.DEVNULL) -> int:
    done = subprocess.run(
        [str(BIN / "papermill"), "nb.ipynb", *args, "-k", "python3"],
        cwd=folder, env=kernel_env(), stdout=stdout, stderr=subprocess.STDOUT, timeout=120,
    )  # fmt: skip
    return done.returncode


def test_papermills_own_log_files_are_no_output_of_the_cell_running(tmp_path):
    """``papermill nb.ipynb out.ipynb --log-output > run.log 2>&1`` (as cron and CI run
    it), ``papermill … --stdout-file o.txt`` and ``papermill … 2>&1 | tee t.log``: papermill
    (or tee) writes the cell's printed
    lines there while the cell runs, and the cell run recorded run.log / o.txt as its
    outputs, so its re-run said "not reproduced: output run.log was not written"."""
    (tmp_path / ".nbtrack").mkdir()
    fit = (
        "%%track fit\nimport time\nfor epoch in (1, 2, 3):\n"
        "    print('epoch', epoch, flush=True)\n    time.sleep(0.4)\n"
        "open('model.txt', 'w').write(str(lr))"
    )
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (fit, [])])
    with open(tmp_path / "run.log", "w") as log:
        assert _papermill(tmp_path, "out.ipynb", "-p", "lr", "0.2", "--log-output", stdout=log) == 0
    assert _papermill(tmp_path, "o2.ipynb", "--stdout-file", "o.txt", "--stderr-file", "e.txt") == 0
    tee = f"'{BIN / 'papermill'}' nb.ipynb o3.ipynb -k python3 --log-output 2>&1 | tee t.log"
    subprocess.run(["sh", "-c", tee], cwd=tmp_path, env=kernel_env(), check=True,
                   stdout=subprocess.DEVNULL, timeout=120)  # fmt: skip
    for log in ("run.log", "o.txt", "t.log"):
        assert "epoch 1" in (tmp_path / log).read_text()
    client = _settle(tmp_path)
    _, rows = client.sql("SELECT run_id FROM runs WHERE name = 'fit'")
    runs = client.get_runs([r[0] for r in rows])
    assert len(runs) == 3
    for run in runs:
        assert [(d.path, d.role) for d in run.data] == [("model.txt", "output")]


def test_a_cell_papermills_execution_timeout_stopped_is_recorded_as_timed_out(tmp_path):
    """``papermill nb.ipynb out.ipynb --execution-timeout 2`` on a cell that takes longer:
    papermill interrupts the kernel and says "A cell timed out ... after 2 seconds"; the
    cell run and the notebook run said ``KeyboardInterrupt`` alone, as if someone had
    pressed Ctrl-C."""
    (tmp_path / ".nbtrack").mkdir()
    slow = "%%track slow\nimport time\ntime.sleep(30)"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (slow, [])])
    assert _papermill(tmp_path, "out.ipynb", "--execution-timeout", "2") != 0
    _, rows = _settle(tmp_path).sql("SELECT kind, status, error FROM runs ORDER BY kind")
    why = "KeyboardInterrupt (timed out: papermill --execution-timeout 2)"
    assert rows == [("cell", "failed", why), ("notebook", "failed", f"In[3] raised {why}")]


@pytest.mark.parametrize(
    ("argv", "timeout"),
    [
        (["papermill", "in.ipynb", "o.ipynb", "--execution-timeout=5"], "--execution-timeout 5"),
        (["papermill", "in.ipynb", "o.ipynb", "--execution-timeout", "-1"], None),
        (["jupyter", "execute", "--timeout=7", "in.ipynb"], "--timeout 7"),
        (["jupyter-nbconvert", "--execute", "--ExecutePreprocessor.timeout=9", "in.ipynb"],
         "--ExecutePreprocessor.timeout 9"),
        (["jupyter", "execute", "in.ipynb"], None),
    ],
)  # fmt: skip
def test_the_runners_cell_timeout_is_read_from_its_command_line(tmp_path, argv, timeout):
    found = launcher.parse(argv, str(tmp_path))
    assert found is not None and found.timeout == timeout


def test_a_parameter_or_metric_named_like_a_runs_field_is_told_apart_in_ls(tmp_path):
    """``papermill nb.ipynb out.ipynb -p name baseline`` with a cell logging a metric
    ``duration``: ``nbtrack ls`` showed two columns headed ``name`` (the run's, the
    parameter's) and two headed ``duration``, and ``--columns name`` gave both."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m duration\nduration = len(name) * 1.5"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("name = 'a'", ["parameters"]), (fit, [])])
    assert _papermill(tmp_path, "out.ipynb", "-p", "name", "baseline") == 0
    _settle(tmp_path)
    table = run_cli("ls", cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:3] == ["run", "name", "status"]
    assert "params.name" in table[0].split() and "metrics.duration" in table[0].split()
    assert sorted(table[0].split()).count("name") == 1, table[0]
    assert "fit" in table[1].split() and "baseline" in table[1].split() and "12" in table[1]
    chosen = run_cli("ls", "--columns", "name,params.name,metrics.duration", cwd=tmp_path)
    names = ["name", "params.name", "metrics.duration"]
    assert chosen.stdout.split() == [*names, "fit", "baseline", "12"]


def test_a_sweeps_table_tells_a_metric_from_the_parameter_it_shares_a_name_with(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.1 0.2`` whose cell logs the decayed ``lr`` as a
    metric: the sweep's table had two columns headed ``lr``, 0.1 beside 0.05."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m lr\nlr = lr / 2"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.4", ["parameters"]), (fit, [])])
    done = run_cli("sweep", "nb.ipynb", "-p", "lr", "0.1", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    header, row = done.stdout.splitlines()[:2]
    assert header.split() == ["notebook_run", "status", "params.lr", "metrics.lr"]
    assert row.split()[1:] == ["finished", "0.1", "0.05"]


def test_a_cell_the_sweeps_timeout_stopped_is_recorded_as_timed_out(tmp_path):
    """``nbtrack sweep nb.ipynb --timeout 2``: the notebook run said the cell timed out,
    its cell run ``KeyboardInterrupt`` alone."""
    (tmp_path / ".nbtrack").mkdir()
    slow = "%%track slow\nimport time\ntime.sleep(30)"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("lr = 0.1", ["parameters"]), (slow, [])])
    done = run_cli("sweep", "nb.ipynb", "--timeout", "2", "--no-progress", cwd=tmp_path)
    assert done.returncode == 1 and "timed out" in done.stdout
    _, rows = _settle(tmp_path).sql("SELECT status, error FROM runs WHERE kind = 'cell'")
    assert rows == [("failed", "KeyboardInterrupt (timed out: --timeout 2)")]


def test_a_rerun_whose_p_override_a_later_cell_set_again_says_the_cell_read_another(
    project_dir, kernel_factory
):
    """An interactive session ran ``lr = 0.1``, ``fit``, ``lr = 0.5``, ``fit`` again; then
    ``nbtrack rerun <the last fit> -p lr 0.3``: the replay puts the override after the
    first ``lr = 0.1``, the later ``lr = 0.5`` wins, and the rerun printed "with lr=0.3"
    and "reproduced" while the cell it judged ran with 0.5: no word that -p changed nothing."""
    (project_dir / ".nbtrack").mkdir()
    fit = "%%track fit -m a\na = lr * 2"
    path = _notebook(project_dir / "nb.ipynb", [(LOAD, []), ("lr = 0.1", []), (fit, [])])
    kernel = kernel_factory(project_dir, JPY_SESSION_NAME=str(path))
    for source in (LOAD, "lr = 0.1", fit, "lr = 0.5", fit):
        kernel.ok(source)
    kernel.close()
    client = _settle(project_dir)
    _, rows = client.sql("SELECT run_id FROM runs WHERE name = 'fit' ORDER BY started_at")
    done = run_cli("rerun", rows[-1][0], "-p", "lr", "0.3", "--json", cwd=project_dir)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(done.stdout)
    why = "-p lr 0.3 did not reach cell fit: it read lr=0.5 (upstream), set after the override"
    assert why in result["warnings"]
    assert f"nbtrack: warning: {why}" in done.stderr
    shown = _settle(project_dir).get_run(result["shown_run_id"])
    assert (shown.params, shown.param_sources) == ({"lr": 0.5}, {"lr": "upstream"})


def test_a_sweep_over_a_parameter_a_later_cell_sets_again_says_so(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.1 0.2`` where a cell after the parameters cell
    says ``lr = 0.05  # tuned``: the table showed lr 0.1 and 0.2 with the same metric, and
    nothing but the executed notebooks' cell summaries said the cells read 0.05."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m a\na = lr * 2"
    cells = [(LOAD, []), ("lr = 0.1", ["parameters"]), ("lr = 0.05  # tuned", []), (fit, [])]
    _notebook(tmp_path / "nb.ipynb", cells)
    done = run_cli("sweep", "nb.ipynb", "-p", "lr", "0.1", "0.2", "--no-progress", "--json",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    want = {
        f"{row['run_id'][:8]}: -p lr {row['parameters']['lr']} did not reach cell fit: it read "
        "lr=0.05 (upstream), set after the override"
        for row in result["runs"]
    }
    assert set(result["warnings"]) == want
    assert all(f"nbtrack: warning: {line}" in done.stderr for line in want)


def test_a_rerun_that_cannot_run_as_asked_names_the_notebook_and_what_would_work(tmp_path):
    """``papermill nb.ipynb out.ipynb -p lr 0.2``, then ``mv nb.ipynb train.ipynb``: ``nbtrack
    rerun RUN --current`` said "the notebook of run … no longer exists" (which notebook?),
    and ``--as-saved`` "run … has no saved notebook to execute", neither saying that the
    rerun without the option replays the code the run recorded."""
    (tmp_path / ".nbtrack").mkdir()
    _notebook(tmp_path / "nb.ipynb",
              [(LOAD, []), ("lr = 0.1", ["parameters"]), ("%%track fit\nx = lr", [])])  # fmt: skip
    assert _papermill(tmp_path, "out.ipynb", "-p", "lr", "0.2") == 0
    _, [(run,)] = _settle(tmp_path).sql("SELECT run_id FROM runs WHERE kind = 'notebook'")
    (tmp_path / "nb.ipynb").rename(tmp_path / "train.ipynb")
    current = run_cli("rerun", run, "--current", cwd=tmp_path)
    assert current.returncode == 1
    assert f"the notebook of run {run[:8]}, nb.ipynb, no longer exists" in current.stderr
    assert "without --current, the rerun executes the code the run recorded" in current.stderr
    saved = run_cli("rerun", run, "--as-saved", cwd=tmp_path)
    assert saved.returncode == 2
    assert "without --as-saved, the rerun replays the code the run recorded" in saved.stderr
    assert run_cli("rerun", run, cwd=tmp_path).returncode == 0  # (and it does)


def test_sweep_and_repro_given_a_kernel_jupyter_does_not_know_stop_before_executing(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 0.1 0.2 --kernel pyhton3`` (a typo): every point
    was executed, each recorded as a failed notebook run ("NoSuchKernel: No such kernel
    named pyhton3"), where ``nbtrack rerun --kernel`` stops at once listing the kernels
    Jupyter knows; ``nbtrack repro -f --kernel pyhton3`` did the same as the sweep."""
    (tmp_path / ".nbtrack").mkdir()
    _notebook(tmp_path / "nb.ipynb",
              [(LOAD, []), ("lr = 0.1", ["parameters"]), ("%%track fit\nx = lr", [])])  # fmt: skip
    assert _papermill(tmp_path, "out.ipynb") == 0
    before = _settle(tmp_path).sql("SELECT run_id FROM runs")[1]
    sweep = ["sweep", "nb.ipynb", "-p", "lr", "0.1", "0.2", "--no-progress"]
    for argv in ([*sweep, "--kernel", "pyhton3"], ["repro", "-f", "--kernel", "pyhton3"]):
        done = run_cli(*argv, cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "no kernel named 'pyhton3' here; available: " in done.stderr
        assert "python3" in done.stderr.split("available: ")[1]
    assert _settle(tmp_path).sql("SELECT run_id FROM runs")[1] == before


def test_text_papermill_injects_where_the_default_is_a_bool_or_a_number_is_warned(tmp_path):
    """``papermill -p debug false`` injects the text ``'false'`` (papermill parses only
    ``True``/``False``), which is true: the notebook ran in debug mode, and the record
    held ``debug='false'`` with no word; ``-r lr 0.5`` the same for a number. The notebook
    run now says so (``nbtrack show``), and so does the executed notebook."""
    (tmp_path / ".nbtrack").mkdir()
    params = "debug = False\nlr = 0.1\nname = 'base'"
    fit = "%%track fit\nsteps = 1 if debug else 100"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), (params, ["parameters"]), (fit, [])])
    bad = ["-p", "debug", "false", "-r", "lr", "0.5"]
    good = ["-p", "debug", "False", "-p", "lr", "0.5", "-r", "name", "x"]
    for out, extra in (("bad.ipynb", bad), ("ok.ipynb", good)):
        done = subprocess.run(
            [str(BIN / "papermill"), "nb.ipynb", out, "-k", "python3", *extra],
            cwd=tmp_path, env=kernel_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    client = _settle(tmp_path)
    _, rows = client.sql("SELECT run_id FROM runs WHERE kind = 'notebook' ORDER BY started_at")
    shown_bad, shown_ok = (run_cli("show", r[0], cwd=tmp_path).stdout for r in rows)
    assert (
        "param debug: papermill injected the text 'false' where the parameters cell has a bool (False)"
        in shown_bad
    )
    assert "any non-empty text is true" in shown_bad
    assert (
        "param lr: papermill injected the text '0.5' where the parameters cell has a float (0.1)"
        in shown_bad
    )
    assert "papermill injected the text" not in shown_ok  # (name='x': text where text was)
    executed = json.loads((tmp_path / "bad.ipynb").read_text())
    said = "".join(
        "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])
    )
    assert "papermill injected the text 'false'" in said
