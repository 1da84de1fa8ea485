"""``nbtrack rerun``: a run's notebook snapshot executed again, and the verdict on what came back.

Real kernels, real papermill: ``tests/notebooks/pipe_train.ipynb`` reads ``pipe_data.csv``,
logs ``acc`` and writes ``pipe_out.txt``; ``noise=True`` drops its seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conftest import run_cli
from nbtrack.cli import main
from nbtrack.client import Client
from nbtrack.exceptions import RunNotFoundError
from nbtrack.models import Run
from nbtrack.pipelines.parameters import parse_axes
from nbtrack.pipelines.recording import execute_recorded
from nbtrack.pipelines.rerun import rerun
from nbtrack.pipelines.sweep import plan_sweep
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

NOTEBOOKS = Path(__file__).parent / "notebooks"


def execute_once(folder: Path, **params: str) -> tuple[Run, Run]:
    """One papermill execution of the notebook, in this process: (notebook run, cell run)."""
    project = resolve_project(folder)
    [request] = plan_sweep(
        folder / "pipe_train.ipynb", parse_axes([[k, v] for k, v in params.items()])
    ).requests
    record = execute_recorded(project, request)
    assert record.ok, record.error
    client = Client(project)
    [cell] = client.children(record.run_id)
    return client.get_run(record.run_id), cell


def test_a_deterministic_run_reproduces_from_its_snapshot_even_after_the_notebook_changed(
    pipe_project,
):
    notebook_run, cell = execute_once(pipe_project, lr="0.2")
    [original_output] = cell.outputs
    # Today's file says something else; the rerun executes the snapshot of the run.
    nb = nbformat.read(pipe_project / "pipe_train.ipynb", as_version=4)
    nb.cells[3].source = nb.cells[3].source.replace("1.0 - lr", "2.0 - lr")
    nbformat.write(nb, pipe_project / "pipe_train.ipynb")

    done = run_cli("rerun", cell.run_id[:8], cwd=pipe_project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reproduced: 1 cell run(s), 1 metric(s)" in done.stdout
    assert "1 output(s) with the same hash" in done.stdout
    assert (
        f"re-running {cell.run_id[:8]}: pipe_train.ipynb (snapshot {notebook_run.notebook_hash}) with lr=0.2"
        in done.stderr
    )
    executed = next(
        line for line in done.stdout.splitlines() if line.startswith("executed notebook: ")
    )
    assert (pipe_project / executed.removeprefix("executed notebook: ")).is_file()

    client = Client(resolve_project(pipe_project))
    [again] = [r for r in client.list_runs().runs if r.run_id != cell.run_id]
    new_notebook_run = client.get_run(again.parent_id)
    assert new_notebook_run.rerun_of == cell.run_id
    assert _injected(new_notebook_run) == {"lr": 0.2}
    assert new_notebook_run.param_sources["depth"] == "default"  # the parameters cell's own
    assert new_notebook_run.notebook_hash == notebook_run.notebook_hash
    [output] = client.get_run(again.run_id).outputs
    assert (output.path, output.hash) == (original_output.path, original_output.hash)

    current = run_cli("rerun", notebook_run.run_id, "--current", "--json", cwd=pipe_project)
    assert current.returncode == 1
    assert "--current: pipe_train.ipynb changed since run" in current.stderr
    verdict = json.loads(current.stdout)["verdict"]
    assert [m["key"] for m in verdict["metrics"]] == ["acc"]
    assert verdict["metrics"][0]["delta"] == pytest.approx(1.0)


def _injected(run: Run) -> dict:
    """A notebook run's parameters papermill injected (the others are the notebook's defaults)."""
    return {k: v for k, v in run.params.items() if run.param_sources[k] == "papermill"}


def test_unseeded_randomness_gets_a_verdict_naming_the_metric_and_the_output(pipe_project):
    notebook_run, _ = execute_once(pipe_project, noise="True")
    result = rerun(resolve_project(pipe_project), notebook_run.run_id)
    assert not result.reproduced
    assert result.status == "finished"
    assert [(m.cell, m.key) for m in result.verdict.metrics] == [("train", "acc")]
    assert [(d.path, d.change) for d in result.verdict.outputs] == [("pipe_out.txt", "changed")]
    assert result.verdict.inputs == []
    text = "\n".join(result.verdict.lines())
    assert text.startswith("not reproduced:")
    assert "metric acc (train):" in text and "output pipe_out.txt (train) changed" in text
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["reproduced"] is False
    assert as_json["child_ids"] == [
        c.run_id for c in Client(resolve_project(pipe_project)).children(result.run_id)
    ]


def test_a_changed_input_is_read_at_its_recorded_version_and_left_as_the_user_edited_it(
    pipe_project, capsys
):
    _, cell = execute_once(pipe_project)
    edited = "1\n2\n3\n4\n"
    (pipe_project / "pipe_data.csv").write_text(edited)
    # By default the rerun reads the version the run read, in a scratch copy.
    assert main(["rerun", cell.run_id[:8]]) == 0
    assert "reproduced: 1 cell run(s)" in capsys.readouterr().out
    assert (pipe_project / "pipe_data.csv").read_text() == edited
    # In place, checkout's rules: an edited input is not overwritten without --force.
    assert main(["rerun", cell.run_id[:8], "--in-place"]) == 1
    err = capsys.readouterr().err
    assert "refusing to re-run in place: pipe_data.csv" in err and "--force" in err
    assert (pipe_project / "pipe_data.csv").read_text() == edited
    assert main(["rerun", cell.run_id[:8], "--in-place", "--force"]) == 0
    said = capsys.readouterr()
    assert "workspace: in place" in said.out
    # and it says which of the user's files it put back (a new user's trial saw it silent)
    assert "put back as the run read them (from the cache): pipe_data.csv" in said.err
    assert (pipe_project / "pipe_data.csv").read_text() == "1\n2\n3\n"
    assert main(["rerun", cell.run_id[:8], "--in-place"]) == 0
    assert "its inputs already held the versions read" in capsys.readouterr().err


def test_overrides_clone_a_run_with_edited_parameters(pipe_project):
    notebook_run, _ = execute_once(pipe_project, lr="0.1")
    result = rerun(
        resolve_project(pipe_project), notebook_run.run_id[:6], overrides={"lr": 0.3, "depth": 5}
    )
    client = Client(resolve_project(pipe_project))
    assert _injected(client.get_run(result.run_id)) == {"lr": 0.3, "depth": 5}
    [child] = client.children(result.run_id)
    assert child.params["lr"] == 0.3 and child.param_sources["lr"] == "papermill"
    assert [m.key for m in result.verdict.metrics] == ["acc"]


def test_a_failing_rerun_records_the_cell_and_exception(pipe_project, capsys):
    notebook_run, _ = execute_once(pipe_project)
    assert main(["rerun", notebook_run.run_id, "-p", "data_file", "missing.csv"]) == 1
    out = capsys.readouterr().out
    assert "(failed: cell 4 (In [4]) `%%track train` raised FileNotFoundError" in out
    assert "train: finished -> failed" in out
    failed = Client(resolve_project(pipe_project)).list_runs()
    assert {r.status for r in failed.runs} == {"finished", "failed"}


def test_an_interactive_run_whose_code_differs_from_the_saved_notebook_replays_what_ran(
    pipe_project, kernel_factory
):
    kernel = kernel_factory(pipe_project, NBTRACK_NOTEBOOK=str(pipe_project / "pipe_train.ipynb"))
    kernel.ok(
        "import nbtrack\n%load_ext nbtrack\nlr, depth, seed, noise, crash = 0.1, 3, 0, False, False"
    )
    # An unsaved edit: the code that runs is not the code in the file.
    kernel.ok(
        '%%track train\ndata_file, out_file = "pipe_data.csv", "pipe_out.txt"\n'
        "acc = 0.5\nnbtrack.log_metric('acc', acc)"
    )
    # Closed as JupyterLab closes it: the facts gathered after the cell's reply (the
    # notebook snapshot among them) are spooled by the kernel's exit handler. A kernel
    # killed at once could lose them, and then nothing says whether the code matched.
    kernel.close()
    client = Client(resolve_project(pipe_project))
    [interactive] = client.list_runs().runs
    assert client.get_run(interactive.run_id).code_matches_notebook is False

    done = run_cli("rerun", "last", cwd=pipe_project)
    assert "mode: as-executed (the code that ran differs from the saved notebook" in done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    # Asked for the saved notebook, the rerun warns that it is not the code that ran.
    done = run_cli("rerun", interactive.run_id, "--as-saved", cwd=pipe_project)
    assert (
        "did not match the saved notebook (unsaved edits, or cells run out of order)" in done.stderr
    )
    assert "cannot promise the same code" in done.stderr
    assert done.returncode == 1
    assert "metric acc (train): 0.5 ->" in done.stdout


def test_unknown_runs_and_malformed_overrides_are_clear_errors(pipe_project, capsys):
    assert main(["rerun", "feedbeef"]) == 1
    assert "feedbeef" in capsys.readouterr().err
    with pytest.raises(RunNotFoundError):
        rerun(resolve_project(pipe_project), "feedbeef")
    assert main(["rerun", "last", "-p", "lr", "[0.1"]) == 2
    assert "malformed parameter value '[0.1'" in capsys.readouterr().err


def test_a_run_made_outside_a_notebook_cannot_be_rerun(pipe_project, capsys):
    writer = RunWriter.start(resolve_project(pipe_project), kind="cell", name="script")
    writer.finish("finished")
    writer.wait()
    assert main(["rerun", writer.run_id]) == 1
    assert "records no notebook path (was it made outside a notebook?)" in capsys.readouterr().err


def test_check_gates_the_rerun_and_then_decides_the_exit_code(pipe_project, capsys):
    notebook_run, _ = execute_once(pipe_project, lr="0.2")  # acc = 1 - lr / 18 + noise
    # a rerun with a worse parameter fails a gate on the delta against the original
    worse = ["rerun", notebook_run.run_id, "-p", "lr", "0.5", "--check", "delta(acc) >= -0.01"]
    assert main(worse) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("FAIL run ")
    assert "not delta(acc) >= -0.01 (acc=0.97" in out
    assert f"; against {notebook_run.run_id[:8]}: acc=0.98" in out
    # a better one passes, although it did not reproduce the original
    better = ["rerun", notebook_run.run_id, "-p", "lr", "0.1", "--check", "delta(acc) > 0"]
    assert main(better) == 0
    out = capsys.readouterr().out
    assert "not reproduced" in out and out.splitlines()[-1].startswith("PASS run ")
    # and a gate that does not parse stops before anything is executed
    runs_before = len(Client(resolve_project(pipe_project)).list_runs().runs)
    assert main(["rerun", notebook_run.run_id, "--check", "acc >="]) == 2
    assert "cannot parse" in capsys.readouterr().err
    assert len(Client(resolve_project(pipe_project)).list_runs().runs) == runs_before


def _age(folder: Path, seconds: float) -> None:
    """Make every file and folder under ``folder`` look last changed ``seconds`` ago."""
    import os
    import time

    then = time.time() - seconds
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (then, then), follow_symlinks=False)


def test_gc_reruns_removes_ended_rerun_copies_and_keeps_busy_ones(pipe_project):
    # Given: two re-runs (each executed in a scratch copy under .nbtrack/reruns/)...
    _, cell = execute_once(pipe_project, lr="0.2")
    for _ in range(2):
        done = run_cli("rerun", cell.run_id, cwd=pipe_project)
        assert done.returncode == 0, done.stdout + done.stderr
    reruns = pipe_project / ".nbtrack" / "reruns"
    old, new = sorted(reruns.iterdir(), key=lambda p: p.stat().st_mtime)
    # ... and a third whose re-run is still running, though its copy is old
    running = RunWriter.start(resolve_project(pipe_project), kind="notebook", name="pipe_train")
    busy = reruns / running.run_id
    (busy / "sub").mkdir(parents=True)
    (busy / "sub" / "out.txt").write_text("x" * 5000)
    _age(old, 1200)
    _age(busy, 1200)
    runs_before = Client(resolve_project(pipe_project)).list_runs().total

    # When: a plain gc; then --reruns --dry-run; then --reruns
    plain = run_cli("gc", cwd=pipe_project)
    dry = run_cli("gc", "--reruns", "--dry-run", cwd=pipe_project)
    assert old.is_dir()
    real = run_cli("gc", "--reruns", cwd=pipe_project)
    running.finish("finished")
    running.wait()

    # Then: a plain gc only says they are there; --reruns removes the ended, unchanged one
    assert plain.returncode == dry.returncode == real.returncode == 0, real.stderr
    assert "1 re-run scratch copy in .nbtrack/reruns/" in plain.stdout
    assert "`nbtrack gc --reruns` removes them" in plain.stdout
    assert f"would remove .nbtrack/reruns/{old.name}" in dry.stdout
    assert f"removed .nbtrack/reruns/{old.name}" in real.stdout
    assert "removed 1 re-run scratch copy" in real.stdout
    assert "kept 2 (re-running, or changed in the last 10 minutes)" in real.stdout
    assert not old.exists() and new.is_dir() and busy.is_dir()
    # ... and nothing else: the runs, the user's data and the re-run's record stay
    client = Client(resolve_project(pipe_project))
    assert client.list_runs().total == runs_before
    assert (pipe_project / "pipe_data.csv").read_text() == "1\n2\n3\n"
    assert client.get_run(old.name).status == "finished"
