"""Server time of the panel's requests with stores of 1,000 / 10,000 / 100,000 runs.

Each store holds runs with 20 params and 20 metrics. A real ``jupyter server`` (with
the nbtrack extension) serves them; we time over HTTP, from request to last byte:

- ``GET nbtrack/api/runs`` first page, as the panel asks for it (limit 100, newest first)
- ``GET nbtrack/api/diff`` of two runs
- baseline, measured in the same run: ``GET api/status``, Jupyter's own cheapest
  authenticated route (the floor of any request to this server), and the same
  ``list_runs`` / ``diff`` called in-process (what HTTP + JSON add).

Targets at 100,000 runs: first page < 100 ms, diff < 50 ms.

    python benchmarks/bench_server.py [--sizes 1000 10000 100000] [--repeat 15]

Stores are bulk-loaded through ``Store.load_runs`` into a temporary folder, or into
``--dir DIR`` where they are kept and reused by the next run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

N_PARAMS = 20
N_METRICS = 20
CHUNK = 5_000


def build_store(folder: Path, n_runs: int) -> list[str]:
    """A store of ``n_runs`` cell runs (20 params, 20 metrics each); returns run ids oldest first."""
    from nbtrack.client import Client
    from nbtrack.project import resolve_project

    (folder / ".nbtrack").mkdir(parents=True, exist_ok=True)
    client = Client(resolve_project(start=folder))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids: list[str] = []
    for first in range(0, n_runs, CHUNK):
        dump: dict[str, list[dict[str, Any]]] = {
            "runs": [],
            "params": [],
            "metrics": [],
            "metric_latest": [],
        }
        for i in range(first, min(first + CHUNK, n_runs)):
            run_id = f"{i:08x}" + secrets.token_hex(12)
            ids.append(run_id)
            started = start + timedelta(seconds=i)
            dump["runs"].append(
                {
                    "run_id": run_id,
                    "kind": "cell",
                    "name": f"train{i % 7}",
                    "status": "finished" if i % 13 else "failed",
                    "started_at": started.isoformat(),
                    "ended_at": (started + timedelta(seconds=1 + i % 5)).isoformat(),
                    "notebook_path": "train.ipynb",
                    "cell_id": "cell-1",
                    "execution_count": i % 100,
                    "source": f"lr = {i % 10 / 100}\n",
                    "spool_offset": 0,
                    "updated_at": started.isoformat(),
                }
            )
            for k in range(N_PARAMS):
                value = (i * (k + 1)) % 97 / 10
                dump["params"].append(
                    {
                        "run_id": run_id,
                        "key": f"p{k:02d}",
                        "value": repr(value),
                        "value_num": value,
                        "value_text": repr(value),
                        "source": "auto",
                    }
                )
            for k in range(N_METRICS):
                value = ((i + 3) * (k + 7)) % 1009 / 1009
                point = {"run_id": run_id, "key": f"m{k:02d}", "step": 0, "value": value}
                dump["metrics"].append({**point, "ts": started.timestamp()})
                dump["metric_latest"].append({**point, "ts": started.timestamp(), "n": 1})
        client.load_runs(dump)
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median_ms(url: str, token: str, repeat: int) -> float:
    """Median wall time of ``repeat`` GETs (after one warm-up), in milliseconds."""
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request) as response:
        response.read()
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            response.read()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def median_call_ms(func: Any, repeat: int) -> float:
    func()
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        func()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None, help="keep the stores here")
    args = parser.parse_args()

    from nbtrack.client import Client
    from nbtrack.models import RunQuery
    from nbtrack.project import resolve_project

    root = args.dir or Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    run_ids: dict[int, list[str]] = {}
    for size in args.sizes:
        folder = root / f"runs{size}"
        begin = time.perf_counter()
        if (folder / ".nbtrack" / "runs.duckdb").exists():
            client = Client(resolve_project(start=folder))
            frame = client.runs_frame(sort="started_at", descending=False)
            run_ids[size] = list(frame["run_id"])
            print(f"store of {size:,} runs: reused ({folder})")
        else:
            run_ids[size] = build_store(folder, size)
            print(f"store of {size:,} runs: built in {time.perf_counter() - begin:.1f} s")

    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NBTRACK_STORE", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions=nbtrack=True",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                median_ms(f"{base}api/status", token, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        floor = median_ms(f"{base}api/status", token, args.repeat)
        print(
            f"\nbaseline GET api/status (Jupyter's own): {floor:.1f} ms (median of {args.repeat})"
        )
        print(
            f"\n{'runs':>8} | {'first page':>10} | {'in-process':>10} | "
            f"{'diff':>7} | {'in-process':>10} | vs api/status (page, diff)"
        )
        for size in args.sizes:
            folder = f"runs{size}"
            ids = run_ids[size]
            page = median_ms(
                f"{base}nbtrack/api/runs?path={folder}&limit=100&offset=0", token, args.repeat
            )
            diff = median_ms(
                f"{base}nbtrack/api/diff?path={folder}&a={ids[-2]}&b={ids[-1]}", token, args.repeat
            )
            client = Client(resolve_project(start=root / folder))
            page_direct = median_call_ms(
                lambda c=client: c.list_runs(RunQuery(limit=100), safe=True), args.repeat
            )
            diff_direct = median_call_ms(
                lambda c=client, i=ids: c.diff(i[-2], i[-1]).to_dict(), args.repeat
            )
            print(
                f"{size:>8,} | {page:>7.1f} ms | {page_direct:>7.1f} ms | {diff:>4.1f} ms | "
                f"{diff_direct:>7.1f} ms | x{page / floor:.1f}, x{diff / floor:.1f}"
            )
        print("\ntargets at 100,000 runs: first page < 100 ms, diff < 50 ms")
    finally:
        server.terminate()
        server.wait(timeout=20)
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
