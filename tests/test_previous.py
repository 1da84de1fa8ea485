"""The summary compares a cell's run with the previous run of that cell (previous.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from factory import record_run
from nbtrack import previous
from nbtrack.client import Client
from nbtrack.previous import cell_key
from nbtrack.project import resolve_project


def _stored(project_dir, n: int) -> list[str]:
    client = Client(resolve_project(project_dir))
    deadline = time.monotonic() + 30
    ids: list[str] = []
    while time.monotonic() < deadline:
        if client.project.db_path.exists():
            _, rows = client.sql("SELECT run_id FROM runs WHERE status <> 'running'")
            ids = [r[0] for r in rows]
            if len(ids) >= n:
                return ids
        time.sleep(0.1)
    raise AssertionError(f"expected {n} finished runs, saw {ids}")


def test_a_new_kernel_compares_each_cell_with_its_run_in_an_earlier_kernel(
    kernel_factory, project_dir
):
    # Given a named cell and an unnamed one, run in a kernel that is then shut down
    first = kernel_factory()
    first.ok("%load_ext nbtrack")
    first.ok("%%track train\nlr = 0.1")
    first.ok("%%track\nbatch = 32")
    old = _stored(project_dir, 2)
    first.shutdown()

    # When a new kernel runs the same cells with other values
    second = kernel_factory()
    second.ok("%load_ext nbtrack")
    named = second.ok("%%track train\nlr = 0.2")
    same_code = second.ok("%%track\nbatch = 32")
    other = second.ok("%%track\nbatch = 64")

    # Then each summary names the earlier kernel's run of that cell and what changed
    prev = {i[:8] for i in old}
    assert "param lr: 0.1 → 0.2" in named.text
    assert any(f"since {p}" in named.text for p in prev)
    assert any(f"same as the previous run {p}" in same_code.text for p in prev)
    assert "first run of this cell" in other.text  # new code, no name: a new cell


def test_a_kernels_own_run_is_never_the_previous_run_of_its_cell(project_dir):
    """Seen under load (two cores, load 3): a new kernel's first run of a cell, stored
    before the background read of the previous runs, said "same as the previous run
    <its own id>". The runs of this kernel's session are not its cells' previous runs."""
    older = record_run(project_dir, "train", source="lr = 0.1", session_id="earlier")
    own = record_run(project_dir, "train", source="lr = 0.2", session_id="this")
    session = SimpleNamespace(notebook_path=lambda: None, session_id="this")
    found = previous.for_notebook(resolve_project(project_dir), session)
    run = found.find(cell_key(None, "train", "lr = 0.2"), [])
    assert run is not None and run.run_id == older != own


def test_the_kernel_compares_with_previous_runs_without_loading_duckdb(kernel_factory, project_dir):
    """The previous runs are read by a child process: DuckDB (~0.2 s of CPU to import and
    attach, ~60 MB) stays out of a kernel that only tracks, and out of its setup cell."""
    older = record_run(project_dir, "train", source="lr = 0.1", session_id="earlier")
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack")
    summary = kernel.ok("%%track train\nlr = 0.2")
    assert f"since {older[:8]}:" in summary.text and "code changed" in summary.text
    assert kernel.ok("import sys\nprint('duckdb' in sys.modules)").text.strip() == "False"


def test_the_kernel_reads_the_previous_runs_itself_when_no_child_can_answer(
    project_dir, monkeypatch
):
    older = record_run(project_dir, "train", source="lr = 0.1", session_id="earlier")
    previous._loaded.clear()
    for executable in ("/bin/true", str(project_dir / "no-such-python")):
        monkeypatch.setattr(previous.sys, "executable", executable)
        session = SimpleNamespace(notebook_path=lambda: None, session_id="this")
        found = previous.for_notebook(resolve_project(project_dir), session)
        run = found.find(cell_key(None, "train", "lr = 0.2"), [])
        assert run is not None and run.run_id == older
        previous._loaded.clear()
