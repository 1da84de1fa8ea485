"""Faults of the fifteenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (a 10 MB parameter, a FIFO a cell opens, ...)
and then asks what a user would ask: does the command end, in reasonable time and
size, is every run still there, and is the workspace as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from conftest import kernel_env, run_cli
from factory import record_run

BIG_VALUE = "x" * 10_000_000  # a 10 MB text parameter: a file's contents passed as one


def test_a_10_mb_parameter_beside_10000_others_prints_once_not_padded_on_every_row(
    project_dir: Path,
) -> None:
    # Given: a run with one 10 MB text parameter, and a run with 10,000 parameters
    big = record_run(project_dir, "big", params={"big": BIG_VALUE}, metrics={"acc": 0.5})
    many = record_run(project_dir, "many", params={f"p{i}": i for i in range(10_000)})

    # When: the user pipes `diff` and `ls` into a file (no terminal: every character)
    started = time.monotonic()
    diff = run_cli("diff", big, many, cwd=project_dir)
    listing = run_cli("ls", cwd=project_dir)
    took = time.monotonic() - started

    # Then: both end at once with the 10 MB value written once, whole; before, every
    # one of the 10,000 rows of the diff was padded to 10 MB: 100 GB over 4 minutes
    # (a `> diff.txt` filled the disk), and `ls` padded every run's row the same way
    assert diff.returncode == 0, diff.stderr
    assert listing.returncode == 0, listing.stderr
    assert diff.stdout.count(BIG_VALUE) == 1
    assert listing.stdout.count(BIG_VALUE) == 1
    assert len(diff.stdout) < len(BIG_VALUE) + 1_000_000
    assert len(listing.stdout) < len(BIG_VALUE) + 1_000_000  # 10,000 columns
    assert "p9999" in diff.stdout
    assert took < 60


def test_a_cell_reading_a_named_pipe_or_naming_a_device_ends_and_is_recorded(
    kernel, project_dir: Path
) -> None:
    # Given: a named pipe another process writes a few rows into (a shell's `mkfifo`,
    # a stream fed to a cell), and the cell that reads them
    fifo = project_dir / "feed"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf '1,2\\n' > {fifo}"])
    try:
        # When: the cell reads the pipe; and another cell names /dev/zero with -i
        reads = kernel.run('%%track feed\nrows = open("feed").read()', timeout=30)
        zero = kernel.run("%%track zero -i /dev/zero\nx = 1", timeout=30)
    finally:
        writer.kill()
        writer.wait()

    # Then: both cells end, each with its run and one line saying why the special
    # file has no version; before, the kernel hung for ever at the end of the first
    # (nbtrack's open of the pipe waited for a writer that had gone), and /dev/zero
    # was read until memory ran out
    assert reads.status == "ok", reads.text
    assert "feed: a named pipe (FIFO), not a file or folder" in reads.text
    assert zero.status == "ok", zero.text
    assert "/dev/zero: a device, not a file or folder" in zero.text
    assert "Traceback" not in reads.text + zero.text
    kernel.ok("nbtrack.runs()")
    listing = run_cli("ls", "--columns", "name,status", cwd=project_dir)
    assert listing.stdout.split()[2:] == ["zero", "finished", "feed", "finished"]


def _with_zones(bundle: Path, out: Path, started: str, ended: str) -> None:
    """``bundle`` rewritten as another tool writes times: ISO with a UTC offset."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "runs.json":
                dump = json.loads(data)
                dump["runs"][0].update(started_at=started, ended_at=ended)
                data = json.dumps(dump).encode()
            dst.writestr(item, data)


def test_imported_times_with_a_utc_offset_keep_their_instant(
    project_dir: Path, tmp_path_factory
) -> None:
    # Given: a bundle whose run's times carry UTC offsets (another tool's export, or a
    # run file written in a zone): 10:00 in London, ended 09:30 in New York (14:30 UTC)
    run_id = record_run(project_dir, "zoned", metrics={"acc": 0.5})
    exported = tmp_path_factory.mktemp("out") / "run.bundle"
    assert run_cli("export", run_id, "-o", str(exported), cwd=project_dir).returncode == 0
    zoned = exported.with_name("zoned.bundle")
    _with_zones(exported, zoned, "2026-06-01T10:00:00+00:00", "2026-06-01T09:30:00-05:00")
    other = tmp_path_factory.mktemp("other")

    # When: another project imports it
    imported = run_cli("import", str(zoned), cwd=other)

    # Then: the run keeps its instants, in UTC: it lasted 4.5 hours; before, the
    # offsets were dropped, and the store held a run that ended 30 minutes before it
    # started (a duration of -1800 s: the very row import refuses)
    assert imported.returncode == 0, imported.stderr
    shown = json.loads(run_cli("show", run_id[:8], "--json", cwd=other).stdout)
    assert shown["started_at"].startswith("2026-06-01T10:00:00")
    assert shown["ended_at"].startswith("2026-06-01T14:30:00")
    assert shown["duration"] == 4.5 * 3600


def test_a_command_under_a_small_memory_limit_fails_in_one_line(project_dir: Path) -> None:
    # Given: a store with a run
    record_run(project_dir, "one", metrics={"acc": 0.5})

    # When: the user lists runs under address-space limits from tight to loose
    # (`ulimit -v` in a batch job's script); where Python or DuckDB run out differs
    # from one start to the next, so each limit is tried
    errors = []
    for kib in range(200_000, 850_000, 50_000):
        out = subprocess.run(
            ["sh", "-c", f"ulimit -v {kib}; exec {sys.executable} -m nbtrack ls"],
            cwd=project_dir,
            env=kernel_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Then: no traceback, whatever ran out; before, a thread that could not start
        # (`RuntimeError: can't start new thread`) printed 20 lines of traceback
        assert "Traceback" not in out.stderr, f"ulimit -v {kib}:\n{out.stderr}"
        if out.stderr.startswith("nbtrack: error:"):
            errors.append(out.stderr)
            # (glibc may add its own abort line after it, at exit)
            assert out.stderr.count("nbtrack:") == 1, out.stderr
    assert errors, "no limit tried was small enough to fail"
