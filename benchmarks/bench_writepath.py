"""The write path under load (issue 14): durability cost, sustained rate, the storm.

    PATH=$PWD/.venv/bin:$PATH .venv/bin/python benchmarks/bench_writepath.py
        [--only points,rate,backlog,storm] [--points 2000000] [--repeat 5] [--before REF]
        [--backlog 5000]
        [--cells 10000] [--kernels 8] [--storm-cells 50] [--storm-points 1000]

points. ``log_metric`` points/s in a run, durable the moment the call returns (the
    point log in a shared mapping), against the code of ``--before`` (a git ref of
    this repository, default the commit before the change: points buffered in memory
    and spooled every second), both timed in fresh processes, alternated, in the same
    run; and an empty function call. Target: >= 1,000,000 points/s.
rate. ``--cells`` tracked cells back to back in one real kernel, each with 10
    parameters and 10 metrics. Figures: the cells' rate, the rate runs reach the
    store, the kernel's CPU and peak memory, the wait of a ``SELECT count(*)`` from
    another process polled meanwhile, and ``nbtrack.runs()`` right after the last
    cell (must hold every run). Targets: ingestion >= 200 runs/s, backlog memory
    < 100 MB, ``nbtrack.runs()`` < 200 ms after the last cell.
backlog. ``--backlog`` runs (10 parameters, 10 metrics each) spooled in one process and
    then ingested as the kernel's ingestor does (bounded slices, one turn while nobody
    waits): runs/s of the ingestion alone, apart from what a cell costs, and the
    process's memory growth. Target: >= 200 runs/s.
storm. ``--kernels`` real kernels each running ``--storm-cells`` tracked cells of
    ``--storm-points`` points, while ``nbtrack ls`` runs in a loop, a Jupyter server's
    runs route is polled every 100 ms and ``nbtrack export`` runs now and then.
    Figures: p50/p99/max latency of each reader; every run and point stored, no
    duplicate. Targets: no reader waits > 2 s, p99 < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import bench_core  # the benchmarks folder is on sys.path when run as a script

VENV_BIN = str(Path(sys.executable).parent)
REPO = Path(__file__).resolve().parent.parent
BEFORE = "afe4ebe"  # main before the durable point log


def project_env(store: Path, pythonpath: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JPY_"))}
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["NBTRACK_STORE"] = str(store)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_line(name: str, values: list[float]) -> str:
    if not values:
        return f"  {name:<8} no sample"
    return (
        f"  {name:<8} n={len(values):<5} p50 {statistics.median(values) * 1000:7.1f} ms   "
        f"p99 {pct(values, 0.99) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------- points
POINTS_CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
n = int(sys.argv[1])
w = RunWriter.start(resolve_project(tempfile.mkdtemp()), kind="cell", name="tight")
log = w.log_metric
log("loss", 0.5)
t, cpu = time.perf_counter(), time.thread_time()
for _ in range(n):
    log("loss", 0.5)
w.finish("finished")  # the before code spools its buffer here: durable at the end
elapsed, cpu = time.perf_counter() - t, time.thread_time() - cpu
def noop(name, value, step=None):
    pass
t, cpu0 = time.perf_counter(), time.thread_time()
for _ in range(n):
    noop("loss", 0.5)
print(json.dumps({"rate": n / elapsed, "cpu": n / cpu, "noop": n / (time.perf_counter() - t),
                  "noop_cpu": n / (time.thread_time() - cpu0)}))
"""


def bench_points(points: int, repeat: int, before: str) -> None:
    old = Path(tempfile.mkdtemp(prefix="nbtrack-before-"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", before, "python/nbtrack"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    trees = {"before": str(old / "python"), "after": str(REPO / "python")}
    rates: dict[str, list[float]] = {"before": [], "after": [], "noop": []}
    cpu: dict[str, list[float]] = {"before": [], "after": [], "noop": []}
    for _ in range(repeat):
        for name, tree in trees.items():
            env = project_env(old / "store", tree)
            out = subprocess.run(
                [sys.executable, "-c", POINTS_CHILD, str(points)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            got = json.loads(out)
            rates[name].append(got["rate"])
            rates["noop"].append(got["noop"])
            cpu[name].append(got["cpu"])
            cpu["noop"].append(got["noop_cpu"])
    med = {k: statistics.median(v) for k, v in rates.items()}
    per_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"\npoints. log_metric x {points:,} in a run, median of {repeat} (processes alternated)")
    print("  points (calls) per second of wall time / of the logging thread's CPU time:")
    for name, label in (
        ("before", f"before ({before}, buffered in memory)"),
        ("after", "after (durable at return)"),
        ("noop", "empty function call"),
    ):
        print(f"  {label:<40} {med[name]:>12,.0f} / {per_cpu[name]:>12,.0f}")
    print(
        f"  after / before {med['after'] / med['before']:.2f}x wall, "
        f"{per_cpu['after'] / per_cpu['before']:.2f}x CPU; target >= 1,000,000 points/s "
        f"(per CPU-second on a shared machine)  {verdict(per_cpu['after'] >= 1_000_000)}"
    )
    # fmt: skip


# ---------------------------------------------------------------- a real kernel
class BenchKernel(bench_core.BenchKernel):
    def __init__(self, cwd: Path) -> None:
        super().__init__(cwd)
        self.pid = int(self.run("import os; print(os.getpid())").strip())


def watch_ingestd(folder: Path, seen: dict[int, list[float]]) -> None:
    """Sample the CPU of the store's ingestion process (its pid is in its lock file):
    the first sample of each pid (taken when the measurement starts, or 0 for a
    process started during it) and the last."""
    try:
        pid = int((folder / ".nbtrack" / "ingestd.lock").read_text())
        _, cpu = rss_and_cpu(pid)
    except (OSError, ValueError):
        return
    if pid not in seen:  # the first one ran before the measurement; later ones during it
        seen[pid] = [0.0 if seen else cpu, cpu]
    seen[pid][1] = cpu


def rss_and_cpu(pid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return rss, cpu


RATE_CELL = (
    "%%track rate\n"
    + "".join(f"p{i} = {i}\n" for i in range(10))
    + "nbtrack.log_metrics({"
    + ", ".join(f"'m{i}': {i} / 10" for i in range(10))
    + "})"
)

COUNT_CHILD = """
import sys, time, json
from nbtrack.client import Client
from nbtrack.project import resolve_project
t = time.perf_counter()
n = Client(resolve_project()).sql("SELECT count(*) FROM runs")[1][0][0]
print(json.dumps([time.perf_counter() - t, n]))
"""


def bench_rate(cells: int, summary: bool = True) -> None:
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-rate-"))
    kernel = BenchKernel(folder)
    stop = threading.Event()
    samples: list[tuple[float, int, float]] = []
    counts: list[float] = []
    ingestd: dict[int, list[float]] = {}  # the store's ingestion process: pid -> [first, last] CPU

    def watch() -> None:
        while not stop.is_set():
            rss, cpu = rss_and_cpu(kernel.pid)
            samples.append((time.monotonic(), rss, cpu))
            watch_ingestd(folder, ingestd)
            stop.wait(0.2)

    def count_runs() -> tuple[float, int]:
        """(seconds, runs) of a SELECT count(*) from another process."""
        out = subprocess.run(
            [sys.executable, "-c", COUNT_CHILD],
            cwd=folder,
            env=project_env(folder / ".nbtrack"),
            capture_output=True,
            text=True,
        )
        return tuple(json.loads(out.stdout)) if out.returncode == 0 else (-1.0, -1)  # type: ignore[return-value]

    def count() -> None:
        while not stop.is_set():
            seconds, _ = count_runs()
            if seconds >= 0:
                counts.append(seconds)
            stop.wait(1.0)

    try:
        kernel.run("%load_ext nbtrack\nimport nbtrack, time, json\n_ip = get_ipython()")
        if not summary:  # the summary widgets stay in the kernel: measure without them
            kernel.run("%config TrackMagics.show_summary = False")
        kernel.run(f"_ip.run_cell({RATE_CELL!r}, store_history=False)")  # warm up
        # ... and its ingestion: DuckDB and Arrow loaded, so the memory figure is the backlog's
        kernel.run("from nbtrack import ingest\ningest.ingestor().drain(60)\nnbtrack.runs()")
        rss0, cpu0 = rss_and_cpu(kernel.pid)
        threads = [threading.Thread(target=watch), threading.Thread(target=count)]
        for t in threads:
            t.start()
        begin = time.monotonic()
        out = kernel.run(
            f"_t = time.perf_counter()\n"
            f"for _ in range({cells}):\n"
            f"    _ip.run_cell({RATE_CELL!r}, store_history=False)\n"
            "_cells = time.perf_counter() - _t\n"
            "_done = time.monotonic()\n"
            "_t = time.perf_counter()\n"
            "_f = nbtrack.runs(limit=None)\n"
            "print(json.dumps([_cells, time.perf_counter() - _t, len(_f), _done]))"
        )
        returned = time.monotonic()
        cells_s, runs_s, seen, cells_done = json.loads(out)
        # When did the last run reach the store (the kernel's own ingestion)?
        while True:
            _, n = count_runs()
            if n >= cells + 1 or time.monotonic() - returned > 600:
                break
            time.sleep(0.2)
        all_in = time.monotonic()
        stop.set()
        for t in threads:
            t.join()
        rss1, cpu1 = rss_and_cpu(kernel.pid)
        watch_ingestd(folder, ingestd)
    finally:
        stop.set()
        kernel.shutdown()
    daemon_cpu = sum(last - first for first, last in ingestd.values())
    peak = max(r for _, r, _ in samples) if samples else rss1
    # The backlog's memory is the kernel's while its cells run; reading all 10,000 runs
    # into one DataFrame afterwards (``nbtrack.runs``) is a peak of its own.
    backlog = max((r for t, r, _ in samples if t <= cells_done), default=rss0)
    print(f"\nrate. {cells:,} tracked cells (10 params, 10 metrics) back to back in one kernel"
          f"{'' if summary else ', summaries off'}")  # fmt: skip
    print(f"  cells        {cells / cells_s:8.0f} cells/s ({cells_s / cells * 1000:.2f} ms each)")
    print(f"  into store   {cells / (all_in - begin):8.0f} runs/s (last run stored "
          f"{all_in - returned:.1f} s after the last cell returned)  target >= 200 runs/s  "
          f"{verdict(cells / (all_in - begin) >= 200)}")  # fmt: skip
    print(f"  kernel CPU   {cpu1 - cpu0:8.1f} s for {cells:,} runs "
          f"({(cpu1 - cpu0) / cells * 1000:.1f} ms per run, cells included)")  # fmt: skip
    print(f"  ingestd CPU  {daemon_cpu:8.1f} s for {cells:,} runs "
          f"({daemon_cpu / cells * 1000:.1f} ms per run; the store's ingestion process, "
          f"{len(ingestd)} seen)")  # fmt: skip
    print(f"  kernel RSS   {rss0 / 2**20:8.0f} MB before, peak while the cells ran "
          f"{backlog / 2**20:.0f} MB (+{(backlog - rss0) / 2**20:.0f} MB)  target < +100 MB  "
          f"{verdict(backlog - rss0 < 100 * 2**20)}; with nbtrack.runs() of every run after "
          f"them {peak / 2**20:.0f} MB")  # fmt: skip
    print(f"  nbtrack.runs() right after the last cell: {runs_s * 1000:.0f} ms, "
          f"{seen:,} of {cells + 1:,} runs  target < 200 ms, all  "
          f"{verdict(runs_s < 0.2 and seen == cells + 1)}")  # fmt: skip
    print(latency_line("count(*)", counts) + "  (another process, polled every 1 s)")


# ---------------------------------------------------------------- backlog
BACKLOG_CHILD = """
import json, os, sys, tempfile, time
from nbtrack import ingest
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
def rss():
    return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = int(sys.argv[1])
project = resolve_project(tempfile.mkdtemp())
w = RunWriter.start(project, kind="cell", name="warm", params={"a": 1})
w.finish("finished")
w.wait(60)  # DuckDB, Arrow and the store are loaded: the figures are the backlog's
writers = []
for i in range(n):
    w = RunWriter.start(project, kind="cell", name="rate",
                        params={f"p{k}": i + k for k in range(10)}, background=False)
    w.log_metrics({f"m{k}": k / 10 for k in range(10)})
    w.finish("finished")
    writers.append(w)
rss0, t = rss(), time.perf_counter()
peak, left = rss0, list(writers)
while left:
    done = ingest.ingest_writers(left)
    left = [w for w in left if w not in done]
    peak = max(peak, rss())
print(json.dumps({"seconds": time.perf_counter() - t, "rss": peak - rss0}))
"""


def bench_backlog(runs: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", BACKLOG_CHILD, str(runs)],
        env=project_env(Path(tempfile.mkdtemp()) / ".nbtrack"),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    got = json.loads(out)
    rate = runs / got["seconds"]
    print(f"\nbacklog. {runs:,} spooled runs (10 params, 10 metrics) ingested by one process")
    print(f"  ingestion    {rate:8.0f} runs/s ({got['seconds']:.1f} s)  target >= 200 runs/s  "
          f"{verdict(rate >= 200)}")  # fmt: skip
    print(f"  memory       +{got['rss'] / 2**20:.0f} MB while ingesting")


# ---------------------------------------------------------------- storm
STORM_CELL = "%%track storm\nlr = 0.1\nfor _s in range({points}):\n    nbtrack.log_metric('loss', 1.0 / (_s + 1))"


# Each read of the server and the lister, timed by part, one JSON line a read in the
# file named by NBTRACK_BENCH_TRACE: the spool scan, the wait for the store's turn,
# the catch-up (and how many ended spools it found), the read, the release (detach).
TRACE = """
import json, os, threading, time
from contextlib import contextmanager
from nbtrack import client as _client, spools as _spools
try:
    from nbtrack import catchup as _catchup
except ImportError:  # before stop 28 the catch-up was in spools
    _catchup = _spools
from nbtrack.store.connection import _turn_for
_trace_file = open(os.environ["NBTRACK_BENCH_TRACE"], "a", buffering=1)
_trace = threading.local()
def _timed(name, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            rec = getattr(_trace, "rec", None)
            if rec is not None:
                rec[name] = rec.get(name, 0.0) + time.perf_counter() - t
    return wrapper
_ended = _catchup.ended
def _ended_counted(*args):
    todo = _ended(*args)
    rec = getattr(_trace, "rec", None)
    if rec is not None:
        rec["spools"] = len(todo)
    return todo
_catchup.ended = _timed("scan", _ended_counted)
_catchup.catch_up = _timed("catch_up", _catchup.catch_up)
_spools.read_spool = _timed("spool_reads", _spools.read_spool)
if hasattr(_catchup, "wait_in"):  # a reader hands other processes' runs over (and waits)
    _catchup.wait_in = _timed("handoff", _catchup.wait_in)
from nbtrack.store import Store as _Store, writes as _writes
_Store.ingest = _timed("transaction", _Store.ingest)
_writes.write = _timed("writes", _writes.write)
_writes.positions = _timed("positions", _writes.positions)
from nbtrack.store import connection as _connection
_connection.Connection._attach = _timed("attach", _connection.Connection._attach)
_connection._Attachment.detach = _timed("detach", _connection._Attachment.detach)
_reading = _client.Client._reading
@contextmanager
def _traced(self):
    rec = _trace.rec = {}
    t0 = time.perf_counter()
    with _reading(self):
        rec["turn"] = _turn_for(self.project.db_path).waited
        t = time.perf_counter()
        yield
        rec["read"] = time.perf_counter() - t
        t = time.perf_counter()
    rec["release"] = time.perf_counter() - t
    rec["total"] = time.perf_counter() - t0
    rec["at"] = time.time()
    _trace.rec = None
    _trace_file.write(json.dumps(rec) + "\\n")
_client.Client._reading = _traced
"""

SERVER = (
    TRACE
    + """
import faulthandler, sys
from jupyter_server.serverapp import ServerApp, main
_signal_stop = ServerApp._signal_stop
def _stacks_if_slow(self, sig, frame):
    # Where every thread is if the server is still up 3 s after SIGTERM.
    stacks = open(os.environ["NBTRACK_BENCH_TRACE"] + ".stacks", "w")
    faulthandler.dump_traceback_later(3.0, file=stacks)
    _signal_stop(self, sig, frame)
ServerApp._signal_stop = _stacks_if_slow
sys.exit(main())
"""
)

LISTER = (
    TRACE
    + """
import json, sys, time
from pathlib import Path
from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
try:  # a long-lived reader's imports are behind it (nbtrack >= the fair turn)
    from nbtrack.spools import warm_up
    warm_up()
except ImportError:
    pass
stop, waits = Path(sys.argv[1]), []
while not stop.exists():
    t = time.perf_counter()
    Client(resolve_project()).list_runs(RunQuery(kind=None, limit=50))
    waits.append(time.perf_counter() - t)
    time.sleep(0.05)
print(json.dumps(waits))
"""
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed_cli(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, bool]:
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "nbtrack", *args], cwd=cwd, env=env, capture_output=True
    )
    return time.perf_counter() - t, done.returncode == 0


def start_server(
    folder: Path, env: dict[str, str], trace: Path
) -> tuple[subprocess.Popen[bytes], str, str]:
    """A Jupyter server with nbtrack's REST API, its reads traced; (process, base url, token)."""
    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={folder}", "--ServerApp.jpserver_extensions=nbtrack=True"],
        env={**env, "NBTRACK_BENCH_TRACE": str(trace)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return server, f"http://127.0.0.1:{port}/", token


def slowest(trace: Path, n: int = 3) -> list[str]:
    """The ``n`` slowest traced reads, by part."""
    try:
        recs = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    except OSError:
        return []
    recs.sort(key=lambda r: -r.get("total", 0.0))
    ms = lambda r, k: f"{r.get(k, 0.0) * 1000:.0f}"  # noqa: E731
    return [
        f"{ms(r, 'total')} ms = scan {ms(r, 'scan')} ({r.get('spools', 0)} ended spools), "
        f"hand-off {ms(r, 'handoff')}, turn {ms(r, 'turn')}, catch-up {ms(r, 'catch_up')} (transaction "
        f"{ms(r, 'transaction')}: positions {ms(r, 'positions')}, spool reads "
        f"{ms(r, 'spool_reads')}, writes {ms(r, 'writes')}), read {ms(r, 'read')}, "
        f"release {ms(r, 'release')}; in all, attaching {ms(r, 'attach')}, detaching "
        f"{ms(r, 'detach')}"
        for r in recs[:n]
    ]


def bench_storm(kernels: int, cells: int, points: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-storm-"))
    env = project_env(folder / ".nbtrack")
    env.pop("NBTRACK_STORE")
    subprocess.run([sys.executable, "-m", "nbtrack", "ls"], cwd=folder, env=env, check=True)
    traces = {"rest": folder / "trace-rest.jsonl", "ls": folder / "trace-ls.jsonl"}
    server, base, token = start_server(folder, env, traces["rest"])
    # A second server, polled too, gets SIGTERM halfway through the cells: it must be
    # gone within 5 s while the store is as busy as it gets.
    victim, victim_base, victim_token = start_server(folder, env, folder / "trace-victim.jsonl")
    stop_s: list[float] = []
    lat: dict[str, list[float]] = {"ls": [], "ls (CLI)": [], "rest": [], "export": []}
    failures: dict[str, int] = dict.fromkeys(lat, 0)
    stop = threading.Event()

    def get(url: str, auth: str = token) -> None:
        req = urllib.request.Request(url, headers={"Authorization": f"token {auth}"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            resp.read()

    def victim_loop() -> None:
        while victim.poll() is None and not stop.is_set():
            with contextlib.suppress(OSError):
                get(f"{victim_base}nbtrack/api/runs?path=&limit=100&offset=0", victim_token)
            stop.wait(0.1)

    def ls_loop() -> None:
        # What `nbtrack ls` does, timed inside a long-lived process (a CLI process adds
        # its interpreter start, measured apart below as a baseline).
        lister = subprocess.Popen(
            [sys.executable, "-c", LISTER, str(folder / "stop")],
            cwd=folder, env={**env, "NBTRACK_BENCH_TRACE": str(traces["ls"])},
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        while not stop.is_set():
            s, ok = timed_cli(["ls", "--json", "--kind", "all", "--limit", "50"], folder, env)
            lat["ls (CLI)"].append(s)
            failures["ls (CLI)"] += not ok
        (folder / "stop").touch()
        out, _ = lister.communicate()
        lat["ls"].extend(json.loads(out))

    def rest_loop() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                get(f"{base}nbtrack/api/runs?path=&limit=100&offset=0")
            except OSError:
                failures["rest"] += 1
            lat["rest"].append(time.perf_counter() - t)
            stop.wait(0.1)

    def export_loop() -> None:
        while not stop.wait(3.0):
            s, ok = timed_cli(["export", "last", "-o", str(folder / "x.zip")], folder, env)
            lat["export"].append(s)
            failures["export"] += not ok

    started: list[BenchKernel] = []
    try:
        for url, auth in ((base, token), (victim_base, victim_token)):
            deadline = time.monotonic() + 60
            while True:
                try:
                    get(f"{url}api/status", auth)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            get(f"{url}nbtrack/api/runs?path=&limit=100&offset=0", auth)  # its first call
        startup = [timed_cli(["--help"], folder, env)[0] for _ in range(3)]
        started = [BenchKernel(folder) for _ in range(kernels)]
        for k in started:
            k.run("%load_ext nbtrack\nimport nbtrack")
        readers = [
            threading.Thread(target=f) for f in (ls_loop, rest_loop, export_loop, victim_loop)
        ]
        for t in readers:
            t.start()
        code = STORM_CELL.format(points=points)
        msg_ids = []
        begin = time.monotonic()
        for k in started:
            msg_ids.append([k.kc.execute(code) for _ in range(cells)])
        for i, (k, ids) in enumerate(zip(started, msg_ids, strict=True)):
            pending = set(ids)
            while pending:
                reply = k.kc.get_shell_msg(timeout=1800)
                pending.discard(reply["parent_header"].get("msg_id"))
                if i == 0 and len(pending) == cells // 2 and victim.poll() is None:
                    t = time.monotonic()
                    victim.terminate()  # SIGTERM, halfway through the first kernel's cells
                    try:
                        victim.wait(60)
                    except subprocess.TimeoutExpired:
                        victim.kill()
                        victim.wait()
                    stop_s.append(time.monotonic() - t)
        cells_done = time.monotonic() - begin
        from nbtrack.client import Client
        from nbtrack.project import resolve_project

        client = Client(resolve_project(folder))
        # The readers go on until every run is in (the kernels' ingestion after their
        # last cell is part of the storm), and a few seconds more.
        deadline = time.monotonic() + 600
        want = kernels * cells
        while time.monotonic() < deadline:
            n = client.sql("SELECT count(*) FROM runs WHERE name='storm' AND status='finished'")
            if n[1][0][0] >= want:
                break
            time.sleep(1.0)
        stored = time.monotonic() - begin
        time.sleep(5.0)
        stop.set()
        for t in readers:
            t.join()
        _, rows = client.sql("SELECT count(*), count(DISTINCT run_id) FROM runs WHERE name='storm'")
        _, pts = client.sql(
            "SELECT count(*), count(DISTINCT (run_id, step)) FROM metrics WHERE key = 'loss'"
        )
    finally:
        stop.set()
        for k in started:
            k.shutdown()
        server.terminate()
        server.wait(30)
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    print(f"\nstorm. {kernels} kernels x {cells} cells x {points:,} points (cells {cells_done:.0f} s, "
          f"all stored {stored:.0f} s), with ls, REST and export readers")  # fmt: skip
    for name in lat:
        print(latency_line(name, lat[name]) + f"   failures {failures[name]}")
    print(f"  (a CLI process's own start, `nbtrack --help`: median {statistics.median(startup):.2f} s;"
          " ls (CLI) and export include it)")  # fmt: skip
    everything = [v for k in ("ls", "rest") for v in lat[k]]
    ok = bool(everything) and max(everything) <= 2.0 and pct(everything, 0.99) < 1.0
    print(f"  runs stored {rows[0][0]:,} (distinct {rows[0][1]:,}) of {kernels * cells:,}; "
          f"points {pts[0][0]:,} (distinct {pts[0][1]:,}) of {kernels * cells * points:,}")  # fmt: skip
    print(f"  target: every ls and REST wait <= 2 s, p99 < 1 s  {verdict(ok)}")
    # The issue's words, read literally: CLI processes too (their interpreter's start
    # on 2 cores shared with the kernels included).
    every = [v for vs in lat.values() for v in vs]
    print(f"  the same over every reader, CLI ls and export included: max {max(every or [0]):.2f} s"
          f"  {verdict(bool(every) and max(every) <= 2.0)}")  # fmt: skip
    for name, trace in traces.items():
        for line in slowest(trace):
            print(f"  slowest {name}: {line}")
    if stop_s:
        print(f"  a second server, SIGTERM halfway through the cells: gone in {stop_s[0]:.2f} s"
              f"  target <= 5 s  {verdict(stop_s[0] <= 5.0)}")  # fmt: skip
    return {
        "ls_max": max(lat["ls"] or [0.0]),
        "rest_max": max(lat["rest"] or [0.0]),
        "ls_p50": statistics.median(lat["ls"] or [0.0]),
        "rest_p50": statistics.median(lat["rest"] or [0.0]),
        "ls_p99": pct(lat["ls"] or [0.0], 0.99),
        "rest_p99": pct(lat["rest"] or [0.0], 0.99),
        "export_max": max(lat["export"] or [0.0]),
        "sigterm": stop_s[0] if stop_s else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="points,rate,backlog,storm")
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--no-summary", action="store_true", help="rate: no summary widgets")
    parser.add_argument("--kernels", type=int, default=8)
    parser.add_argument("--storm-cells", type=int, default=50)
    parser.add_argument("--storm-points", type=int, default=1000)
    parser.add_argument("--storm-repeat", type=int, default=1, help="storm trials (the median)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if "points" in only:
        bench_points(args.points, args.repeat, args.before)
    if "rate" in only:
        bench_rate(args.cells, summary=not args.no_summary)
    if "backlog" in only:
        bench_backlog(args.backlog)
    if "storm" in only:
        trials = [
            bench_storm(args.kernels, args.storm_cells, args.storm_points)
            for _ in range(args.storm_repeat)
        ]
        if len(trials) > 1:
            print(f"\nstorm, median of {len(trials)} trials:")
            for key in trials[0]:
                print(f"  {key:<10} {statistics.median(t[key] for t in trials) * 1000:8.0f} ms"
                      f"   (each: {', '.join(f'{t[key] * 1000:.0f}' for t in trials)})")  # fmt: skip
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
