"""Re-run anything: runs made by plain papermill, by nbclient (``jupyter execute``) and by
an interactive session run out of order re-run to *reproduced*, in a scratch copy that
leaves the workspace byte-identical, in the kernel they were made in.

Real kernels, the real ``papermill`` and ``jupyter execute`` commands, a real second
kernelspec installed with ``ipykernel install --prefix``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import VENV_BIN, kernel_env, run_cli
from nbtrack.client import Client
from nbtrack.models import Run
from nbtrack.project import resolve_project
from waiting import wait_until


def tree_digest(root: Path) -> dict[str, str]:
    """Every file of the workspace (the store folder aside) and the hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".nbtrack" or not path.is_file():
            continue
        out[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def other_kernel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A second kernelspec, ``other-py``, visible through JUPYTER_PATH."""
    prefix = tmp_path_factory.mktemp("kernels")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(prefix),
            "--name",
            "other-py",
        ],
        check=True,
        capture_output=True,
    )
    return kernel_env(JUPYTER_PATH=str(prefix / "share" / "jupyter"))


def papermill(folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
    """The ``papermill`` command as a user (or a cron job) types it, in ``folder``."""
    done = subprocess.run(
        [f"{VENV_BIN}/papermill", *args],
        cwd=folder,
        env=env or kernel_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def papermill_script(
    folder: Path, nb: str, out: str | None, env: dict[str, str], **params: float
) -> None:
    """papermill called from a Python script (a scheduler's job); with no output notebook
    (``out`` None) the kernel cannot tell which notebook it runs (its parent's command
    line names the script, and no output names its input)."""
    call = f"execute_notebook({nb!r}, {out!r}, parameters={params!r})"
    code = f"from papermill import execute_notebook; {call}"
    done = subprocess.run(
        [f"{VENV_BIN}/python", "-c", code], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def only_cell(project_dir: Path) -> Run:
    client = Client(resolve_project(project_dir))
    [cell] = client.list_runs().runs
    return client.get_run(cell.run_id)


def rerun_ok(project_dir: Path, ref: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = run_cli("rerun", ref, *args, cwd=project_dir, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_a_scripted_papermill_run_in_another_kernel_reruns_to_reproduced_leaving_files_as_is(
    pipe_project, other_kernel
):
    # given a run made by papermill from a script, in the notebook's kernel other-py
    nb = nbformat.read(pipe_project / "pipe_train.ipynb", as_version=4)
    nb.metadata["kernelspec"] = {"name": "other-py", "display_name": "other", "language": "python"}
    nbformat.write(nb, pipe_project / "pipe_train.ipynb")
    papermill_script(pipe_project, "pipe_train.ipynb", None, other_kernel, lr=0.2)
    original = only_cell(pipe_project)
    assert original.kernel_name == "other-py"
    assert original.notebook_path is None  # papermill told the kernel nothing, wrote nothing
    before = tree_digest(pipe_project)

    # when it is re-run with nothing but its id
    text = rerun_ok(pipe_project, original.run_id[:8], env=other_kernel)

    # then the code as executed ran, in other-py, in a scratch copy, and reproduced
    assert "mode: as-executed (no saved notebook was recorded" in text
    assert "kernel: other-py (the kernel the run was made in)" in text
    assert "reproduced: 1 cell run(s), 1 metric(s)" in text
    assert "1 output(s) with the same hash" in text
    assert tree_digest(pipe_project) == before
    scratch = next(ln for ln in text.splitlines() if ln.startswith("workspace: "))
    kept = pipe_project / scratch.removeprefix("workspace: ")
    assert (kept / "pipe_out.txt").read_text() == (pipe_project / "pipe_out.txt").read_text()
    client = Client(resolve_project(pipe_project))
    [again] = [r for r in client.list_runs().runs if r.run_id != original.run_id]
    assert (again.rerun_of, again.rerun_verdict) == (original.run_id, "reproduced")
    assert client.get_run(again.run_id).kernel_name == "other-py"
    shown = run_cli("show", again.run_id, cwd=pipe_project, env=other_kernel).stdout
    assert "rerun verdict" in shown and "reproduced" in shown and "other-py" in shown
    assert [o.hash for o in client.get_run(again.run_id).outputs] == [
        o.hash for o in original.outputs
    ]

    # and a kernel that is not installed is named, with the ones that are
    done = run_cli("rerun", original.run_id, "--kernel", "nope", cwd=pipe_project, env=other_kernel)
    assert done.returncode == 2
    assert "no kernel named 'nope' here; available: " in done.stderr
    assert "other-py" in done.stderr and "python3" in done.stderr


def test_a_jupyter_execute_run_reruns_to_reproduced(pipe_project):
    # given the notebook executed by nbclient, with no parameters injected: the kernel
    # reads the notebook from jupyter execute's command line
    done = subprocess.run(
        [f"{VENV_BIN}/jupyter-execute", "pipe_train.ipynb"],
        cwd=pipe_project,
        env=kernel_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    original = only_cell(pipe_project)
    assert original.notebook_path == "pipe_train.ipynb"
    before = tree_digest(pipe_project)
    # when it is re-run, then it reproduces from the saved notebook, the workspace as it was
    text = rerun_ok(pipe_project, "last")
    assert "mode: as-saved (the saved notebook holds exactly the code that ran" in text
    assert "reproduced: 1 cell run(s), 1 metric(s)" in text
    assert tree_digest(pipe_project) == before
    again = [r for r in Client(resolve_project(pipe_project)).list_runs().runs if r.rerun_of]
    assert [r.rerun_of for r in again] == [original.run_id]
    # nbtrack.runs() shows the link and the verdict, as the panel's table does
    import nbtrack

    table = nbtrack.runs()
    linked = table[table["run_id"] == again[0].run_id]
    assert linked[["rerun_of", "rerun_verdict"]].values.tolist() == [
        [original.run_id, "reproduced"]
    ]


OUT_OF_ORDER = [
    ("c1", "import nbtrack\n%load_ext nbtrack\nscale = 1"),
    ("c2", '%%track combine\nvalue = scale * 10\nnbtrack.log_metric("value", value)\n'
     'with open("combined.txt", "w") as fh:\n    fh.write(str(value))'),
    ("c3", "scale = 5"),
    ("c4", "scale = scale_typo"),
]  # fmt: skip


def test_an_interactive_session_run_out_of_order_reruns_what_ran_not_the_saved_order(
    project_dir, kernel_factory
):
    # given a saved notebook whose cells ran 1, 3, 4 (which raised: a typo), 2 in a kernel
    # (JupyterLab's cell ids)
    (project_dir / ".nbtrack").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src, id=cid) for cid, src in OUT_OF_ORDER]
    path = project_dir / "order.ipynb"
    nbformat.write(nb, path)
    kernel = kernel_factory(project_dir, JPY_SESSION_NAME=str(path))
    for cid in ("c1", "c3", "c4", "c2"):
        kernel.run(dict(OUT_OF_ORDER)[cid], cell_id=cid)
    # the session code is recorded in the background, beside the notebook snapshot
    wait_until(
        lambda: [r.code_hash for r in Client(resolve_project(project_dir)).list_runs().runs],
        lambda hashes: bool(hashes) and all(hashes),
        what="the run's session code in the store",
    )
    kernel.shutdown()
    original = only_cell(project_dir)
    assert original.metrics["value"] == 50.0 and original.code_matches_notebook is True
    before = tree_digest(project_dir)

    # when it is re-run, the session's code replays in the order it ran, past the typo
    text = rerun_ok(project_dir, original.run_id)
    assert "mode: as-executed (the code that ran differs from the saved notebook" in text
    assert "reproduced: 1 cell run(s), 1 metric(s)" in text and "1 output(s)" in text
    assert tree_digest(project_dir) == before

    # while the saved notebook, top to bottom, gives another number (and stops at the typo)
    done = run_cli("rerun", original.run_id, "--as-saved", "--json", cwd=project_dir)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["mode"] == "as-saved" and result["rerun_verdict"] == "failed"
    assert "NameError" in result["error"]
    assert [(m["before"], m["after"]) for m in result["verdict"]["metrics"]] == [(50.0, 10.0)]


def test_inputs_in_neither_the_workspace_nor_the_cache_are_named_then_fetched_from_a_remote(
    pipe_project, tmp_path_factory
):
    # given a run pushed to a remote, whose input was since edited and pruned from the cache
    papermill(pipe_project, "pipe_train.ipynb", "out.ipynb")
    original = only_cell(pipe_project)
    remote = str(tmp_path_factory.mktemp("remote"))
    assert run_cli("push", remote, cwd=pipe_project).returncode == 0
    [data] = original.inputs
    client = Client(resolve_project(pipe_project))
    client.cache.path_for(data.hash).unlink()
    (pipe_project / "pipe_data.csv").write_text("7\n")

    # when it is re-run, then the error names the file and how to get it back
    done = run_cli("rerun", original.run_id, cwd=pipe_project)
    assert done.returncode == 1
    assert "pipe_data.csv" in done.stderr and "`nbtrack pull`" in done.stderr
    assert list((pipe_project / ".nbtrack").glob("reruns/*")) == []  # nothing half-made

    # and given the remote, the input comes from there and the run reproduces
    text = rerun_ok(pipe_project, original.run_id, "--remote", remote)
    assert "1 input(s) restored from the cache" in text
    assert "reproduced: 1 cell run(s)" in text
    assert (pipe_project / "pipe_data.csv").read_text() == "7\n"
