"""A tracked cell that dies or fails still leaves an honest run behind.

Real kernels: one is killed with SIGKILL in the middle of a ``%%track`` cell
(nothing in the kernel gets to run any more), the next open of the store must
mark the run ``crashed`` and keep every metric point spooled before the kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import Kernel, run_cli
from nbtrack.client import Client
from nbtrack.models import Run, RunQuery
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
from waiting import wait_until

# Logs points until the kernel is killed; after each call returns it counts the call in
# a shared memory mapping (the count outlives the kernel), and says when it started.
ENDLESS_TRAINING = """%%track crashy
import itertools, mmap, os, random, time
from pathlib import Path
lr = 0.05
_count = memoryview(mmap.mmap(os.open("counter", os.O_RDWR), 8)).cast("q")
_rng = random.Random({seed})
for step in itertools.count():
    nbtrack.log_metric("loss", 1.0 / (step + 1), step=step)
    _count[0] = step + 1
    if step == 100:
        Path("logged-100").write_text("yes")
    if _rng.random() < 0.001:
        time.sleep(0.01)
"""
KILLS = 3  # random moments, seeded; more trials with plain processes in test_spool.py


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


@pytest.mark.parametrize("seed", range(KILLS))
def test_a_killed_kernel_leaves_a_crashed_run_with_every_logged_point(
    kernel: Kernel, project_dir: Path, seed: int
) -> None:
    # Given: a kernel in the middle of a tracked training loop
    pid = int(kernel.ok("import os; print(os.getpid())").text.strip())
    (project_dir / "counter").write_bytes(bytes(8))
    kernel.kc.execute(ENDLESS_TRAINING.format(seed=seed))
    wait_until(
        lambda: sorted(p.name for p in project_dir.iterdir()),
        lambda names: "logged-100" in names,
        timeout=60.0,
        what="the cell to log 100 points",
    )
    # Not a wait for an event: a random moment of the loop, for the kill to land on.
    time.sleep(random.Random(seed).random() * 1.5)

    # When: the kernel process is killed outright, at a random moment. It is left
    # unreaped (a zombie) on purpose: Jupyter notices a dead kernel only seconds later,
    # the run must not wait.
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _dead(pid), timeout=20.0, what=f"kernel process {pid} to die")
    returned = int.from_bytes((project_dir / "counter").read_bytes(), "little")

    # Then: the next open of the store (a user typing `nbtrack ls`) says it crashed, and why
    done = run_cli("ls", "--json", "--kind", "all", cwd=project_dir)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["runs"]
    assert [(r["name"], r["status"]) for r in listed] == [("crashy", "crashed")]
    # (not "this cell": a notebook run papermill's killed kernel held reads the same)
    said = f"the process recording this run (pid {pid}) died before the run finished"
    assert listed[0]["error"].startswith(said), listed[0]["error"]
    assert listed[0]["params"] == {"lr": 0.05}
    assert listed[0]["ended_at"] is not None
    assert listed[0]["ended_at"] >= listed[0]["started_at"]

    # ... and every point whose log_metric call had returned is there, in order, once
    client = Client(resolve_project(project_dir))
    series = client.metric_series(listed[0]["run_id"])["loss"]
    assert [p.step for p in series] == list(range(len(series)))
    assert len(series) >= returned > 100, f"{returned - len(series)} logged points lost"
    assert [p.value for p in series[:3]] == [1.0, 0.5, 1.0 / 3]
    metrics = client.get_run(listed[0]["run_id"]).metrics
    assert {k: v for k, v in metrics.items() if not k.startswith("system/")} == {
        "loss": series[-1].value
    }
    assert list(resolve_project(project_dir).spool_dir.iterdir()) == []


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


def test_a_bad_logging_call_fails_at_the_call_and_spoils_nothing(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a tracked cell that logs 100 good points, then makes bad calls it catches
    cell = """%%track careful
for i in range(100):
    nbtrack.log_metric("loss", i / 100)
nbtrack.log_param("lr", 0.1)
for bad in [
    lambda: nbtrack.log_metric("bad", 1.0, step=2**64),
    lambda: nbtrack.log_metric("bad", 1.0, step=1.5),
    lambda: nbtrack.log_metric("bad", "high"),
    lambda: nbtrack.log_metric("bad", [1.0]),
    lambda: nbtrack.log_metric("", 1.0),
    lambda: nbtrack.log_metric(3, 1.0),
    lambda: nbtrack.log_metrics({"ok": 1.0, None: 2.0}),
    lambda: nbtrack.log_param("", 1),
    lambda: nbtrack.log_params({7: 1}),
]:
    try:
        bad()
    except ValueError as exc:
        print("refused:", exc)
"""
    # When: it runs
    reply = kernel.ok(cell)

    # Then: each bad call was refused at the call, naming the bad value
    refused = [ln for ln in reply.text.splitlines() if ln.startswith("refused:")]
    assert len(refused) == 9, reply.text
    for needle in ("18446744073709551616", "1.5", "'high'", "[1.0]", "''", "3", "None", "7"):
        assert any(needle in ln for ln in refused), (needle, refused)
    # ... and the run is whole: finished, its 100 points, its parameter, sane times
    run = _stored_run(project_dir, "finished")
    assert run.name == "careful"
    assert run.params == {"lr": 0.1}
    assert run.ended_at is not None and run.ended_at >= run.started_at
    client = Client(resolve_project(project_dir))
    assert [p.step for p in client.metric_series(run.run_id)["loss"]] == list(range(100))
    assert {k for k in client.metric_series(run.run_id) if not k.startswith("system/")} == {"loss"}

    # When: the bad call is not caught, it fails the cell where it was made
    reply = kernel.run(
        "%%track careless\nfor i in range(100):\n    nbtrack.log_metric('loss', i / 100)\n"
        "nbtrack.log_metric('bad', 1.0, step=2**64)"
    )
    # Then: the user sees the ValueError (nbtrack's BadValueError) of their call; the run
    # keeps its good points and its times
    assert (reply.status, reply.ename) == ("error", "BadValueError"), reply.text
    assert "18446744073709551616" in (reply.evalue or "")
    failed = _stored_run(project_dir, "failed")
    assert failed.ended_at is not None and failed.ended_at >= failed.started_at
    assert len(client.metric_series(failed.run_id)["loss"]) == 100
    # ... and the next cell is an ordinary one
    assert kernel.run("print('next')").status == "ok"


@pytest.fixture
def small_disk(project_dir: Path) -> Iterator[Path]:
    """A real 24 MiB filesystem (tmpfs) as the project folder; unmounted afterwards."""
    folder = project_dir / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(bytes(1 << 16))
                fh.flush()
        except OSError:
            pass
    return filler


def _leftovers(folder: Path) -> list[str]:
    """Temporary or empty files nbtrack left in its folder (lock files may be empty)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file()
        and ("tmp" in p.name or p.stat().st_size == 0)
        and p.name not in ("runs.duckdb.lock", "ingestd.lock")
        and "cache" not in p.parts
    )


def test_a_full_disk_never_stops_the_users_code_and_loses_no_run(
    kernel_factory, small_disk: Path
) -> None:
    # Given: a kernel whose project folder is on a full disk, with no store yet
    kernel = kernel_factory(cwd=small_disk)
    kernel.ok("%load_ext nbtrack\nimport nbtrack")
    filler = _fill(small_disk)

    # When: tracked cells run, one returning a value, one raising
    ok = kernel.run("%%track full\nx = 21\nprint(x * 2)\nnbtrack.log_metric('m', 1.0)\nx * 2")
    bad = kernel.run("%%track full\nraise ValueError('mine')")

    # Then: the user's code ran, its output and its exception reach the user unchanged,
    # with one clear warning under each cell
    assert ok.status == "ok", ok.text
    assert "42\n" in [o["content"]["text"] for o in ok.outputs if o["msg_type"] == "stream"]
    assert [b["text/plain"] for b in ok.mimebundles() if "text/plain" in b][0] == "42"
    assert (bad.status, bad.ename, bad.evalue) == ("error", "ValueError", "mine")
    for reply in (ok, bad):
        warnings = [ln for ln in reply.text.splitlines() if "warning" in ln.lower()]
        assert len(warnings) == 1, reply.text
        assert "space" in warnings[0]
    # ... no half-made store and no temporary file
    db = small_disk / ".nbtrack" / "runs.duckdb"
    assert not db.exists() or db.stat().st_size > 0
    if (small_disk / ".nbtrack").exists():
        # (the writer retrying in the background holds a temporary spool for an instant
        # per try, removed when the disk refuses it: none may stay)
        wait_until(
            lambda: _leftovers(small_disk / ".nbtrack"), lambda left: left == [],
            timeout=10, interval=0.01, what="no temporary file left while the disk is full",
        )  # fmt: skip

    # When: space comes back, and nobody touches a file
    filler.unlink()

    # Then: both runs appear in the store, as they ended, and nothing is left over
    deadline = time.monotonic() + 60
    while True:
        done = run_cli("ls", "--json", cwd=small_disk)
        runs = json.loads(done.stdout)["runs"] if done.returncode == 0 else []
        if len(runs) == 2:
            break
        assert time.monotonic() < deadline, f"runs never appeared: {done.stdout} {done.stderr}"
        time.sleep(0.2)
    assert sorted(r["status"] for r in runs) == ["failed", "finished"]
    assert [
        {k: v for k, v in r["metrics"].items() if not k.startswith("system/")}
        for r in runs
        if r["status"] == "finished"
    ] == [{"m": 1.0}]
    deadline = time.monotonic() + 30
    while list((small_disk / ".nbtrack" / "spool").iterdir()):
        assert time.monotonic() < deadline, "spools were not removed"
        time.sleep(0.1)
    assert _leftovers(small_disk / ".nbtrack") == []


def test_a_run_ending_while_its_points_wait_in_memory_keeps_every_point(
    small_disk: Path,
) -> None:
    # Given: a run whose first window of points is on disk, then a disk with room for a
    # spool record but not for the point log's next window
    (small_disk / ".nbtrack").mkdir()
    w = RunWriter.start(resolve_project(small_disk), name="full")
    for step in range(2048):  # the first 64 KiB window
        w.log_metric("loss", 1.0, step=step)
    w.wait()
    gap = small_disk / "gap"
    gap.write_bytes(bytes(16 << 10))
    filler = _fill(small_disk)
    gap.unlink()
    # When: it logs more (kept in memory), ends, and space comes back before its writer
    # retries, so the store's next reader ingests first
    for step in range(2048, 3048):
        w.log_metric("loss", 2.0, step=step)
    w.finish()
    filler.unlink()
    client = Client(resolve_project(small_disk))
    early = client.get_run(w.run_id)
    # Then: that reader did not take the points on disk for all of them (it stored the
    # run finished with 2048 points and removed its spool: 1000 points were lost)
    assert early.status == "running"
    w.wait()
    run = client.get_run(w.run_id)
    assert run.status == "finished"
    assert len(client.metric_series(w.run_id)["loss"]) == 3048


def test_a_reader_on_a_full_disk_says_so_in_one_line_and_loses_nothing(
    small_disk: Path,
) -> None:
    # Given: a store with a run spooled, not yet in it, and a full disk
    (small_disk / ".nbtrack").mkdir()
    project = resolve_project(small_disk)
    Client(project).list_runs(RunQuery())  # the store exists
    w = RunWriter.start(project, name="waiting", params={"blob": "x" * 20000})
    for step in range(20000):
        w.log_metric("loss", 1.0, step=step)
    w.finish()
    gap = small_disk / "gap"  # room for the write-ahead log, not for the checkpoint
    gap.write_bytes(bytes(1500 << 10))
    filler = _fill(small_disk)
    gap.unlink()
    # When: a user lists the runs, which brings the spooled run in first
    done = run_cli("ls", cwd=small_disk)
    # Then: one line saying what to do (a DuckDB IOException traceback from the detach's
    # checkpoint), and once space is back the run is there with all its points
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no space left" in done.stderr and "free some space" in done.stderr
    filler.unlink()
    client = Client(project)
    assert client.get_run(w.run_id).status == "finished"
    assert len(client.metric_series(w.run_id)["loss"]) == 20000


@pytest.fixture
def read_only_store(project_dir: Path) -> Iterator[Path]:
    """A project whose ``.nbtrack/`` (a store in it) is a read-only mount, as a shared
    or archived project is; made writable again by calling the yielded function."""
    folder = project_dir / ".nbtrack"
    folder.mkdir()
    Client(resolve_project(project_dir)).list_runs(RunQuery())
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_store_is_named_as_such_and_the_cell_warns_once(
    kernel, read_only_store: Path, project_dir: Path
) -> None:
    # When: a tracked cell runs and a user lists the runs
    reply = kernel.run("%%track ro\nx = 21\nnbtrack.log_metric('m', 1.0)\nx * 2")
    listed = run_cli("ls", cwd=project_dir)
    # Then: the cell's result as untracked, one warning that says why (three before,
    # one calling a read-only disk "no space left", one the store "damaged")
    assert reply.status == "ok" and "42" in [b.get("text/plain") for b in reply.mimebundles()]
    warnings = [ln for ln in reply.text.splitlines() if "warning" in ln.lower()]
    assert len(warnings) == 1 and "Read-only file system" in warnings[0], reply.text
    assert "damaged" not in reply.text and "no space" not in reply.text, reply.text
    # ... and the command line says it in one line, with what to do
    assert listed.returncode == 1 and len(listed.stderr.strip().splitlines()) == 1
    assert "read-only file system" in listed.stderr and "damaged" not in listed.stderr
    # When: the folder is writable again, the run is stored
    subprocess.run(["umount", "-l", str(read_only_store)], check=True)
    wait_until(
        lambda: run_cli("ls", "--json", cwd=project_dir),
        lambda done: done.returncode == 0 and len(json.loads(done.stdout)["runs"]) == 1,
        what="the run kept in memory to be stored",
    )


def test_sql_write_on_a_full_disk_changes_nothing_and_leaves_no_half_backup(
    small_disk: Path,
) -> None:
    # Given: a store with a run, on a disk with no room for its backup
    (small_disk / ".nbtrack").mkdir()
    project = resolve_project(small_disk)
    w = RunWriter.start(project, name="kept")
    w.finish()
    w.wait()
    filler = _fill(small_disk)
    # When: a user writes with nbtrack sql --write, which backs the store up first
    done = run_cli("sql", "--write", "UPDATE runs SET name = 'changed'", cwd=small_disk)
    # Then: one line saying what to do, no half-made backup (an OSError traceback, and
    # a partial runs.duckdb.sql-*.bak beside the store), and the store unchanged
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "no space left" in done.stderr.lower() and "nothing was changed" in done.stderr
    assert sorted(p.name for p in (small_disk / ".nbtrack").glob("*.bak*")) == []
    filler.unlink()
    assert Client(project).get_run(w.run_id).name == "kept"


def test_a_kernel_out_of_file_descriptors_is_told_so_not_that_the_disk_is_full(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a tracking kernel that then reaches its limit of open files
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack")
    kernel.ok("%%track first\nx = 0")
    kernel.ok(
        "import resource\n_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (3, _hard))  # no descriptor free below 3"
    )

    # When: a tracked cell runs
    reply = kernel.run("%%track starved\nx = 21\nx * 2")

    # Then: the cell ran as written, and its one warning names the cause and the remedy
    assert reply.status == "ok", reply.text
    assert [b["text/plain"] for b in reply.mimebundles() if "text/plain" in b][0] == "42"
    warnings = [ln for ln in reply.text.splitlines() if "warning" in ln.lower()]
    assert len(warnings) == 1, reply.text
    assert "too many files open" in warnings[0] and "ulimit -n" in warnings[0], warnings[0]
    assert "disk" not in warnings[0] and "space" not in warnings[0], warnings[0]
    # (a passing shortage: the kernel keeps handing its runs to the ingestion process)
    assert "ingesting in the kernel instead" not in reply.text, reply.text

    # When: the limit is raised again; Then: the run is stored, nobody touching a file
    kernel.ok("resource.setrlimit(resource.RLIMIT_NOFILE, (_soft, _hard))")
    wait_until(
        lambda: json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"],
        lambda runs: "starved" in {r["name"] for r in runs},
        timeout=30, interval=0.2, what="the starved cell's run in the store",
    )  # fmt: skip
    assert kernel.ok("import sys\nprint('duckdb' in sys.modules)").text.strip() == "False"
