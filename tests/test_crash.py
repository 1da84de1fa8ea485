"""A tracked cell that dies or fails still leaves an honest run behind.

Real kernels: one is killed with SIGKILL in the middle of a ``%%track`` cell
(nothing in the kernel gets to run any more), the next open of the store must
mark the run ``crashed`` and keep every metric point spooled before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil

from conftest import Kernel, run_cli
from nbtrack.client import Client
from nbtrack.models import Run, RunQuery
from nbtrack.project import resolve_project
from waiting import wait_until

# Logs one point every ~5 ms until the kernel is killed; says when 100 are logged.
ENDLESS_TRAINING = """%%track crashy
import itertools, time
from pathlib import Path
lr = 0.05
for step in itertools.count():
    nbtrack.log_metric("loss", 1.0 / (step + 1), step=step)
    if step == 100:
        Path("logged-100").write_text("yes")
    time.sleep(0.005)
"""

# The guarantee: a point logged this long before the kill is durable (the
# ingestor spools the in-memory buffer every second).
DURABLE_AFTER = 2.0


def _dead(pid: int) -> bool:
    """True once ``pid`` exited (a zombie counts: nothing in it runs any more)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stored_run(project_dir: Path, status: str, timeout: float = 15.0) -> Run:
    """The one run with ``status``, once the kernel's background thread stored it."""
    runs = wait_until(
        lambda: Client(resolve_project(project_dir)).list_runs(RunQuery(status=status)).runs,
        timeout=timeout,
        what=f"a {status} run in the store",
    )
    assert len(runs) == 1, runs
    return runs[0]


def test_a_killed_kernel_leaves_a_crashed_run_with_its_spooled_metrics(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a kernel in the middle of a tracked training loop
    pid = int(kernel.ok("import os; print(os.getpid())").text.strip())
    kernel.kc.execute(ENDLESS_TRAINING)
    wait_until(
        lambda: sorted(p.name for p in project_dir.iterdir()),
        lambda names: "logged-100" in names,
        timeout=60.0,
        what="the cell to log 100 points",
    )
    # Not a wait for an event: the loop keeps logging past the durability window, so
    # the points logged DURABLE_AFTER before the kill are ones the guarantee covers.
    time.sleep(DURABLE_AFTER + 1.0)

    # When: the kernel process is killed outright. It is left unreaped (a zombie) on
    # purpose: Jupyter notices a dead kernel only seconds later, the run must not wait.
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _dead(pid), timeout=20.0, what=f"kernel process {pid} to die")

    # Then: the next open of the store (a user typing `nbtrack ls`) says it crashed, and why
    done = run_cli("ls", "--json", "--kind", "all", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["runs"]
    assert [(r["name"], r["status"]) for r in listed] == [("crashy", "crashed")]
    assert f"pid {pid}" in listed[0]["error"]
    assert "died" in listed[0]["error"]
    assert listed[0]["params"] == {"lr": 0.05}
    assert listed[0]["ended_at"] is not None

    # ... and every point logged well before the kill is there, in order, without gaps
    client = Client(resolve_project(project_dir))
    series = client.metric_series(listed[0]["run_id"])["loss"]
    assert [p.step for p in series] == list(range(len(series)))
    assert len(series) > 100
    assert series[-1].ts >= killed_at - DURABLE_AFTER, (
        f"the last stored point was logged {killed_at - series[-1].ts:.2f} s before the kill"
    )
    assert [p.value for p in series[:3]] == [1.0, 0.5, 1.0 / 3]
    metrics = client.get_run(listed[0]["run_id"]).metrics
    assert {k: v for k, v in metrics.items() if not k.startswith("system/")} == {
        "loss": series[-1].value
    }
    assert list(resolve_project(project_dir).spool_dir.glob("*.spool")) == []


def test_a_failing_cell_is_recorded_failed_and_the_error_still_reaches_the_user(
    kernel: Kernel, project_dir: Path
) -> None:
    # When: a tracked cell raises
    reply = kernel.run("%%track broken\nx = 3\nraise ValueError('boom 42')")

    # Then: the notebook shows the exception as usual...
    assert (reply.status, reply.ename, reply.evalue) == ("error", "ValueError", "boom 42")
    assert "boom 42" in reply.text
    # ... and the run is stored as failed, with the error and what it had recorded
    run = _stored_run(project_dir, "failed")
    assert run.name == "broken"
    assert run.error is not None and "ValueError: boom 42" in run.error
    assert run.params == {"x": 3}
    assert run.ended_at is not None

    # And the kernel goes on: the next tracked cell is a normal finished run
    kernel.ok("%%track fine\ny = 4")
    assert _stored_run(project_dir, "finished").params == {"y": 4}
