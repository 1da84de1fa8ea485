"""The background ingestion keeps up: a backlog of many short runs drains whole."""

from __future__ import annotations

import json
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


def test_runs_recorded_back_to_back_in_one_cell_hold_no_file_once_they_are_stored(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a kernel whose open files are limited, as many systems' are (1,024)
    kernel.ok(
        "import os, resource\n_ip = get_ipython()\n%config TrackMagics.show_summary = False\n"
        "_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(_soft, 1024), _hard))\n"
        "def _spool_files():\n"
        "    found = 0\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            found += '/.nbtrack/spool/' in os.readlink(f'/proc/self/fd/{fd}')\n"
        "        except OSError:\n"
        "            pass\n"
        "    return found"
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
