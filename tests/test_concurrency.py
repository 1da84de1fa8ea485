"""Many processes, one ``runs.duckdb``: every row lands, nobody errors or hangs.

DuckDB lets only one process open the file at a time, so these tests start real
interpreters (never forked ones: DuckDB's instance cache does not survive a fork)
that write runs through ``RunWriter`` while another one lists runs in a loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

WRITERS = 8
RUNS_PER_WRITER = 2
POINTS_PER_RUN = 1_000
PARAMS_PER_RUN = 10
PROCESS_TIMEOUT = 45.0

# Each writer: wait for the go file, then record its runs and report their ids.
WRITER = """
import json, os, sys, time
from pathlib import Path
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

index, runs, points, nparams, go = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
project = resolve_project()
Path(str(go) + f".ready{index}").touch()
while not go.exists():
    time.sleep(0.001)
ids = []
for r in range(runs):
    params = {f"p{k}": index * 100 + r + k / 10 for k in range(nparams)}
    w = RunWriter.start(project, kind="cell", name=f"writer{index}", params=params)
    for step in range(points):
        w.log_metric("loss", 1.0 / (step + 1), step=step)
    w.finish("finished")
    w.wait(timeout=40)
    ids.append(w.run_id)
print(json.dumps(ids))
"""

# The lister: list runs until the stop file appears; report how many listings it made.
LISTER = """
import json, sys, time
from pathlib import Path
from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project

go, stop = Path(sys.argv[1]), Path(sys.argv[2])
Path(str(go) + ".ready-lister").touch()
while not go.exists():
    time.sleep(0.001)
listings, seen = 0, 0
while not stop.exists():
    page = Client(resolve_project()).list_runs(RunQuery(kind=None, limit=50))
    seen = max(seen, page.total)
    listings += 1
print(json.dumps({"listings": listings, "max_seen": seen}))
"""


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    env["NBTRACK_STORE"] = str(store)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _finish(proc: subprocess.Popen[str], deadline: float) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"process {proc.args[-1]!r} hung (killed after the timeout):\n{err}")
    return proc.returncode, out, err


def _wait_for(paths: list[Path], timeout: float, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"a process exited before the start: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail("the processes did not get ready in time")
        time.sleep(0.01)


@pytest.mark.parametrize("store_exists", [True, False], ids=["existing-store", "new-store"])
def test_eight_writers_and_a_lister_lose_nothing(project_dir: Path, store_exists: bool) -> None:
    # Given: a project whose store exists (or not yet), 8 writers and a lister ready to go
    store = project_dir / ".nbtrack"
    env = _env(store)
    if store_exists:
        Client(resolve_project(project_dir)).info()  # creates the schema
        assert (store / "runs.duckdb").exists()
    else:
        assert not store.exists()
    go, stop = project_dir / "go", project_dir / "stop"
    pipes = {"cwd": project_dir, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(i),
                str(RUNS_PER_WRITER),
                str(POINTS_PER_RUN),
                str(PARAMS_PER_RUN),
                str(go),
            ],
            text=True,
            **pipes,
        )  # fmt: skip
        for i in range(WRITERS)
    ]
    lister = subprocess.Popen(
        [sys.executable, "-c", LISTER, str(go), str(stop)], text=True, **pipes
    )
    try:
        ready = [Path(f"{go}.ready{i}") for i in range(WRITERS)] + [Path(f"{go}.ready-lister")]
        _wait_for(ready, 40.0, [*writers, lister])

        # When: they all start at the same instant
        go.touch()
        deadline = time.monotonic() + PROCESS_TIMEOUT
        run_ids: list[str] = []
        for proc in writers:
            code, out, err = _finish(proc, deadline)
            assert code == 0, f"a writer failed:\n{err}"
            assert "Traceback" not in err, err
            run_ids.extend(json.loads(out))
        stop.touch()
        code, out, err = _finish(lister, deadline + 10)
        assert code == 0, f"the lister failed:\n{err}"
        listing = json.loads(out)
    finally:
        for proc in [*writers, lister]:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    # Then: every run, parameter and metric point is in the store, which opens cleanly
    expected_runs = WRITERS * RUNS_PER_WRITER
    assert len(set(run_ids)) == expected_runs
    assert listing["listings"] >= 1
    client = Client(resolve_project(project_dir))
    _, rows = client.sql("SELECT status, count(*) FROM runs GROUP BY status ORDER BY status")
    assert rows == [("finished", expected_runs)]
    _, rows = client.sql(
        "SELECT run_id, count(*), count(DISTINCT step), min(step), max(step) "
        "FROM metrics GROUP BY run_id ORDER BY run_id"
    )
    assert rows == [
        (run_id, POINTS_PER_RUN, POINTS_PER_RUN, 0, POINTS_PER_RUN - 1)
        for run_id in sorted(run_ids)
    ]
    _, rows = client.sql("SELECT count(*), count(DISTINCT run_id) FROM params")
    assert rows == [(expected_runs * PARAMS_PER_RUN, expected_runs)]
    _, rows = client.sql("SELECT sum(n), min(value) FROM metric_latest WHERE key = 'loss'")
    assert rows == [(expected_runs * POINTS_PER_RUN, 1.0 / POINTS_PER_RUN)]
    frame = client.runs_frame(kind=None)
    assert len(frame) == expected_runs
    assert sorted(frame["params.p0"]) == sorted(
        float(i * 100 + r) for i in range(WRITERS) for r in range(RUNS_PER_WRITER)
    )
    # Nothing left half-way: no spool waits for recovery, and DuckDB itself opens the file.
    assert list((store / "spool").glob("*.spool")) == []
    con = duckdb.connect(str(store / "runs.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (expected_runs,)
    finally:
        con.close()


def test_points_logged_while_another_thread_flushes_all_land(project_dir: Path) -> None:
    # Given: a run whose buffer is flushed to the spool by another thread, non-stop
    # (the kernel's ingestor does this every second while a training loop logs)
    writer = RunWriter.start(resolve_project(project_dir), kind="cell", name="race")
    stop = threading.Event()

    def flush_forever() -> None:
        while not stop.is_set():
            writer.flush()

    flusher = threading.Thread(target=flush_forever)
    flusher.start()
    # When: the loop logs 200,000 points meanwhile
    try:
        for _ in range(200_000):
            writer.log_metric("loss", 0.5)
    finally:
        stop.set()
        flusher.join(timeout=30)
    writer.finish("finished")
    writer.wait(timeout=30)
    # Then: every point is stored once, none lost or torn
    _, rows = Client(resolve_project(project_dir)).sql(
        "SELECT count(*), count(DISTINCT step), max(step) FROM metrics"
    )
    assert rows == [(200_000, 200_000, 199_999)]
