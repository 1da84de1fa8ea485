"""Faults of the eleventh trial: commands racing each other, odd folders, stopped processes.

Each test makes the fault for real (a process stopped with SIGSTOP in the middle of its
work, a folder that is a symbolic link to itself) and then asks what a user would ask:
does `checkout` bring the bytes back, does the command say what is wrong in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import Kernel, ingestion_processes, kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.hashing import hash_file
from nbtrack.project import resolve_project
from waiting import wait_until


def _nbtrack(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=kernel_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _bundle_of_two_files(tmp_path: Path) -> tuple[Path, str, Path, Path]:
    """A bundle of one run that read a small file and a large one, the small one's blob
    first in the bundle (so an import finds it before it copies the large one)."""
    origin = tmp_path / "origin"
    (origin / ".nbtrack").mkdir(parents=True)
    big = origin / "big.bin"
    big.write_bytes(os.urandom(64 << 20))
    small = origin / "small.csv"
    for n in range(100):
        small.write_text(f"a,b\n{n},2\n" * 500)
        if hash_file(small) < hash_file(big):
            break
    run_id = record_run(origin, "reads-two", inputs=[small, big])
    bundle = tmp_path / "bundle.zip"
    assert run_cli("export", run_id, "-o", str(bundle), cwd=origin).returncode == 0
    return bundle, run_id, small, big


def test_gc_while_an_import_runs_keeps_every_blob_the_imported_run_needs(tmp_path: Path) -> None:
    # Given: a bundle, and a project whose cache already holds the bundle's small file
    # as an hour-old orphan (no run names it: a cell killed before its run was stored)
    bundle, run_id, small, big = _bundle_of_two_files(tmp_path)
    here = tmp_path / "here"
    (here / ".nbtrack").mkdir(parents=True)
    record_run(here, "scratch")  # the store exists
    cache = Client(resolve_project(here)).cache
    digest = cache.put_bytes(small.read_bytes())
    old = time.time() - 3600
    os.utime(cache.path_for(digest), (old, old))

    # When: `nbtrack import` is stopped while it copies the large blob (it has found the
    # small one present already), and `nbtrack gc` is started meanwhile
    tmp = tmp_path / "import-tmp"
    tmp.mkdir()
    importing = _nbtrack("import", str(bundle), cwd=here, TMPDIR=str(tmp))
    wait_until(
        lambda: list(tmp.iterdir()), timeout=60, interval=0.002,
        what="the import to copy the large blob",
    )  # fmt: skip
    os.kill(importing.pid, signal.SIGSTOP)
    try:
        collecting = _nbtrack("gc", cwd=here)
        # Before the fix it was done in a few seconds; now it waits for the import.
        with contextlib.suppress(subprocess.TimeoutExpired):
            collecting.wait(timeout=10)
    finally:
        os.kill(importing.pid, signal.SIGCONT)
    _, err = importing.communicate(timeout=120)
    assert importing.returncode == 0, err
    _, gc_err = collecting.communicate(timeout=120)
    assert collecting.returncode == 0, gc_err

    # Then: checking the imported run out brings both files back, byte for byte
    target = tmp_path / "restored"
    done = run_cli("checkout", run_id, "--to", str(target), cwd=here)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / small.name).read_bytes() == small.read_bytes(), done.stdout
    assert hash_file(target / big.name) == hash_file(big)


@pytest.mark.parametrize("target", [".nbtrack", "gone/elsewhere"])
def test_a_store_folder_that_is_a_broken_symbolic_link_is_one_line_not_a_traceback(
    project_dir: Path, target: str
) -> None:
    # Given: `.nbtrack` is a symbolic link to itself, or to a folder that is not there
    os.symlink(target, project_dir / ".nbtrack")

    # When: a user lists, shows, collects garbage or asks the doctor
    for verb in (["ls"], ["show", "last"], ["gc"], ["doctor"]):
        done = run_cli(*verb, cwd=project_dir)

        # Then: each says in one line that `.nbtrack` is a broken link, with no traceback
        assert done.returncode != 0, (verb, done.stdout)
        said = done.stdout + done.stderr
        assert "Traceback" not in said, said
        assert "symbolic link" in said and target in said, said


LONG_QUERY = "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"


def test_a_command_stopped_while_it_holds_the_store_is_named_at_once(project_dir: Path) -> None:
    # Given: a store, and `nbtrack sql` running a long query in it (it holds the store)
    record_run(project_dir, "one")
    querying = _nbtrack("sql", LONG_QUERY, cwd=project_dir)
    holder = resolve_project(project_dir).db_path.with_name("runs.duckdb.lock")
    wait_until(
        lambda: _turn_holder(holder), lambda pid: pid == querying.pid, timeout=60,
        what="the query to hold the store",
    )  # fmt: skip
    # When: the user presses Ctrl-Z on it (it is stopped, alive, holding the store)
    # (SIGSTOP, what Ctrl-Z's SIGTSTP does: the kernel discards SIGTSTP sent to a process
    # group the kernel deems orphaned, and in ci16 the query ran on to its end)
    os.kill(querying.pid, signal.SIGSTOP)
    listed = _ls_behind(querying, project_dir)

    # Then: `ls` says at once, in one line, which process holds the store and that it is
    # stopped (before: it waited the whole lock timeout, 60 s, and blamed "busy")
    assert "Traceback" not in listed.stderr, listed.stderr
    assert f"process {querying.pid}" in listed.stderr and "stopped" in listed.stderr, listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1, listed.stderr


def _ls_behind(
    stopped: subprocess.Popen[str], project_dir: Path
) -> subprocess.CompletedProcess[str]:
    """`nbtrack ls` behind a stopped process, which is killed after; it must answer
    (fail) within 15 s, not wait out the lock timeout (60 s)."""
    try:
        began = time.monotonic()
        listed = run_cli("ls", cwd=project_dir)
        took = time.monotonic() - began
    finally:
        stopped.kill()
        stopped.communicate()
    assert listed.returncode != 0 and took < 15, (took, listed.stderr)
    return listed


# argv: the store's lock file. Stops itself in the state a process stopped during
# ``turn._free``'s look at the queue is in: a shared lock on every foreground ticket.
LOOKER = """
import fcntl, os, signal, sys
from nbtrack.store import turn

fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, turn.SPAN, turn.FOREGROUND)
print("looking", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
"""


def test_a_process_stopped_while_it_looks_at_the_queue_is_named_at_once(
    project_dir: Path,
) -> None:
    # Given: a store, and a process stopped (Ctrl-Z) in the instant it looked at the
    # queue of waiters (the test above, under load, hit this: `ls` took no ticket and
    # waited out the whole lock timeout)
    record_run(project_dir, "one")
    lock_file = resolve_project(project_dir).db_path.with_name("runs.duckdb.lock")
    looker = subprocess.Popen(
        [sys.executable, "-c", LOOKER, str(lock_file)],
        env=kernel_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert looker.stdout is not None and looker.stdout.readline() == "looking\n"
        wait_until(
            lambda: Path(f"/proc/{looker.pid}/stat").read_text().rsplit(")", 1)[1].split()[0],
            lambda state: state == "T", timeout=30, what="the looker to stop",
        )  # fmt: skip
    except BaseException:
        looker.kill()
        raise
    # When: the user lists the runs
    listed = _ls_behind(looker, project_dir)

    # Then: one line names the stopped process at once (not 60 s of "busy")
    assert f"process {looker.pid}" in listed.stderr and "stopped" in listed.stderr, listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1, listed.stderr


def _turn_holder(lock_file: Path) -> int | None:
    """The process holding the store's turn (byte 2 of its lock file), from /proc/locks."""
    if not lock_file.exists():
        return None
    inode = lock_file.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 00:2e:5678 2 2"
        if (
            fields[1:4] == ["POSIX", "ADVISORY", "WRITE"]
            and fields[5:8] == [*fields[5:6], "2", "2"]
            and fields[5].endswith(f":{inode}")
        ):
            return int(fields[4])
    return None


SPARSE_OUTPUT = """%%track sparse
with open("sparse.bin", "wb") as f:
    f.write(b"head")
    f.seek(1 << 30)
    f.write(b"tail")
"""


def test_a_sparse_file_a_cell_writes_is_cached_without_filling_the_disk(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given/When: a tracked cell writes a 1 GiB file that is nearly all a hole
    began = time.monotonic()
    reply = kernel.ok(SPARSE_OUTPUT, timeout=600)
    took = time.monotonic() - began

    # Then: its copy in the cache takes no more disk than the file itself (before: 1 GiB
    # of zeros written, the cell held for 33 s on this machine), and checkout brings
    # the very bytes back
    written = project_dir / "sparse.bin"
    cached = [p for p in resolve_project(project_dir).cache_dir.rglob("*") if p.is_file()]
    blobs = [p for p in cached if p.stat().st_size == written.stat().st_size]
    assert len(blobs) == 1, (cached, reply.text)
    assert blobs[0].stat().st_blocks * 512 < 16 << 20, (blobs[0].stat(), took)
    digest = hash_file(written)
    written.unlink()
    done = run_cli("checkout", "last", cwd=project_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert hash_file(written) == digest
    assert written.stat().st_blocks * 512 < 16 << 20


TRACKED_LOOP = """
import nbtrack
for i in range({n}):
    get_ipython().run_cell_magic("track", f"c{{i}}", "nbtrack.log_metric('m', 1.0)")
"""


def test_doctor_does_not_call_a_tracking_kernel_dead(kernel: Kernel, project_dir: Path) -> None:
    # Given: a kernel whose ended runs wait in their spools for the ingestion process
    # (stopped here, so they wait for sure; a busy one leaves the same for a moment)
    kernel.ok("%%track first\nx = 1")
    _wait_for_runs(project_dir, 1)
    wait_until(ingestion_processes, timeout=30, what="the ingestion process")
    stopped = ingestion_processes()
    for p in stopped:
        os.kill(p.pid, signal.SIGSTOP)
    try:
        kernel.ok(TRACKED_LOOP.format(n=5))

        # When: the user asks the doctor
        asked = run_cli("doctor", "--json", cwd=project_dir)
    finally:
        for p in stopped:
            os.kill(p.pid, signal.SIGCONT)

    # Then: no "process died" problem (before: "5 spooled run(s) whose process died",
    # exit 1), and every run comes in once the process goes on
    findings = json.loads(asked.stdout)["findings"]
    assert asked.returncode == 0, findings
    assert not any("died" in f["detail"] for f in findings), findings
    _wait_for_runs(project_dir, 6)


def _wait_for_runs(project_dir: Path, count: int) -> None:
    wait_until(
        lambda: run_cli("ls", "--json", cwd=project_dir).stdout,
        lambda out: len(json.loads(out)["runs"]) == count,
        timeout=60,
        what=f"{count} run(s) in the store",
    )


def test_a_backup_copied_over_the_store_beside_a_newer_log_is_repaired_by_the_doctor(
    project_dir: Path,
) -> None:
    # Given: a store, a copy of it kept aside, then more runs whose last changes are
    # still in DuckDB's write-ahead log (no checkpoint yet: a killed process leaves that)
    kept = record_run(project_dir, "kept")
    db = resolve_project(project_dir).db_path
    backup = project_dir / "runs.backup.duckdb"
    backup.write_bytes(db.read_bytes())
    for n in range(3):
        record_run(project_dir, f"later-{n}")
    con = duckdb.connect(str(db))
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("UPDATE runs SET name = 'renamed' WHERE name = 'later-0'")
    con.close()
    assert db.with_name(db.name + ".wal").exists()

    # When: the user goes back to the copy as the doctor advises (copies it over the
    # store), leaving the log of the newer file beside it
    db.write_bytes(backup.read_bytes())

    # Then: commands say in one line that the log is another version's and how to fix it
    # (before: "damaged ... run `nbtrack doctor`", and `doctor --repair` fixed nothing)
    listed = run_cli("ls", cwd=project_dir)
    assert listed.returncode != 0
    assert "write-ahead log" in listed.stderr and "--repair" in listed.stderr, listed.stderr
    repaired = run_cli("doctor", "--repair", cwd=project_dir)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    listed = run_cli("ls", "--json", cwd=project_dir)
    assert [r["run_id"] for r in json.loads(listed.stdout)["runs"]] == [kept], listed.stderr
    assert list(db.parent.glob("runs.duckdb.wal.*")), "the log is set aside, not deleted"
