"""Headless runs as users launch them (fifteenth papermill and pipeline trial): papermill's
YAML and path options, its Python API, sweeps over lists and dicts, a sweep stopped with
Ctrl-C, with real kernels, real papermill and real signals, then the record read back as
a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import kernel_env, run_cli
from test_magics import _settle
from test_pipelines_trial12 import _notebook
from waiting import wait_until

LOAD = "%load_ext nbtrack"


def _slow_notebook(folder: Path) -> None:
    """A notebook whose cell touches ``started_<lr>`` in the project, then runs a minute
    (``lr = 0``: at once)."""
    (folder / ".nbtrack").mkdir()
    slow = (
        "%%track slow\nimport time, pathlib\npathlib.Path(f'{root}/started_{lr}').touch()\n"
        "for _ in range(600 if lr else 0):\n    time.sleep(0.1)"
    )
    params = f"lr = 0\nroot = {str(folder)!r}"
    _notebook(folder / "nb.ipynb", [(LOAD, []), (params, ["parameters"]), (slow, [])])


def _ctrl_c_sweep(folder: Path, *args: str) -> tuple[int, str]:
    """``nbtrack sweep nb.ipynb -p lr 1 2 3 -j 2 ARGS``, Ctrl-C once two cells run."""
    sweep = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "sweep", "nb.ipynb", "-p", "lr", "1", "2", "3",
         "-j", "2", "--no-progress", *args],
        cwd=folder, env=kernel_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C at a terminal reaches a process whose SIGINT is Python's own; a suite run
        # in the background (CI) ignores SIGINT, and an ignored signal is inherited
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        wait_until(
            lambda: sorted(p.name for p in folder.glob("started_*")),
            lambda seen: len(seen) == 2,
            timeout=120,
            what="two cells to start",
        )
        sweep.send_signal(signal.SIGINT)
        out, _ = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
    return sweep.returncode, out


def test_a_sweep_stopped_with_ctrl_c_records_the_cells_it_stopped_as_interrupted(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 1 2 3 -j 2``, Ctrl-C while two cells run: the sweep
    killed its workers, so the kernels died mid-cell and both cell runs read ``crashed``:
    "the process recording this run (pid N) died before the run finished", their duration
    cut at the last write, where plain papermill's Ctrl-C records the cell ``failed`` with
    its ``KeyboardInterrupt``. The point never started stays unrecorded; the next sweep runs."""
    _slow_notebook(tmp_path)
    returncode, out = _ctrl_c_sweep(tmp_path)
    assert returncode == 130, out
    _, rows = _settle(tmp_path).sql("SELECT kind, status, error FROM runs ORDER BY kind, run_id")
    assert rows == [
        ("cell", "failed", "KeyboardInterrupt"),
        ("cell", "failed", "KeyboardInterrupt"),
        ("notebook", "failed", "interrupted (Ctrl-C)"),
        ("notebook", "failed", "interrupted (Ctrl-C)"),
    ]
    done = run_cli("sweep", "nb.ipynb", "-p", "lr", "0", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    _, rows = _settle(tmp_path).sql("SELECT count(*) FROM runs WHERE status = 'finished'")
    assert rows == [(2,)]


def _papermill(folder: Path, *args: str, **env: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), *args, "-k", "python3"],
        cwd=folder, env=kernel_env(**env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_rerun_after_its_input_changed_names_the_input_it_read_as_recorded(tmp_path):
    """``papermill nb.ipynb out.ipynb -p path data.csv``, then data.csv edited, then ``nbtrack
    rerun``: it said "reproduced" and "1 input(s) restored from the cache", nowhere that
    data.csv now differs from what the run (and the re-run) read."""
    (tmp_path / ".nbtrack").mkdir()
    (tmp_path / "data.csv").write_text("a\n1\n")
    fit = "%%track fit -m n\nn = len(open(path).read().splitlines())"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("path = 'x.csv'", ["parameters"]), (fit, [])])
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "-p", "path", "data.csv")
    (cell,) = _settle(tmp_path).get_runs(["last"])
    assert [(v.path, v.role) for v in cell.data] == [("data.csv", "input")]
    (tmp_path / "data.csv").write_text("a\n1\n2\n")
    done = run_cli("rerun", cell.run_id, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "reproduced: 1 cell run(s)" in done.stdout
    said = "read as the run read them, not as the project holds them now (changed or gone since)"
    assert f"{said}: data.csv" in done.stderr
    assert (tmp_path / "data.csv").read_text() == "a\n1\n2\n"


def test_an_in_place_rerun_refused_for_an_edited_input_names_force_once(tmp_path):
    """The same run, data.csv edited, ``nbtrack rerun RUN --in-place``: "refusing to re-run
    in place: data.csv (differs from every recorded version; --force overwrites it);
    --force overwrites them". ``nbtrack checkout RUN`` still names ``--force``."""
    (tmp_path / ".nbtrack").mkdir()
    (tmp_path / "data.csv").write_text("a\n1\n")
    fit = "%%track fit\nn = len(open(path).read().splitlines())"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("path = 'data.csv'", ["parameters"]), (fit, [])])
    _papermill(tmp_path, "nb.ipynb", "out.ipynb")
    (cell,) = _settle(tmp_path).get_runs(["last"])
    (tmp_path / "data.csv").write_text("a\n1\n2\n")
    done = run_cli("rerun", cell.run_id, "--in-place", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.endswith(
        "refusing to re-run in place: data.csv (differs from every recorded version); "
        "--force overwrites them\n"
    )
    done = run_cli("checkout", cell.run_id, cwd=tmp_path)
    assert "modified  data.csv  differs from every recorded version" in done.stdout
    assert done.stderr == (
        "nbtrack: 1 path(s) could not be restored (see above); "
        "--force overwrites the modified ones\n"
    )


def _cwd_project(tmp_path: Path) -> Path:
    (tmp_path / ".nbtrack").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("a\n1\n")
    fit = "%%track fit -m n\nn = len(open(path).read().splitlines())"
    _notebook(tmp_path / "nb.ipynb", [(LOAD, []), ("path = 'x.csv'", ["parameters"]), (fit, [])])
    return tmp_path


def test_papermill_cwd_from_a_driver_script_names_the_notebook_it_runs(tmp_path):
    """A driver script runs ``subprocess.run(["papermill", "nb.ipynb", "out.ipynb", "--cwd",
    "data", ...], cwd=project)``: its ``PWD`` stays the driver's, papermill's own folder is
    ``data``, and the runs were recorded with no notebook path and no snapshot (so no
    ``rerun`` as saved)."""
    _cwd_project(tmp_path)
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "--cwd", "data", "-p", "path", "d.csv",
               PWD=str(Path.home()))  # fmt: skip
    client = _settle(tmp_path)
    _, rows = client.sql("SELECT kind, notebook_path, notebook_hash IS NOT NULL FROM runs")
    assert sorted(rows) == [("cell", "nb.ipynb", True), ("notebook", "nb.ipynb", False)]


def test_a_rerun_of_a_papermill_cwd_run_runs_in_that_folder(tmp_path):
    """``papermill nb.ipynb out.ipynb --cwd data -p path d.csv`` from a shell (its paths
    are the data folder's), then ``nbtrack rerun <its cell run>``: the saved notebook was
    executed in the notebook's folder, so the re-run failed with FileNotFoundError: 'd.csv'
    and said "not reproduced", where the execution it re-ran had finished."""
    _cwd_project(tmp_path)
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "--cwd", "data", "-p", "path", "d.csv",
               PWD=str(tmp_path))  # fmt: skip
    (cell,) = _settle(tmp_path).get_runs(["last"])
    assert [(v.path, v.role) for v in cell.data] == [("data/d.csv", "input")]
    for how in ([], ["--in-place"]):
        done = run_cli("rerun", cell.run_id, *how, cwd=tmp_path)
        assert "mode: as-saved" in done.stderr, done.stderr
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert "reproduced: 1 cell run(s), 1 metric(s)" in done.stdout


def test_a_dask_sweep_stopped_with_ctrl_c_records_what_was_in_flight(tmp_path):
    """``nbtrack sweep nb.ipynb -p lr 1 2 3 -j 2 --executor dask --scheduler ADDR`` (a
    LocalCluster of two workers), Ctrl-C while two executions run: exit 130 and nothing
    recorded at all, where the local executor records them ``interrupted (Ctrl-C)``."""
    from distributed import LocalCluster

    _slow_notebook(tmp_path)
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        returncode, out = _ctrl_c_sweep(
            tmp_path, "--executor", "dask", "--scheduler", cluster.scheduler_address
        )
    assert returncode == 130, out
    _, rows = _settle(tmp_path).sql("SELECT kind, status, error FROM runs")
    assert rows == [("notebook", "failed", "interrupted (Ctrl-C)")] * 2


def test_infinity_and_nan_papermill_injects_are_the_notebook_runs_values(tmp_path):
    """``papermill nb.ipynb out.ipynb -p thr inf -y "lr: .nan"``: papermill injects
    ``thr = float('inf')`` and ``lr = float('nan')``, calls, not literals: the notebook run
    held no parameter (beside another injected value, ``thr=0.5`` as a ``default``) while
    every cell read inf and nan."""
    (tmp_path / ".nbtrack").mkdir()
    use = "%%track use\nok = thr > 1 and lr != lr"
    _notebook(
        tmp_path / "nb.ipynb", [(LOAD, []), ("thr = 0.5\nlr = 0.1", ["parameters"]), (use, [])]
    )
    _papermill(tmp_path, "nb.ipynb", "out.ipynb", "-p", "thr", "inf", "-y", "lr: .nan")
    client = _settle(tmp_path)
    for run in client.get_runs([r for (r,) in client.sql("SELECT run_id FROM runs")[1]]):
        # (the store keeps NaN and infinities as these strings: docs/schema.md)
        assert run.params == {"thr": "Infinity", "lr": "NaN"}, run.kind
        assert run.param_sources == {"thr": "papermill", "lr": "papermill"}, run.kind
