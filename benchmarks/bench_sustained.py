"""Does ingestion keep up with a sustained stream of runs? (issue 14)

    .venv/bin/python benchmarks/bench_sustained.py [--runs 10000] [--pace 200]

One process records ``--runs`` runs (10 parameters and 10 metrics each) at ``--pace``
runs a second, as a kernel's tracked cells do (``RunWriter`` with background
ingestion: the spools go to the store's one ingestion process), while this script
samples the backlog (spool files not yet brought in) and the memory and CPU of both
processes every 0.25 s. Then the producer calls ``nbtrack.runs()`` at once, as the
next cell would.

Why not a kernel: a real kernel here runs ~56 tracked cells a second (each cell's own
capture costs ~10 ms on this machine; `bench_writepath.py rate` measures that), so it
cannot show whether ingestion keeps up with 200. The producer writes the same spools
with none of a cell's capture.

Targets: the backlog stays bounded (the last run stored within a second or two of
the last one written), the backlog's memory under 100 MB, and ``nbtrack.runs()``
under 200 ms with every run in it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_writepath import TRACE, slowest  # the benchmarks folder is on sys.path

VENV_BIN = str(Path(sys.executable).parent)

# (TRACE times each read by part: the spool scan, the hand-off, the turn, the catch-up...)
PRODUCER = (
    TRACE
    + """
import json, os, sys, time
import nbtrack
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

def rss():
    return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

n, pace = int(sys.argv[1]), float(sys.argv[2])
project = resolve_project()
w = RunWriter.start(project, kind="cell", name="warm", params={"a": 1}, background=True)
w.finish("finished")
assert len(nbtrack.runs(limit=None)) == 1  # the store, DuckDB and Arrow loaded here too
print("ready", flush=True)
sys.stdin.readline()
rss0, cpu0, t0, late = rss(), time.process_time(), time.perf_counter(), 0.0
for i in range(n):
    due = t0 + i / pace
    now = time.perf_counter()
    if now < due:
        time.sleep(due - now)
    else:
        late = max(late, now - due)
    w = RunWriter.start(project, kind="cell", name="rate", background=True,
                        params={f"p{k}": i + k for k in range(10)})
    w.log_metrics({f"m{k}": (i + k) / 10 for k in range(10)})
    w.finish("finished")
produced, cpu = time.perf_counter() - t0, time.process_time() - cpu0
t, c = time.perf_counter(), time.process_time()
frame = nbtrack.runs(limit=None)
runs_s, runs_cpu = time.perf_counter() - t, time.process_time() - c
t = time.perf_counter()
again = nbtrack.runs(limit=None)  # the usual time: nothing left to bring in
usual_s = time.perf_counter() - t
print(json.dumps({"produced": produced, "late": late, "cpu": cpu, "runs_s": runs_s,
                  "seen": len(frame), "rss": rss() - rss0, "runs_cpu": runs_cpu,
                  "usual_s": usual_s}), flush=True)
"""
)


def rss_and_cpu(pid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE"), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--pace", type=float, default=200.0, help="runs a second")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-sustained-"))
    store = folder / ".nbtrack"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JPY_"))}
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    trace = folder / "trace.jsonl"
    env["NBTRACK_BENCH_TRACE"] = str(trace)
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(args.runs), str(args.pace)],
        cwd=folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert producer.stdout is not None and producer.stdin is not None
    assert producer.stdout.readline().strip() == "ready"
    stop = threading.Event()
    backlog: list[tuple[float, int]] = []
    daemon: dict[int, list[float]] = {}  # pid -> [CPU at first sight, last CPU]
    daemon_rss: list[int] = []

    def watch() -> None:
        while not stop.is_set():
            try:
                spools = sum(1 for p in (store / "spool").iterdir() if p.suffix == ".spool")
            except OSError:
                spools = 0
            backlog.append((time.monotonic(), spools))
            try:
                pid = int((store / "ingestd.lock").read_text())
                rss, cpu = rss_and_cpu(pid)
                daemon.setdefault(pid, [cpu, cpu])[1] = cpu
                daemon_rss.append(rss)
            except (OSError, ValueError):
                pass
            stop.wait(0.25)

    watcher = threading.Thread(target=watch)
    watcher.start()
    begin = time.monotonic()
    producer.stdin.write("go\n")
    producer.stdin.flush()
    got = json.loads(producer.stdout.readline())
    written = begin + got["produced"]
    while backlog and backlog[-1][1] > 0 and time.monotonic() - written < 300:
        time.sleep(0.05)
    drained = time.monotonic()
    stop.set()
    watcher.join()
    producer.wait()
    during = [n for t, n in backlog if t <= written]
    daemon_cpu = sum(last - first for first, last in daemon.values())
    rate = args.runs / got["produced"]
    print(
        f"\nsustained. {args.runs:,} runs (10 params, 10 metrics) at {args.pace:.0f} runs/s "
        f"from one process, ingested by the store's ingestion process"
    )
    print(
        f"  written      {rate:8.0f} runs/s over {got['produced']:.1f} s "
        f"(the producer at most {got['late'] * 1000:.0f} ms behind its pace; its CPU "
        f"{got['cpu'] / args.runs * 1000:.2f} ms a run)"
    )
    print(
        f"  backlog      median {statistics.median(during or [0]):.0f}, max {max(during or [0])} "
        f"spooled runs while writing; the last run stored {drained - written:.2f} s after "
        f"the last one was written  target: bounded, ~1 s"
    )
    print(
        f"  ingestd      CPU {daemon_cpu / args.runs * 1000:.2f} ms a run "
        f"({len(daemon)} process(es)), peak memory {max(daemon_rss or [0]) / 2**20:.0f} MB"
    )
    print(
        f"  producer     memory +{got['rss'] / 2**20:.0f} MB  target < +100 MB  "
        f"{'PASS' if got['rss'] < 100 * 2**20 else 'MISS'}"
    )
    ok = got["runs_s"] < 0.2 and got["seen"] == args.runs + 1
    print(
        f"  nbtrack.runs() right after the last run: {got['runs_s'] * 1000:.0f} ms "
        f"(CPU {got['runs_cpu'] * 1000:.0f} ms), "
        f"{got['seen']:,} of {args.runs + 1:,} runs  target < 200 ms, all  "
        f"{'PASS' if ok else 'MISS'}"
    )
    # The producer's reads: the warm-up's, the one right after the last run, the same again.
    after = [line for line in trace.read_text().splitlines() if line.strip()][-2]
    tmp = folder / "after.jsonl"
    tmp.write_text(after + "\n")
    print(f"    of it: {slowest(tmp, 1)[0]}")
    print(f"    the same call again: {got['usual_s'] * 1000:.0f} ms")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
