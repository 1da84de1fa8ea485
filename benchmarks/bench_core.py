"""Speed of the core (issue 2), each figure against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench_core.py [--only a,b,c,d,e] [--cells 200] [--points 1000000]
                                              [--size-mib 1024] [--runs 10000] [--repeat 5]
                                              [--mlflow-python PATH]

a. ``%%track`` on a trivial cell vs the same cell untracked, median over ``--cells``
   executions in one real kernel, timed inside the kernel around ``run_cell`` and from
   the client around each execute request (target: under 5 ms of overhead);
b. ``nbtrack.log_metric`` in a tight loop inside a tracked cell, including the flush
   to the spool at the end of the cell (durable), vs the same loop calling an empty
   function (target: at least 1,000,000 points/s);
c. hashing a 1 GiB file vs ``cat FILE > /dev/null``, page cache warm (target: at least
   80% of cat's speed); re-checking the unchanged file through the stat cache vs an
   ``os.stat`` (target: no byte read);
d. ``nbtrack.runs()`` and ``nbtrack ls --json`` over a store of 10,000 runs with 10
   params and 10 metrics each (target: under 200 ms), and the top 10 runs by a metric
   (target: under 50 ms), vs reading the bare runs table with DuckDB;
e. if ``mlflow`` is importable here (or ``--mlflow-python`` names an interpreter that
   has it), the same workloads through MLflow on a local sqlite store, and the ratios.
   MLflow is not a dependency: install it in a separate venv to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

VENV_BIN = str(Path(sys.executable).parent)
RESULTS: list[dict[str, Any]] = []


# ---------------------------------------------------------------- reporting
def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report(
    what: str,
    median: str,
    baseline: str,
    ratio: str,
    target: str,
    ok: bool | None,
) -> None:
    """One figure: what, median, the named baseline, the ratio, the target, PASS/MISS."""
    verdict = "-" if ok is None else ("PASS" if ok else "MISS")
    RESULTS.append({"what": what, "median": median, "baseline": baseline, "ratio": ratio,
                    "target": target, "verdict": verdict})  # fmt: skip
    print(f"\n{what}\n  median   {median}\n  baseline {baseline}\n  ratio    {ratio}\n"
          f"  target   {target}   {verdict}", flush=True)  # fmt: skip


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project_env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JPY_"))}
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["NBTRACK_STORE"] = str(store)
    return env


# ---------------------------------------------------------------- a real kernel
class BenchKernel:
    """A python3 kernel in a project folder; runs code and returns what it printed."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=project_env(cwd / ".nbtrack"))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 600) -> str:
        printed: list[str] = []
        errors: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok" or errors:
            raise RuntimeError(f"kernel error running {code[:60]!r}:\n" + "\n".join(errors))
        return "".join(printed)

    def round_trip(self, code: str) -> float:
        """Seconds from sending an execute request to its reply (outputs drained)."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code)
        while True:
            reply = self.kc.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter() - start
        with contextlib.suppress(queue.Empty):
            while True:
                self.kc.get_iopub_msg(timeout=0.001)
        return elapsed

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


KERNEL_SETUP = """
%load_ext nbtrack
import json, statistics, time
import nbtrack
from nbtrack import ingest
from nbtrack.client import Client
from nbtrack.project import resolve_project
_ip = get_ipython()

def _time_cells(codes, n, pause=0.0):
    '''Per code, (wall, main-thread CPU) seconds of n executions, interleaved.'''
    out = {c: [] for c in codes}
    for _ in range(n):
        for c in codes:
            t, cpu = time.perf_counter(), time.thread_time()
            _ip.run_cell(c, store_history=False)
            out[c].append((time.perf_counter() - t, time.thread_time() - cpu))
            time.sleep(pause)
    return out

def _medians(runs):
    return [statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)]
"""

TRIVIAL_CELL = "x = 1"
TRACKED_CELL = "%%track trivial\nx = 1"


def bench_overhead(work: Path, cells: int) -> dict[str, float]:
    """a. %%track on a trivial cell vs untracked, in one real kernel."""
    folder = work / "overhead"
    folder.mkdir()
    kernel = BenchKernel(folder)
    try:
        kernel.run(KERNEL_SETUP)
        kernel.run(f"_time_cells([{TRIVIAL_CELL!r}, {TRACKED_CELL!r}], 5)")  # warm up
        inside = json.loads(
            kernel.run(
                f"_r = _time_cells([{TRIVIAL_CELL!r}, {TRACKED_CELL!r}], {cells})\n"
                "ingest.ingestor().drain(60)\n"
                "print(json.dumps({k: _medians(v) for k, v in _r.items()}))"
            )
        )
        (plain_in, plain_cpu), (tracked_in, tracked_cpu) = (
            inside[TRIVIAL_CELL],
            inside[TRACKED_CELL],
        )
        plain_rt, tracked_rt = [], []
        for _ in range(cells):
            plain_rt.append(kernel.round_trip(TRIVIAL_CELL))
            tracked_rt.append(kernel.round_trip(TRACKED_CELL))
        kernel.run("ingest.ingestor().drain(60)")
        stored = int(
            kernel.run(
                "print(Client(resolve_project()).sql("
                "\"SELECT count(*) FROM runs WHERE name = 'trivial' AND status = 'finished'\")[1][0][0])"
            )
        )
    finally:
        kernel.shutdown()
    over_in = tracked_in - plain_in
    report(
        f"a. %%track overhead on `{TRIVIAL_CELL}`, timed in the kernel around run_cell "
        f"(median of {cells})",
        f"{ms(tracked_in)} tracked",
        f"{ms(plain_in)} the same cell untracked",
        f"{tracked_in / plain_in:.1f}x; overhead {ms(over_in)}",
        "overhead < 5 ms",
        over_in < 0.005,
    )
    print(
        f"  CPU of the kernel's main thread: {ms(tracked_cpu)} tracked, {ms(plain_cpu)} "
        f"untracked, overhead {ms(tracked_cpu - plain_cpu)} (wall minus CPU: waiting for "
        "the GIL or for a core)"
    )
    p_rt, t_rt = statistics.median(plain_rt), statistics.median(tracked_rt)
    report(
        f"a. %%track overhead, execute request round trip from the client (median of {cells})",
        f"{ms(t_rt)} tracked",
        f"{ms(p_rt)} the same cell untracked",
        f"{t_rt / p_rt:.2f}x; overhead {ms(t_rt - p_rt)}",
        "overhead < 5 ms",
        t_rt - p_rt < 0.005,
    )
    expected = 5 + 2 * cells
    print(f"  runs stored: {stored} of {expected} tracked executions", flush=True)
    return {"overhead": over_in}


def bench_log_metric(work: Path, points: int, repeat: int) -> dict[str, float]:
    """b. nbtrack.log_metric in a tight loop, durable at the end of the cell."""
    folder = work / "log_metric"
    folder.mkdir()
    kernel = BenchKernel(folder)
    tracked = f"%%track tight\nfor _i in range({points}):\n    nbtrack.log_metric('loss', 0.5)"
    noop = f"for _i in range({points}):\n    _noop('loss', 0.5)"
    try:
        kernel.run(KERNEL_SETUP + "\ndef _noop(name, value, step=None):\n    pass\n")
        out = json.loads(
            kernel.run(
                f"""
_logged, _base, _proc = [], [], []
for _ in range({repeat}):
    _base.append(_time_cells([{noop!r}], 1)[{noop!r}][0])
    _p = time.process_time()
    _logged.append(_time_cells([{tracked!r}], 1)[{tracked!r}][0])
    _proc.append(time.process_time() - _p)
    ingest.ingestor().drain(120)  # ingest between repetitions, untimed
_n = Client(resolve_project()).sql(
    "SELECT count(*) FROM metrics m JOIN runs r USING (run_id) WHERE r.name = 'tight'")[1][0][0]
print(json.dumps({{"logged": _medians(_logged), "base": _medians(_base),
                  "process_cpu": statistics.median(_proc), "stored": _n}}))
"""
            )
        )
    finally:
        kernel.shutdown()
    (wall, cpu), (base_wall, _) = out["logged"], out["base"]
    rate, base_rate = points / wall, points / base_wall
    report(
        f"b. nbtrack.log_metric('loss', 0.5) x {points:,} in a %%track cell, "
        f"flushed to the spool by the cell's end (median of {repeat})",
        f"{rate:,.0f} points/s ({ms(wall)} for the cell)",
        f"{base_rate:,.0f} calls/s: the same loop calling an empty function ({ms(base_wall)})",
        f"{rate / base_rate:.2f}x the empty call's rate",
        ">= 1,000,000 points/s",
        rate >= 1_000_000,
    )
    print(
        f"  CPU: {points / cpu:,.0f} points per CPU-second of the cell's thread "
        f"({ms(cpu)}); the whole kernel, ingestion thread included, used "
        f"{ms(out['process_cpu'])} during the cell"
    )
    print(f"  points stored in DuckDB afterwards: {out['stored']:,} of {points * repeat:,}")
    return {"points_per_s": rate}


def _bytes_read() -> int:
    for row in Path("/proc/self/io").read_text().splitlines():
        if row.startswith("rchar:"):
            return int(row.split()[1])
    return -1


def bench_hashing(work: Path, size_mib: int, repeat: int) -> dict[str, float]:
    """c. hash_file on a big file vs cat, and the stat-cache re-check vs os.stat."""
    from nbtrack.hashing import StatCache, hash_file

    big = work / "big.bin"
    block = os.urandom(16 << 20)
    with open(big, "wb") as fh:
        for _ in range(size_mib // 16):
            fh.write(block)
    old = time.time() - 60  # outside the "racy" window, so the stat cache keeps it
    os.utime(big, (old, old))
    size = big.stat().st_size
    cat = f"cat '{big}' > /dev/null"
    subprocess.run(cat, shell=True, check=True)  # warm the page cache
    hash_file(big)
    cat_s = median_time(lambda: subprocess.run(cat, shell=True, check=True), repeat)
    hash_s = median_time(lambda: hash_file(big), repeat)
    gib = size / (1 << 30)
    report(
        f"c. hash_file on a {size_mib} MiB file, page cache warm (median of {repeat})",
        f"{ms(hash_s)} ({gib / hash_s:.2f} GiB/s)",
        f"{ms(cat_s)} ({gib / cat_s:.2f} GiB/s): cat FILE > /dev/null",
        f"{cat_s / hash_s:.0%} of cat's speed",
        ">= 80% of cat's speed",
        cat_s / hash_s >= 0.8,
    )
    cache = StatCache()
    first = cache.hash(big)
    probe = _bytes_read()
    probe = _bytes_read() - probe  # what reading /proc/self/io itself adds
    before = _bytes_read()
    recheck_s = median_time(lambda: cache.hash(big), 1000)
    read = _bytes_read() - before - probe
    stat_s = median_time(lambda: os.stat(big), 1000)
    assert cache.hash(big) == first
    report(
        "c. re-checking the unchanged file through StatCache (median of 1000)",
        f"{recheck_s * 1e6:.1f} us, {read} bytes read in 1000 re-checks",
        f"{stat_s * 1e6:.1f} us: os.stat",
        f"{recheck_s / stat_s:.1f}x a stat",
        "a stat, not a read: 0 bytes read",
        read == 0,
    )
    big.unlink()
    return {"hash_ratio": cat_s / hash_s}


# ---------------------------------------------------------------- a store of many runs
def synthetic_dump(runs: int, n_params: int, n_metrics: int) -> dict[str, list[dict[str, Any]]]:
    """Rows of ``runs`` finished cell runs, as Store.dump_runs gives them."""
    start = datetime(2026, 1, 1)
    rows: dict[str, list[dict[str, Any]]] = {
        "runs": [], "params": [], "metrics": [], "metric_latest": [],
    }  # fmt: skip
    for i in range(runs):
        run_id = uuid.UUID(int=i + 1).hex
        began = start + timedelta(seconds=37 * i)
        rows["runs"].append({
            "run_id": run_id, "kind": "cell", "name": f"train{i % 7}", "status": "finished",
            "error": None, "started_at": began.isoformat(),
            "ended_at": (began + timedelta(seconds=5 + i % 11)).isoformat(),
            "notebook_path": "train.ipynb", "cell_id": f"cell{i % 5}", "execution_count": i,
            "source": "lr = 0.01\nfit()", "spool_offset": 0, "updated_at": began.isoformat(),
        })  # fmt: skip
        for k in range(n_params):
            value = round((i * 7919 + k * 104729) % 1000 / 1000, 3)
            rows["params"].append({
                "run_id": run_id, "key": f"p{k}", "value": json.dumps(value),
                "value_num": value, "value_text": json.dumps(value), "source": "auto",
            })  # fmt: skip
        for k in range(n_metrics):
            value = ((i * 48271 + k * 16807) % 100_003) / 100_003
            ts = began.timestamp() + 1
            rows["metrics"].append(
                {"run_id": run_id, "key": f"m{k}", "step": 0, "value": value, "ts": ts}
            )
            rows["metric_latest"].append(
                {"run_id": run_id, "key": f"m{k}", "step": 0, "value": value, "ts": ts, "n": 1}
            )
    return rows


def bench_listing(work: Path, runs: int, repeat: int) -> dict[str, float]:
    """d. nbtrack.runs(), nbtrack ls --json and the top 10 by a metric over many runs."""
    import duckdb

    import nbtrack
    from nbtrack.cli import main as cli_main
    from nbtrack.client import Client
    from nbtrack.models import RunQuery
    from nbtrack.project import resolve_project

    folder = work / "listing"
    folder.mkdir()
    store = folder / ".nbtrack"
    os.environ["NBTRACK_STORE"] = str(store)
    project = resolve_project()
    t = time.perf_counter()
    added = Client(project).load_runs(synthetic_dump(runs, 10, 10))
    print(f"\n  (built a store of {len(added):,} runs in {time.perf_counter() - t:.1f} s)")

    def bare_table() -> None:
        con = duckdb.connect(str(project.db_path))
        try:
            con.execute("SELECT * FROM runs").df()
        finally:
            con.close()

    frame = nbtrack.runs()
    assert len(frame) == runs, len(frame)
    assert sum(c.startswith(("params.", "metrics.")) for c in frame.columns) == 20
    bare = median_time(bare_table, repeat)
    frame_s = median_time(nbtrack.runs, repeat)
    report(
        f"d. nbtrack.runs() over {runs:,} runs x 10 params x 10 metrics (median of {repeat})",
        ms(frame_s),
        f"{ms(bare)}: DuckDB connect + SELECT * FROM runs as a DataFrame + close",
        f"{frame_s / bare:.1f}x",
        "< 200 ms",
        frame_s < 0.2,
    )

    def ls_json(*extra: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = cli_main(["ls", "--json", *extra])
        assert code == 0 and out.getvalue().startswith("{")

    for extra, label in (((), "default page of 50"), (("--limit", "10000"), "all runs")):
        ls_in = median_time(lambda extra=extra: ls_json(*extra), repeat)
        report(
            f"d. nbtrack ls --json {' '.join(extra)} ({label}), in-process (median of {repeat})",
            ms(ls_in),
            f"{ms(bare)}: DuckDB connect + SELECT * FROM runs + close",
            f"{ls_in / bare:.1f}x",
            "< 200 ms",
            ls_in < 0.2,
        )
    cmd = [sys.executable, "-m", "nbtrack", "ls", "--json"]
    env = project_env(store)
    floor = [sys.executable, "-c", "import duckdb"]
    run = subprocess.run
    ls_proc = median_time(lambda: run(cmd, env=env, capture_output=True, check=True), repeat)
    floor_s = median_time(lambda: run(floor, env=env, capture_output=True, check=True), repeat)
    report(
        f"d. `nbtrack ls --json` as a command, interpreter start included (median of {repeat})",
        ms(ls_proc),
        f"{ms(floor_s)}: `python -c 'import duckdb'`",
        f"{ls_proc / floor_s:.1f}x; {ms(ls_proc - floor_s)} above the floor",
        "< 200 ms",
        ls_proc < 0.2,
    )
    top_q = RunQuery(sort="metrics.m0", limit=10)
    page = Client(project).list_runs(top_q)
    values = [r.metrics["m0"] for r in page.runs]
    assert len(values) == 10 and values == sorted(values, reverse=True), values
    top_s = median_time(lambda: Client(project).list_runs(top_q), repeat)
    report(
        f"d. top 10 runs by metrics.m0 of {runs:,} (Client.list_runs, median of {repeat})",
        ms(top_s),
        f"{ms(bare)}: DuckDB connect + SELECT * FROM runs + close",
        f"{top_s / bare:.1f}x",
        "< 50 ms",
        top_s < 0.05,
    )
    return {"runs_frame": frame_s, "ls_json": ls_proc, "top10": top_s}


# ---------------------------------------------------------------- MLflow, when present
MLFLOW_SCRIPT = r"""
import json, os, sqlite3, statistics, sys, time, uuid, logging
logging.disable(logging.WARNING)
import mlflow
from mlflow.tracking import MlflowClient
from mlflow.entities import Metric

work, runs, points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = os.path.join(work, "mlflow.db")
mlflow.set_tracking_uri("sqlite:///" + db)
mlflow.set_experiment("bench")
out = {"version": mlflow.__version__}

def run_once():
    with mlflow.start_run():
        mlflow.log_params({f"p{k}": k / 10 for k in range(10)})
        mlflow.log_metrics({f"m{k}": k / 10 for k in range(10)})
for _ in range(3):
    run_once()
t = []
for _ in range(20):
    s = time.perf_counter(); run_once(); t.append(time.perf_counter() - s)
out["run_10p_10m"] = statistics.median(t)

client = MlflowClient()
with mlflow.start_run() as r:
    n = 300
    s = time.perf_counter()
    for i in range(n):
        mlflow.log_metric("loss", 0.5, step=i)
    out["log_metric_per_s"] = n / (time.perf_counter() - s)
    n = 20_000
    s = time.perf_counter()
    for b in range(0, n, 1000):
        ts = int(time.time() * 1000)
        client.log_batch(r.info.run_id, metrics=[Metric("loss2", 0.5, ts, i) for i in range(b, b + 1000)])
    out["log_batch_per_s"] = n / (time.perf_counter() - s)

# A store of `runs` runs: one template run through the API, cloned row by row in SQL
# (the API needs ~0.15 s a run), then search_runs as a user would call it.
with mlflow.start_run() as tpl:
    mlflow.log_params({f"p{k}": k / 10 for k in range(10)})
    mlflow.log_metrics({f"m{k}": k / 10 for k in range(10)})
con = sqlite3.connect(db)
tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
have = con.execute("SELECT count(*) FROM runs").fetchone()[0]
for table in tables:
    cols = [c[1] for c in con.execute(f"PRAGMA table_info({table})")]
    if "run_uuid" not in cols:
        continue
    rows = con.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", [tpl.info.run_id]).fetchall()
    ri = cols.index("run_uuid")
    vi = cols.index("value") if "value" in cols and table != "tags" else None
    new = []
    for i in range(runs - have):
        rid = uuid.uuid4().hex
        for row in rows:
            row = list(row)
            row[ri] = rid
            if vi is not None:
                v = ((i * 48271 + len(new)) % 100003) / 100003
                row[vi] = v if table != "params" else str(v)
            if table == "runs" and "name" in cols:
                row[cols.index("name")] = f"run{i}"
            if table == "runs" and "artifact_uri" in cols:
                row[cols.index("artifact_uri")] = row[cols.index("artifact_uri")].replace(tpl.info.run_id, rid)
            new.append(tuple(row))
    con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in cols)})", new)
con.commit()
out["runs_in_store"] = con.execute("SELECT count(*) FROM runs").fetchone()[0]
con.close()
exp = mlflow.get_experiment_by_name("bench").experiment_id
s = time.perf_counter()
frame = mlflow.search_runs([exp], max_results=100000)
out["search_all"] = time.perf_counter() - s
out["search_all_rows"] = len(frame)
s = time.perf_counter()
top = client.search_runs([exp], order_by=["metrics.m0 DESC"], max_results=10)
out["search_top10"] = time.perf_counter() - s
print(json.dumps(out))
"""


def bench_mlflow(work: Path, python: str, runs: int, ours: dict[str, float]) -> None:
    """e. The same workloads through MLflow (local sqlite), and our ratio."""
    folder = work / "mlflow"
    folder.mkdir()
    done = subprocess.run(
        [python, "-c", MLFLOW_SCRIPT, str(folder), str(runs), "0"],
        capture_output=True, text=True, timeout=3600, cwd=folder,
    )  # fmt: skip
    if done.returncode != 0:
        print(f"\n  MLflow run failed:\n{done.stderr[-3000:]}")
        return
    m = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n  (MLflow {m['version']}, sqlite store; {m['runs_in_store']:,} runs for search)")
    if "overhead" in ours:
        report(
            "e. recording a run: MLflow start_run + 10 params + 10 metrics + end_run (median of 20)",
            f"{ms(m['run_10p_10m'])} MLflow",
            f"{ms(ours['overhead'])}: %%track overhead (a)",
            f"nbtrack {m['run_10p_10m'] / ours['overhead']:.0f}x faster",
            "nbtrack faster",
            ours["overhead"] < m["run_10p_10m"],
        )
    if "points_per_s" in ours:
        report(
            "e. metric points: MLflow log_metric one call each / log_batch of 1000",
            f"{m['log_metric_per_s']:,.0f} / {m['log_batch_per_s']:,.0f} points/s MLflow",
            f"{ours['points_per_s']:,.0f} points/s: nbtrack.log_metric (b)",
            f"nbtrack {ours['points_per_s'] / m['log_batch_per_s']:.0f}x log_batch",
            "nbtrack faster",
            ours["points_per_s"] > m["log_batch_per_s"],
        )
    if "runs_frame" in ours:
        report(
            f"e. all runs as a DataFrame: mlflow.search_runs over {m['search_all_rows']:,} runs",
            f"{ms(m['search_all'])} MLflow",
            f"{ms(ours['runs_frame'])}: nbtrack.runs() (d)",
            f"nbtrack {m['search_all'] / ours['runs_frame']:.0f}x faster",
            "nbtrack faster",
            ours["runs_frame"] < m["search_all"],
        )
        report(
            "e. top 10 by a metric: MlflowClient.search_runs(order_by metrics.m0 DESC, 10)",
            f"{ms(m['search_top10'])} MLflow",
            f"{ms(ours['top10'])}: Client.list_runs (d)",
            f"nbtrack {m['search_top10'] / ours['top10']:.0f}x faster",
            "nbtrack faster",
            ours["top10"] < m["search_top10"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="a,b,c,d,e", help="which benchmarks (a,b,c,d,e)")
    parser.add_argument("--cells", type=int, default=200, help="executions per cell in (a)")
    parser.add_argument("--points", type=int, default=1_000_000, help="points per loop in (b)")
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in (c)")
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store of (d)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions for the medians")
    parser.add_argument("--mlflow-python", help="an interpreter that has mlflow, for (e)")
    parser.add_argument("--workdir", help="where to put the temporary files (default: a temp dir)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    ours: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        print(f"nbtrack core benchmarks, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        if "a" in only:
            ours |= bench_overhead(work, args.cells)
        if "b" in only:
            ours |= bench_log_metric(work, args.points, args.repeat)
        if "c" in only:
            ours |= bench_hashing(work, args.size_mib, max(3, args.repeat))
        if "d" in only:
            ours |= bench_listing(work, args.runs, max(10, args.repeat))
        if "e" in only:
            python = args.mlflow_python
            if python is None and importlib.util.find_spec("mlflow") is not None:
                python = sys.executable
            if python is None:
                print("\ne. mlflow is not importable here (and no --mlflow-python): skipped")
            else:
                bench_mlflow(work, python, args.runs, ours)
    print("\nsummary")
    for r in RESULTS:
        print(f"  {r['verdict']:<4}  {r['median']:<36}  {r['target']:<22}  {r['what'][:70]}")


if __name__ == "__main__":
    main()
