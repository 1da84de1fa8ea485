"""Faults of the fourteenth trial: nothing lost, nothing stalls.

Each test makes the fault for real (a SIGKILL to a command halfway through its
work, ...) and then asks what a user would ask: is the workspace as it was, is every
run still there, and does the next command finish the job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import ingestion_processes, kernel_env, run_cli
from factory import record_run
from waiting import wait_until

BIG = 256 << 20  # bytes: copying and hashing them takes a while, long enough to kill


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".nbtrack-restore-"))


def _kill_while_copying(project_dir: Path, run_id: str) -> bool:
    """Start `checkout --force`, SIGKILL it once its partial copy appears; whether it
    was killed with that copy left behind."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbtrack", "checkout", run_id, "--force"],
        cwd=project_dir,
        env=kernel_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: _leftovers(project_dir) or proc.poll() is not None,
            timeout=60,
            interval=0.001,
            what="checkout copying the file",
        )
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return proc.returncode == -signal.SIGKILL and bool(_leftovers(project_dir))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_checkout_killed_midway_leaves_no_partial_file_once_checkout_runs_again(
    project_dir: Path,
) -> None:
    # Given: a run that wrote a big file, since changed by the user
    data = project_dir / "big.bin"
    with open(data, "wb") as fh:
        for i in range(BIG >> 20):
            fh.write(bytes([i % 251]) * (1 << 20))
    run_id = record_run(project_dir, "big", outputs=[data])
    data.write_bytes(b"changed\n")

    # When: `nbtrack checkout --force` is killed (SIGKILL: the OOM killer, a closed
    # terminal's kill -9) while it copies the file back
    killed = False
    for _ in range(5):  # the copy may end before the kill lands: try again
        killed = _kill_while_copying(project_dir, run_id)
        if killed:
            break
        data.write_bytes(b"changed\n")
    assert killed, "checkout always ended before it could be killed"
    # the user's file was never half-written: it still holds what the user left there
    assert data.read_bytes() == b"changed\n"

    # When: the user runs checkout again
    out = run_cli("checkout", run_id, "--force", cwd=project_dir)

    # Then: the file is back whole and the killed checkout's partial copy is gone
    # (before: a hidden `.nbtrack-restore-<hex>` of up to the whole file's size stayed
    # in the project for ever; no command removed or named it)
    assert out.returncode == 0, out.stdout + out.stderr
    assert data.stat().st_size == BIG
    assert _leftovers(project_dir) == []
    assert sorted(p.name for p in project_dir.iterdir()) == [".nbtrack", "big.bin"]


def _ingestds(project_dir: Path) -> list[int]:
    where = str(project_dir)
    return [p.pid for p in ingestion_processes() if where in " ".join(p.info["cmdline"])]


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def test_a_deleted_fifo_is_made_again_by_the_running_ingestion_process(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a kernel tracking cells, its store's ingestion process running
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack\nimport nbtrack")
    kernel.ok('%%track first\nnbtrack.log_metric("acc", 0.1)')
    [first] = wait_until(lambda: _ingestds(project_dir), what="the ingestion process")
    fifo = project_dir / ".nbtrack" / "ingestd.fifo"
    wait_until(lambda: _is_fifo(fifo), what="the ingestion process's FIFO")

    # When: the FIFO is deleted (`rm .nbtrack/ingestd.*`, a sync tool), and a second
    # kernel starts tracking cells while the first goes on, for 12 s
    fifo.unlink()
    other = kernel_factory()
    other.ok("%load_ext nbtrack\nimport nbtrack")
    seen: set[int] = set()
    deadline = time.monotonic() + 12
    n = 0
    while time.monotonic() < deadline:
        n += 1
        kernel.ok(f'%%track a{n}\nnbtrack.log_metric("acc", {n})')
        other.ok(f'%%track b{n}\nnbtrack.log_metric("acc", {n})')
        seen.update(_ingestds(project_dir))

    # Then: the running process made its FIFO again, and no other process was started
    # (before: the FIFO stayed gone while that process lived; the second kernel started
    # a process every second, each waiting 5 s for the lock and leaving, and after 10 s
    # gave up on them: "the ingestion process did not start in 10 s")
    assert _is_fifo(fifo)
    assert seen == {first}, seen
    # ... and every run comes in. (Not all in the first `ls`: another process's reader
    # brings in one bounded slice of a backlog of ~80 runs a second, by design.)
    want = ["first", *(f"a{i}" for i in range(1, n + 1)), *(f"b{i}" for i in range(1, n + 1))]

    def listed() -> list[str]:
        out = run_cli("ls", "--json", "--limit", "10000", cwd=project_dir)
        return sorted(r["name"] for r in json.loads(out.stdout)["runs"])

    wait_until(listed, lambda names: names == sorted(want), timeout=60, what="every run")


DELETES_ITS_POINT_LOG = """%%track pts
import glob, os
for i in range(1000):
    nbtrack.log_metric("loss", i, step=i)
for p in glob.glob(".nbtrack/spool/*.points"):
    os.unlink(p)
for i in range(1000, 2000):
    nbtrack.log_metric("loss", i, step=i)
"""


def test_a_point_log_deleted_while_the_run_goes_loses_no_point(kernel, project_dir: Path) -> None:
    # Given/When: a tracked cell logs 1,000 points, its point log is deleted (a cleanup
    # script sweeping `*.points` files), and it logs 1,000 more
    kernel.ok(DELETES_ITS_POINT_LOG)

    # Then: every point is in the store once (before: none of the 2,000 was, the run
    # "finished" with loss=1999 and not a word of the loss)
    out = run_cli(
        "sql",
        "SELECT count(*), count(DISTINCT step), min(step), max(step) FROM metrics"
        " WHERE key = 'loss'",
        "--json",
        cwd=project_dir,
    )
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert list(row.values()) == [2000, 2000, 0, 1999], row


DELETES_ITS_SPOOL = """%%track sp
import glob, os
lr = 0.5
nbtrack.log_metric("a", 1.0)
for i in range(100):
    nbtrack.log_metric("loss", i, step=i)
for p in glob.glob(".nbtrack/spool/*"):
    os.unlink(p)
nbtrack.log_metric("b", 2.0)
"""


def test_a_spool_deleted_while_its_run_goes_loses_no_run(kernel, project_dir: Path) -> None:
    # Given/When: a tracked cell whose spool and point log are deleted while it goes
    # (a cleanup script, `rm .nbtrack/spool/*`)
    reply = kernel.ok(DELETES_ITS_SPOOL)
    assert "finished" in reply.text, reply.text

    # Then: when the cell returns its run is in the store whole (before: the cell said
    # "finished", and the store never had the run: lost, without a word)
    [run] = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"]
    assert (run["name"], run["status"], run["params"]["lr"]) == ("sp", "finished", 0.5)
    assert (run["metrics"]["a"], run["metrics"]["b"], run["metrics"]["loss"]) == (1.0, 2.0, 99)
    out = run_cli("sql", "SELECT count(*) AS n FROM metrics WHERE key = 'loss'", "--json",
                  cwd=project_dir)  # fmt: skip
    assert json.loads(out.stdout) == [{"n": 100}], out.stdout + out.stderr
    assert list((project_dir / ".nbtrack" / "spool").iterdir()) == []


MILLION_POINTS = """%%track big
import time
for i in range(1_000_000):
    nbtrack.log_metric("loss", i, step=i)
    if i % 100_000 == 0:
        time.sleep(0.5)
"""


def test_an_ingestion_process_killed_during_a_million_points_is_started_again(
    kernel, project_dir: Path
) -> None:
    # Given: a kernel whose store's ingestion process is killed (SIGKILL: the OOM
    # killer) again and again while a cell logs a million points
    kernel.ok('%%track warm\nnbtrack.log_metric("a", 1.0)')
    stop, kills = threading.Event(), []

    def killer() -> None:
        while not stop.wait(0.7):
            for pid in _ingestds(project_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        kernel.ok(MILLION_POINTS, timeout=300)
    finally:
        stop.set()
        thread.join()
    assert kills

    # Then: with no reader asking, the kernel starts the process again and it brings in
    # the rest (before: nobody started it once the run was handed over; the points
    # waited for readers, each bringing a slice: `nbtrack sql` counted 299,995, then
    # 499,995 after an `ls`, and 599,991 eight seconds later)
    spool = project_dir / ".nbtrack" / "spool"
    wait_until(lambda: sorted(p.name for p in spool.iterdir()), lambda left: not left,
               timeout=120, what="the spool folder emptied without a reader")  # fmt: skip
    out = run_cli(
        "sql",
        "SELECT count(*) AS n, count(DISTINCT step) AS d FROM metrics WHERE key = 'loss'",
        "--json",
        cwd=project_dir,
    )
    assert json.loads(out.stdout) == [{"n": 1_000_000, "d": 1_000_000}], out.stdout + out.stderr
