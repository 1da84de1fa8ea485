"""The background ingestion keeps up: a backlog of many short runs drains whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import Kernel, run_cli

RUNS = 300
CELL = (
    "%%track rate\n"
    + "".join(f"p{i} = {i}\n" for i in range(10))
    + "nbtrack.log_metrics({"
    + ", ".join(f"'m{i}': {i} / 10" for i in range(10))
    + "})"
)


def test_runs_recorded_back_to_back_are_all_in_when_the_last_cell_returns(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a kernel that records hundreds of short runs back to back (10 parameters,
    # 10 metrics each), as fast as it can
    kernel.ok("_ip = get_ipython()\n%config TrackMagics.show_summary = False")

    # When: the last cell returns and the kernel reads its runs at once
    out = kernel.ok(
        f"for _ in range({RUNS}):\n"
        f"    _ip.run_cell({CELL!r}, store_history=False)\n"
        "_f = nbtrack.runs(limit=None)\n"
        "print(len(_f), sorted(set(_f['status'])))"
    )

    # Then: every run is there, finished, with all its parameters and metrics...
    assert f"{RUNS} ['finished']" in out.text
    done = run_cli(
        "sql", "--json",
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM params), "
        "(SELECT count(*) FROM metric_latest WHERE key LIKE 'm_'), "
        "(SELECT count(*) FROM metrics WHERE key LIKE 'm_')",
        cwd=project_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    counts = list(json.loads(done.stdout)[0].values())
    assert counts == [RUNS, RUNS * 10, RUNS * 10, RUNS * 10]
    # ... and no spool is left behind once the kernel has stored everything
    kernel.ok("from nbtrack import ingest\nassert ingest.ingestor().drain(60)")
    assert not list((project_dir / ".nbtrack" / "spool").glob("*.spool"))


# Defines ``_spool_files()`` in a kernel: how many descriptors it holds on spool files.
SPOOL_FILES = """
def _spool_files():
    found = 0
    for fd in os.listdir('/proc/self/fd'):
        try:
            found += '/.nbtrack/spool/' in os.readlink(f'/proc/self/fd/{fd}')
        except OSError:  # (the listing's own descriptor, closed since)
            pass
    return found
"""


def test_runs_recorded_back_to_back_in_one_cell_hold_no_file_once_they_are_stored(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a kernel whose open files are limited, as many systems' are (1,024)
    kernel.ok(
        "import os, resource\n_ip = get_ipython()\n%config TrackMagics.show_summary = False\n"
        "_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(_soft, 1024), _hard))\n" + SPOOL_FILES
    )

    # When: one cell runs 1,200 tracked cells (each logs points) back to back, so the
    # kernel replies to none of them until the loop ends
    out = kernel.ok(
        "for _ in range(1200):\n"
        f"    _ip.run_cell({CELL!r}, store_history=False)\n"
        "print('open in the loop:', _spool_files())\n"
        "_f = nbtrack.runs(limit=None)\n"
        "print(len(_f), sorted(set(_f['status'])))"
    )
    # (the last run's facts are gathered once the kernel has replied: then it is let go)
    after = kernel.ok(
        "import time\nfrom nbtrack import ingest\nassert ingest.ingestor().drain(60)\n"
        "for _ in range(100):\n"
        "    if not _spool_files():\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "print('open once stored:', _spool_files())"
    )

    # Then: every run is stored and finished (none failed for want of a file)...
    assert "1200 ['finished']" in out.text, out.text
    # ... a finished run's spool and point log were let go as it ended, not when the
    # loop returned (a mapping holds a descriptor of its own)...
    in_loop = int(out.text.split("open in the loop:")[1].split()[0])
    assert in_loop < 60, out.text
    # ... and once stored, the kernel holds none of them
    assert "open once stored: 0" in after.text, after.text


HOLD = """
import time, duckdb
con = duckdb.connect(".nbtrack/runs.duckdb")
print("held", flush=True)
time.sleep(120)
"""


def test_runs_waiting_for_a_store_held_elsewhere_hold_no_file_in_a_kernel_that_ingests_itself(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a kernel that ingests its runs itself (NBTRACK_INGEST=thread, also what a
    # kernel falls back to when the ingestion process cannot start), with the usual
    # limit of 1,024 open files, and a store another program holds open
    kernel = kernel_factory(NBTRACK_INGEST="thread")
    kernel.ok(
        "%load_ext nbtrack\nimport nbtrack, os, resource\n_ip = get_ipython()\n"
        "%config TrackMagics.show_summary = False\n"
        "_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(_soft, 1024), _hard))\n" + SPOOL_FILES
    )
    kernel.ok(CELL)  # (the store exists)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=project_dir, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        # When: 500 tracked cells run while the store cannot be written
        out = kernel.ok(
            "for _ in range(500):\n"
            f"    _ip.run_cell({CELL!r}, store_history=False)\n"
            "print('spool files open:', _spool_files())"
        )
    finally:
        holder.kill()
        holder.wait()

    # Then: no run failed for want of a file (before, each waiting run kept its spool,
    # its point log and the log's mapping open: "Too many open files" at ~340 runs)...
    assert "Too many open files" not in out.text, out.text
    assert int(out.text.split("spool files open:")[1].split()[0]) < 10, out.text
    # ... and once the store is free, every run is stored, finished
    stored = kernel.ok(
        "from nbtrack import ingest\nassert ingest.ingestor().drain(120)\n"
        "_f = nbtrack.runs(limit=None)\nprint(len(_f), sorted(set(_f['status'])))"
    )
    assert "501 ['finished']" in stored.text, stored.text
