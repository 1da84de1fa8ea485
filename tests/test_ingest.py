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
