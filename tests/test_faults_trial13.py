"""Faults of the thirteenth trial: nothing lost, nothing stalls.

Each test makes the fault for real (a SIGINT to a command running a query, ...) and
then asks what a user would ask: did the command stop, in one line, and is every run
still there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from conftest import kernel_env, run_cli
from factory import record_run
from waiting import wait_until

ENDLESS = "SELECT sum(a.range) FROM range(1000000000000) a"  # hours of work


def _ls_names(project_dir: Path) -> list[str]:
    out = run_cli("ls", "--json", cwd=project_dir)
    assert out.returncode == 0, out.stderr
    return sorted(r["name"] for r in json.loads(out.stdout)["runs"])


def test_ctrl_c_stops_a_query_that_never_ends_and_the_store_stays_usable(
    project_dir: Path,
) -> None:
    # Given: a store with a run, and `nbtrack sql` busy with a query that runs for hours
    # (Ctrl-C at a terminal is a SIGINT whose handler is Python's default)
    record_run(project_dir, "kept", metrics={"acc": 0.9})
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "sql", ENDLESS],
        cwd=project_dir,
        env=kernel_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        restore_signals=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    cpu = psutil.Process(proc.pid)
    try:
        # the query is running: the process's threads spend far more CPU than its start
        wait_until(
            lambda: sum(cpu.cpu_times()[:2]),
            lambda spent: spent > 4.0,
            timeout=60,
            what="the query spending CPU",
        )

        # When: the user presses Ctrl-C
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError("nbtrack sql still ran 15 s after Ctrl-C") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Then: it stops at once with one line (before: DuckDB never looked at the signal,
    # the query went on holding the store until killed, and every other command waited
    # 60 s to hear "busy"), and the store answers the next command
    assert time.monotonic() - sent < 15
    assert proc.returncode == 130, err
    assert err.strip() == "nbtrack: interrupted", err
    assert _ls_names(project_dir) == ["kept"]


def test_checkout_brings_back_a_file_whose_name_is_not_utf8(project_dir: Path) -> None:
    # Given: a run that wrote a file whose name holds bytes that are not UTF-8 (a cell
    # may make any name: `open(b"bad\xff.csv", "wb")`), recorded by its escape
    raw = b"bad\xff\xfe.csv"
    real = project_dir / os.fsdecode(raw)
    real.write_bytes(b"x,y\n1,2\n")
    run_id = record_run(project_dir, "odd", outputs=[real])
    shown = json.loads(run_cli("show", run_id, "--json", cwd=project_dir).stdout)
    assert [d["path"] for d in shown["data"]] == ["bad\\xff\\xfe.csv"]

    # When: the file is changed; checkout names it as changed, and --force brings it back
    real.write_bytes(b"changed\n")
    kept = run_cli("checkout", run_id, cwd=project_dir)
    assert kept.returncode == 1 and "1 modified" in kept.stdout, kept.stdout
    assert real.read_bytes() == b"changed\n"
    out = run_cli("checkout", run_id, "--force", cwd=project_dir)

    # Then: that very file has its recorded bytes back, and no other file was made
    # (before: checkout wrote a new file named `bad\xff\xfe.csv` in backslashes and
    # hex and said "restored", while the real file kept the changed bytes)
    assert out.returncode == 0, out.stderr
    assert real.read_bytes() == b"x,y\n1,2\n"
    assert sorted(os.listdir(os.fsencode(project_dir))) == [b".nbtrack", raw]
    again = run_cli("checkout", run_id, cwd=project_dir)
    assert "1 unchanged" in again.stdout, again.stdout


def test_a_file_where_the_spool_folder_belongs_is_named_and_repaired_and_no_run_is_lost(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a file where `.nbtrack/spool` belongs (a sync tool's conflict copy, a
    # careless `mv`), and a kernel tracking a cell
    (project_dir / ".nbtrack").mkdir()
    spool_dir = project_dir / ".nbtrack" / "spool"
    spool_dir.write_text("not a folder\n")
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack\nimport nbtrack")

    # When: the cell runs
    reply = kernel.ok('%%track kept\nnbtrack.log_metric("acc", 0.5)')

    # Then: the cell names the file and the fix (before: "this run cannot be written
    # yet (Not a directory)", and `doctor` said "no orphans", exit 0)
    assert f"{spool_dir} is a file where nbtrack needs a folder" in reply.text, reply.text
    doctor = run_cli("doctor", cwd=project_dir)
    assert doctor.returncode == 1
    assert f"{spool_dir} is not a folder" in doctor.stdout, doctor.stdout

    # When: the user repairs; Then: the file is set aside, kept, and the kernel's run,
    # held in memory, reaches the store whole
    repaired = run_cli("doctor", "--repair", cwd=project_dir)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert spool_dir.is_dir()
    [aside] = (project_dir / ".nbtrack").glob("spool.not-a-folder-*")
    assert aside.read_text() == "not a folder\n"
    runs = wait_until(
        lambda: json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"],
        lambda runs: len(runs) == 1,
        timeout=30,
        what="the kernel's run in the store",
    )
    assert runs[0]["name"] == "kept" and runs[0]["status"] == "finished"
    assert runs[0]["metrics"]["acc"] == 0.5


def test_a_sweep_whose_runs_cannot_be_written_says_why_instead_of_waiting_for_ever(
    pipe_project: Path,
) -> None:
    # Given: a file where `.nbtrack/spool` belongs, so no run can be spooled
    spool_dir = pipe_project / ".nbtrack" / "spool"
    spool_dir.write_text("not a folder\n")

    # When: the user sweeps a notebook (the store's patience shortened to 5 s)
    started = time.monotonic()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "nbtrack", "sweep", "pipe_train.ipynb", "-p", "lr", "0.1"],
            cwd=pipe_project,
            env=kernel_env(NBTRACK_LOCK_TIMEOUT="5"),
            capture_output=True,
            text=True,
            timeout=150,
        )
    except subprocess.TimeoutExpired:
        # before: the notebook ran, then the command waited for ever on its notebook
        # run, kept in memory, without a word
        raise AssertionError("nbtrack sweep still waited 150 s after it started") from None

    # Then: it ends with one line naming the run, the file and the fix
    assert time.monotonic() - started < 150
    assert out.returncode == 1, out.stderr
    [line] = [x for x in out.stderr.splitlines() if x.startswith("nbtrack: error:")]
    assert "could not be written for 5 s and is not in the store" in line, line
    assert f"{spool_dir} is a file where nbtrack needs a folder" in line, line


def test_a_file_size_limit_is_named_as_such_not_as_a_full_disk(kernel, project_dir: Path) -> None:
    # Given: a kernel whose files may not grow past 1 MB (`ulimit -f 1024` in the shell
    # that started Jupyter; set here from inside the kernel, the same limit)
    kernel.ok(
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE,"
        " (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))"
    )

    # When: a tracked cell logs more points than such a file holds
    reply = kernel.ok(
        "%%track many\nfor i in range(100_000):\n    nbtrack.log_metric('loss', i * 0.5, step=i)"
    )

    # Then: the cell names the limit and the way out (before: "the disk cannot take
    # this run (File too large)" on a disk with room to spare, and the run "stored as
    # soon as it can be", which this process never can)
    assert "this process may not write a file over 1,048,576 bytes (`ulimit -f`" in reply.text
    assert "the disk cannot take" not in reply.text, reply.text


def test_a_table_dropped_with_sql_write_is_named_with_the_backup_to_go_back_to(
    project_dir: Path,
) -> None:
    # Given: a run, then a careless `nbtrack sql --write` that drops the runs table
    record_run(project_dir, "kept")
    dropped = run_cli("sql", "--write", "DROP TABLE runs CASCADE", cwd=project_dir)
    assert dropped.returncode == 0, dropped.stderr
    [backup] = (project_dir / ".nbtrack").glob("runs.duckdb.sql-*.bak")

    # When: the user lists the runs, and asks the doctor
    ls = run_cli("ls", cwd=project_dir)
    doctor = run_cli("doctor", cwd=project_dir)

    # Then: both say the table is gone and name the backup (before: "Catalog Error: Table
    # with name runs does not exist!" from every command, and `doctor` called the store
    # file "ok")
    db = project_dir / ".nbtrack" / "runs.duckdb"
    said = f"the store {db} has no table runs"
    assert ls.returncode == 1 and said in ls.stderr and backup.name in ls.stderr, ls.stderr
    assert doctor.returncode == 1, doctor.stdout
    [line] = [x for x in doctor.stdout.splitlines() if x.startswith("store")]
    assert "problem" in line and said in line and backup.name in line, line

    # When: the user does what it says; Then: the run is back
    shutil.copyfile(backup, db)
    assert _ls_names(project_dir) == ["kept"]


# A forked child that outlives its cell (a background worker, a Pool not joined) and
# logs once the run is stored: it waits until the run's spool is gone, then logs.
OUTLIVING_CHILD = """%%track parent
import glob, os, time
nbtrack.log_metric("p", 1.0)
if os.fork() == 0:
    deadline = time.monotonic() + 60
    while glob.glob(".nbtrack/spool/*.spool") and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        nbtrack.log_metric("late", 2.0)
        said = "returned"
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
    with open("child.said.tmp", "w") as fh:
        fh.write(said)
    os.rename("child.said.tmp", "child.said")
    os._exit(0)
"""


def test_a_forked_child_logging_after_its_run_is_stored_is_told_so(
    kernel, project_dir: Path
) -> None:
    # Given/When: a tracked cell forks a child that logs after the run is stored
    kernel.ok(OUTLIVING_CHILD)
    report = project_dir / "child.said"
    wait_until(report.exists, timeout=90, what="the child's report")
    said = report.read_text()

    # Then: the child's call raises, as the parent's would after its cell (before: it
    # returned and the point went to the removed spool of the stored run: lost)
    assert said.startswith("NoActiveRunError: run "), said
    assert "outlived its cell, so the point was not recorded" in said
    out = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"]
    assert [(r["name"], r["status"], r["metrics"]["p"]) for r in out] == [
        ("parent", "finished", 1.0)
    ]
