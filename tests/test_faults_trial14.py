"""Faults of the fourteenth trial: nothing lost, nothing stalls.

Each test makes the fault for real (a SIGKILL to a command halfway through its
work, ...) and then asks what a user would ask: is the workspace as it was, is every
run still there, and does the next command finish the job.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from conftest import kernel_env, run_cli
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
