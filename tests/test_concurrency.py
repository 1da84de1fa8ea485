"""Many processes, one ``runs.duckdb``: every row lands, nobody errors or hangs.

DuckDB lets only one process open the file at a time, so these tests start real
interpreters (never forked ones: DuckDB's instance cache does not survive a fork)
that write runs through ``RunWriter`` while another one lists runs in a loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import Kernel, run_cli
from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

WRITERS = 8
RUNS_PER_WRITER = 2
POINTS_PER_RUN = 1_000
PARAMS_PER_RUN = 10
# A hang never ends; a slow run does. Nine processes on two busy cores took longer
# than 45 s (at a load of 10) with nothing stuck, so the bound is generous.
PROCESS_TIMEOUT = 120.0

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


def test_points_logged_from_two_threads_while_a_third_ingests_all_land_once(
    project_dir: Path,
) -> None:
    # Given: a run ingested by another thread, non-stop, while it is logged into (the
    # kernel's ingestor does this every second while a training loop logs)
    writer = RunWriter.start(resolve_project(project_dir), kind="cell", name="race")
    stop = threading.Event()

    def ingest_forever() -> None:
        while not stop.is_set():
            writer.ingest()

    def log(name: str) -> None:
        for _ in range(150_000):  # crosses several windows of the point log
            writer.log_metric(name, 0.5)

    ingester = threading.Thread(target=ingest_forever)
    ingester.start()
    # When: two threads log 150,000 points each meanwhile
    loggers = [threading.Thread(target=log, args=(n,)) for n in ("a", "b")]
    try:
        for t in loggers:
            t.start()
        for t in loggers:
            t.join(timeout=60)
    finally:
        stop.set()
        ingester.join(timeout=30)
    writer.finish("finished")
    writer.wait(timeout=30)
    # Then: every point is stored once, none lost or torn
    _, rows = Client(resolve_project(project_dir)).sql(
        "SELECT key, count(*), count(DISTINCT step), max(step), min(value), max(value) "
        "FROM metrics GROUP BY key ORDER BY key"
    )
    assert rows == [(k, 150_000, 150_000, 149_999, 0.5, 0.5) for k in ("a", "b")]


# A kernel-like writer: runs recorded through the background ingestor, as in a kernel.
STORM_WRITER = """
import sys, time
from pathlib import Path
from nbtrack.ingest import ingestor
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

index, runs, points, go = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
project = resolve_project()
Path(str(go) + f".ready{index}").touch()
while not go.exists():
    time.sleep(0.001)
for r in range(runs):
    w = RunWriter.start(project, kind="cell", name=f"storm{index}", params={"r": r},
                        background=True)
    for step in range(points):
        w.log_metric("loss", 1.0 / (step + 1))
    w.finish("finished")
    ingestor().kick()
assert ingestor().drain(120)
"""

# A reader: lists runs until the stop file appears and it has made at least the
# given number of listings (a storm may be over sooner on a fast machine, or the
# reader slow to start on a busy one); prints each listing's seconds.
STORM_READER = """
import json, sys, time
from pathlib import Path
from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project

go, stop, at_least = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
# A long-lived reader (the server, a kernel): its imports are behind it, not in a wait.
from nbtrack import spools
spools.warm_up()
Path(str(go) + ".ready-reader").touch()
while not go.exists():
    time.sleep(0.001)
waits = []
while len(waits) < at_least or not stop.exists():
    t = time.perf_counter()
    Client(resolve_project()).list_runs(RunQuery(kind=None, limit=50))
    waits.append(time.perf_counter() - t)
    time.sleep(0.02)  # a poller (the panel, `watch nbtrack ls`), not a tight loop
print(json.dumps(waits))
"""
STORM_WRITERS, STORM_RUNS, STORM_POINTS = 3, 15, 1_000
STALL = 10.0  # seconds: a reader waiting this long is stalled, not merely slow


def test_a_storm_of_writers_never_holds_a_reader_for_long(project_dir: Path) -> None:
    # Given: three busy writers (runs of 1,000 points ingested in the background),
    # a reader listing runs in a loop, and exports now and then
    store = project_dir / ".nbtrack"
    env = _env(store)
    Client(resolve_project(project_dir)).info()  # the store exists
    go, stop = project_dir / "go", project_dir / "stop"
    pipes = {"cwd": project_dir, "env": env, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    args = [str(STORM_RUNS), str(STORM_POINTS), str(go)]
    writers = [
        subprocess.Popen([sys.executable, "-c", STORM_WRITER, str(i), *args], text=True, **pipes)
        for i in range(STORM_WRITERS)
    ]
    reader = subprocess.Popen(
        [sys.executable, "-c", STORM_READER, str(go), str(stop), "3"], text=True, **pipes
    )
    exports: list[float] = []
    try:
        ready = [Path(f"{go}.ready{i}") for i in range(STORM_WRITERS)]
        _wait_for([*ready, Path(f"{go}.ready-reader")], 40.0, [*writers, reader])

        # When: they all start at once
        go.touch()
        deadline = time.monotonic() + PROCESS_TIMEOUT * 2
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            begin = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "nbtrack", "export", "last", "-o", str(project_dir / "x.zip")],
                cwd=project_dir, env=env, capture_output=True, text=True,
            )  # fmt: skip
            exports.append(time.monotonic() - begin)
            assert done.returncode == 0 or "no runs yet" in done.stderr, done.stderr
        for proc in writers:
            code, _, err = _finish(proc, deadline)
            assert code == 0, err
        stop.touch()
        code, out, err = _finish(reader, deadline + 10)
        assert code == 0, err
        waits = json.loads(out)
    finally:
        for proc in [*writers, reader]:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    # Then: every run and point is stored once...
    client = Client(resolve_project(project_dir))
    _, rows = client.sql(
        "SELECT count(*), count(DISTINCT run_id) FROM runs WHERE status = 'finished'"
    )
    assert rows == [(STORM_WRITERS * STORM_RUNS,) * 2]
    _, rows = client.sql("SELECT count(*), count(DISTINCT (run_id, step)) FROM metrics")
    assert rows == [(STORM_WRITERS * STORM_RUNS * STORM_POINTS,) * 2]
    # ... and no listing or export waited for the writers' backlog. The targets (every
    # wait <= 2 s, p99 < 1 s) are measured by benchmarks/bench_writepath.py storm; on
    # a machine shared with other test runs a 0.3 s wait can take a few seconds, so
    # this test only rules out the stall that was seen (48-120 s). On a slow machine the
    # storm can be over after a handful of listings (CI's once made 9): a few suffice,
    # since a stalled listing is caught by its wait, not by their number.
    assert len(waits) >= 3
    assert max(waits) <= STALL, f"slowest listings: {sorted(waits)[-5:]}"
    # An export first brings in every spool (so that what it exports is whole): its own
    # work grows with the writers' backlog, and under a loaded test machine it once took
    # 11.6 s. The stall it must never show again was over 180 s.
    assert exports and max(exports) <= 3 * STALL, exports


def test_a_run_is_visible_to_every_reader_when_its_cell_returns(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a tracked cell with parameters, metrics and an output file
    reply = kernel.ok(
        "%%track visible\nlr = 0.5\nnbtrack.log_metric('acc', 0.9)\n"
        "open('out.txt', 'w').write('hello')"
    )
    assert reply.status == "ok"

    # When: another process lists runs right away, with no sleep
    done = run_cli("ls", "--json", cwd=project_dir)

    # Then: the run is there, finished, whole
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert (run["name"], run["status"]) == ("visible", "finished")
    logged = {k: v for k, v in run["metrics"].items() if not k.startswith("system/")}
    assert run["params"] == {"lr": 0.5} and logged == {"acc": 0.9}
    assert [d["path"] for d in run["data"]] == ["out.txt"]
    # ... and the next cell of the same kernel sees it too (finished; the running cell
    # itself may be listed too, as the ingestion process stores running runs as they go)
    out = kernel.ok(
        "%%track second\nf = nbtrack.runs()\nf = f[f['status'] == 'finished']\n"
        "print(len(f), sorted(f['name']))"
    )
    assert "1 ['visible']" in out.text


# ---------------------------------------------------------------- kernels, REST, SIGTERM
KERNELS, KERNEL_CELLS, CELL_POINTS = 4, 20, 500
# What a stall looked like before the fair turn (issue 14): reads of 48-120 s, a server
# ignoring SIGTERM for 30 s. The targets (reads <= 2 s, p99 < 1 s; a stop within 5 s)
# are measured by benchmarks/bench_writepath.py storm; on a test machine at a load of
# 10 a read took 5.05 s and a stop 6.6 s, so these bounds catch the stall, not a slow
# minute.
READ_BOUND = 10.0  # seconds; ~0.1 s typical
STOP_BOUND = 10.0  # seconds from SIGTERM to a stopped server
KERNEL_CELL = (
    "%%track storm\nlr = 0.1\nfor _s in range({points}):\n"
    "    nbtrack.log_metric('loss', 1.0 / (_s + 1))"
)


class _Server:
    """A real Jupyter server with nbtrack's REST API, in its own process."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        import secrets
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{port}/"
        # The server's log, for a failure's message (a 500 says nothing by itself)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (read back at failure)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.jpserver_extensions=nbtrack=True"],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while True:
            try:
                self.get("api/status")
                break
            except OSError:
                assert self.proc.poll() is None, "the server did not start"
                assert time.monotonic() < deadline, "the server did not answer in time"
                time.sleep(0.2)

    def get(self, route: str, timeout: float = 120) -> bytes:
        import urllib.request

        req = urllib.request.Request(
            self.base + route, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bytes(resp.read())

    def log_tail(self, lines: int = 40) -> str:
        """The end of what the server wrote to stderr (its tracebacks)."""
        self._log.seek(0)
        return "\n".join(self._log.read().decode(errors="replace").splitlines()[-lines:])

    def sigterm(self) -> float:
        """Send SIGTERM; the seconds until the process was gone (killed past 60 s)."""
        began = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - began

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JPY_"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _tickets_taken(db: Path) -> int:
    # Through the turn's own descriptor: closing another descriptor of the lock file
    # would drop the POSIX locks this process holds on it.
    from nbtrack.store.connection import Connection

    raw = os.pread(Connection(db)._turn.fd, 8, 0)
    return int.from_bytes(raw, "little") if len(raw) == 8 else 0


def test_the_server_stops_within_5_s_of_sigterm_while_a_request_waits_for_the_store(
    project_dir: Path,
) -> None:
    # Given: a server, and the store's turn held by another process (a long write)
    client = Client(resolve_project(project_dir))
    client.info()
    server = _Server(project_dir, _server_env())
    try:
        server.get("nbtrack/api/runs?path=&limit=10")
        with client.store_turn():
            before = _tickets_taken(client.project.db_path)
            waiting = threading.Thread(
                target=lambda: _ignore_errors(server.get, "nbtrack/api/runs?path=&limit=10")
            )
            waiting.start()
            deadline = time.monotonic() + 60
            while _tickets_taken(client.project.db_path) == before:  # the request queued
                assert time.monotonic() < deadline, "the request never reached the store"
                time.sleep(0.01)

            # When: the server gets SIGTERM while its request waits
            seconds = server.sigterm()
        waiting.join(60)
    finally:
        server.close()

    # Then: it is gone within 5 s (the request gave up), not after the lock timeout
    assert seconds <= STOP_BOUND, f"the server took {seconds:.1f} s to stop"


def _ignore_errors(fn: object, *args: object) -> None:
    # The server stopping under the request is what the test wants.
    with contextlib.suppress(OSError):
        fn(*args)  # type: ignore[operator]


def test_a_storm_of_kernels_holds_no_listing_or_rest_request_for_long(
    project_dir: Path, kernel_factory: object
) -> None:
    # Given: a server polled every 100 ms, a process listing runs in a loop, and busy
    # kernels each running tracked cells that log hundreds of points
    client = Client(resolve_project(project_dir))
    client.info()
    env = _server_env()
    server = _Server(project_dir, env)
    stop = project_dir / "stop"
    lister = subprocess.Popen(
        [sys.executable, "-c", STORM_READER, str(project_dir / "go"), str(stop), "10"],
        cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    rest: list[float] = []
    failures: list[str] = []
    polling = threading.Event()

    def poll() -> None:
        while not polling.is_set():
            begin = time.monotonic()
            try:
                server.get("nbtrack/api/runs?path=&limit=100&offset=0")
            except OSError as exc:
                failures.append(str(exc))
            rest.append(time.monotonic() - begin)
            polling.wait(0.1)

    poller = threading.Thread(target=poll)
    try:
        server.get("nbtrack/api/runs?path=&limit=10")
        kernels = [kernel_factory() for _ in range(KERNELS)]  # type: ignore[operator]
        for k in kernels:
            k.ok("%load_ext nbtrack\nimport nbtrack")
        _wait_for([Path(f"{project_dir / 'go'}.ready-reader")], 60.0, [lister])
        (project_dir / "go").touch()
        poller.start()

        # When: every kernel runs its cells back to back
        code = KERNEL_CELL.format(points=CELL_POINTS)
        sent = [[k.kc.execute(code) for _ in range(KERNEL_CELLS)] for k in kernels]
        for k, ids in zip(kernels, sent, strict=True):
            pending = set(ids)
            while pending:
                reply = k.kc.get_shell_msg(timeout=600)
                assert reply["content"]["status"] == "ok", reply["content"]
                pending.discard(reply["parent_header"].get("msg_id"))
        deadline = time.monotonic() + 180
        runs = KERNELS * KERNEL_CELLS
        while client.sql("SELECT count(*) FROM runs WHERE status = 'finished'")[1][0][0] < runs:
            assert time.monotonic() < deadline, "the kernels' runs did not all reach the store"
            time.sleep(0.5)
        while len(rest) < 10 and time.monotonic() < deadline:  # a few reads once all is in
            time.sleep(0.1)
        polling.set()
        poller.join()
        stop.touch()
        code_, out, err = _finish(lister, time.monotonic() + 60)
        assert code_ == 0, err
        listings = json.loads(out)
        stopped = server.sigterm()
    finally:
        polling.set()
        server.close()
        if lister.poll() is None:
            lister.kill()
            lister.communicate()

    # Then: every run and point is stored once...
    _, rows = client.sql(
        "SELECT count(*), count(DISTINCT run_id) FROM runs WHERE name = 'storm' AND status = 'finished'"
    )
    assert rows == [(runs, runs)]
    _, rows = client.sql(
        "SELECT count(*), count(DISTINCT (run_id, step)) FROM metrics WHERE key = 'loss'"
    )
    assert rows == [(runs * CELL_POINTS,) * 2]
    # ... no listing and no REST request waited long (p99 < 1 s and max <= 2 s are the
    # targets, measured by benchmarks/bench_writepath.py storm on a machine of its own)...
    if failures:  # the server's traceback, whole, in the captured output
        print(server.log_tail(200))
    assert not failures, failures[:3]
    assert len(rest) >= 10 and len(listings) >= 10
    assert max(rest) <= READ_BOUND, f"slowest REST requests: {sorted(rest)[-5:]}"
    assert max(listings) <= READ_BOUND, f"slowest listings: {sorted(listings)[-5:]}"
    # ... and the server stopped promptly
    assert stopped <= STOP_BOUND, f"the server took {stopped:.1f} s to stop"
