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

    def watch() -> None:
        while not stop.is_set():
            rss, cpu = rss_and_cpu(kernel.pid)
            samples.append((time.monotonic(), rss, cpu))
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
            "_t = time.perf_counter()\n"
            "_f = nbtrack.runs(limit=None)\n"
            "print(json.dumps([_cells, time.perf_counter() - _t, len(_f)]))"
        )
        returned = time.monotonic()
        cells_s, runs_s, seen = json.loads(out)
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
    finally:
        stop.set()
        kernel.shutdown()
    peak = max(r for _, r, _ in samples) if samples else rss1
    print(f"\nrate. {cells:,} tracked cells (10 params, 10 metrics) back to back in one kernel"
          f"{'' if summary else ', summaries off'}")  # fmt: skip
    print(f"  cells        {cells / cells_s:8.0f} cells/s ({cells_s / cells * 1000:.2f} ms each)")
    print(f"  into store   {cells / (all_in - begin):8.0f} runs/s (last run stored "
          f"{all_in - returned:.1f} s after the last cell returned)  target >= 200 runs/s  "
          f"{verdict(cells / (all_in - begin) >= 200)}")  # fmt: skip
    print(f"  kernel CPU   {cpu1 - cpu0:8.1f} s for {cells:,} runs "
          f"({(cpu1 - cpu0) / cells * 1000:.1f} ms per run, cells included)")  # fmt: skip
    print(f"  kernel RSS   {rss0 / 2**20:8.0f} MB before, peak {peak / 2**20:.0f} MB "
          f"(+{(peak - rss0) / 2**20:.0f} MB)  target < +100 MB  "
          f"{verdict(peak - rss0 < 100 * 2**20)}")  # fmt: skip
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


LISTER = """
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


def bench_storm(kernels: int, cells: int, points: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-storm-"))
    env = project_env(folder / ".nbtrack")
    env.pop("NBTRACK_STORE")
    subprocess.run([sys.executable, "-m", "nbtrack", "ls"], cwd=folder, env=env, check=True)
    port, token = free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={folder}", "--ServerApp.jpserver_extensions=nbtrack=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/"
    lat: dict[str, list[float]] = {"ls": [], "ls (CLI)": [], "rest": [], "export": []}
    failures: dict[str, int] = dict.fromkeys(lat, 0)
    stop = threading.Event()

    def get(url: str) -> None:
        req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=300) as resp:
            resp.read()

    def ls_loop() -> None:
        # What `nbtrack ls` does, timed inside a long-lived process (a CLI process adds
        # its interpreter start, measured apart below as a baseline).
        lister = subprocess.Popen(
            [sys.executable, "-c", LISTER, str(folder / "stop")],
            cwd=folder, env=env, stdout=subprocess.PIPE, text=True,
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
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        get(f"{base}nbtrack/api/runs?path=&limit=100&offset=0")  # the server's first call
        startup = [timed_cli(["--help"], folder, env)[0] for _ in range(3)]
        started = [BenchKernel(folder) for _ in range(kernels)]
        for k in started:
            k.run("%load_ext nbtrack\nimport nbtrack")
        readers = [threading.Thread(target=f) for f in (ls_loop, rest_loop, export_loop)]
        for t in readers:
            t.start()
        code = STORM_CELL.format(points=points)
        msg_ids = []
        begin = time.monotonic()
        for k in started:
            msg_ids.append([k.kc.execute(code) for _ in range(cells)])
        for k, ids in zip(started, msg_ids, strict=True):
            pending = set(ids)
            while pending:
                reply = k.kc.get_shell_msg(timeout=1800)
                pending.discard(reply["parent_header"].get("msg_id"))
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
        bench_storm(args.kernels, args.storm_cells, args.storm_points)


if __name__ == "__main__":
    main()
