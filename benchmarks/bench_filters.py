"""Cost of checking a run filter (issue 14), against listing runs with it, in the same run.

    .venv/bin/python benchmarks/bench_filters.py [--runs 2000] [--repeat 200]
                                                 [--sqlglot-python PATH]

a. ``filters.compile_where`` on a filter the panel sends, each text new (DuckDB's
   ``json_serialize_sql`` parse + allow-list walk + rendering) and the same text again
   (the parse is remembered per process), per call;
b. a page of runs through ``Client.list_runs`` with that filter, on a store of
   ``--runs`` runs with 5 params and 5 metrics each, vs the same page without a filter:
   what the check adds to a request (target: under 5 % of the filtered page);
c. if ``--sqlglot-python`` names an interpreter with sqlglot, parsing the same texts
   with ``sqlglot.parse_one(..., dialect="duckdb")`` there, for comparison (sqlglot is
   not a dependency).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILTER = "lr >= {i}e-4 AND acc > 0.5 AND name LIKE 'r%' AND status IN ('finished', 'failed')"
SQLGLOT = """
import statistics, sys, time, sqlglot
n = int(sys.argv[1]); times = []
for i in range(n):
    t = time.perf_counter()
    sqlglot.parse_one("SELECT 1 WHERE " + sys.argv[2].format(i=i), dialect="duckdb")
    times.append(time.perf_counter() - t)
print(statistics.median(times) * 1e6)
"""


def median_us(fn, n: int) -> float:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def make_store(folder: Path, runs: int):
    from nbtrack.client import Client
    from nbtrack.project import resolve_project
    from nbtrack.tracking import RunWriter

    project = resolve_project(folder)
    for i in range(runs):
        params = {f"p{k}": i * k for k in range(4)} | {"lr": i * 1e-4}
        w = RunWriter.start(project, name=f"r{i}", params=params, param_source="auto")
        w.log_metrics({f"m{k}": i / (k + 1) for k in range(4)} | {"acc": (i % 100) / 100})
        w.finish()
    w.wait()
    return Client(project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--sqlglot-python", help="an interpreter that has sqlglot installed")
    args = parser.parse_args()

    from nbtrack.models import RunQuery
    from nbtrack.store.filters import compile_where

    columns = ["lr", "acc", "name", "status", "params.lr", "metrics.acc"]
    compile_where("lr > 0", columns, strict=True)  # the parser connection, once per process
    fresh = median_us(
        lambda i: compile_where(FILTER.format(i=i), columns, strict=True), args.repeat
    )
    again = median_us(
        lambda i: compile_where(FILTER.format(i=0), columns, strict=True), args.repeat
    )
    print(f"a. check a new filter: {fresh:8.0f} µs   the same filter again: {again:6.0f} µs")

    with tempfile.TemporaryDirectory() as tmp:
        client = make_store(Path(tmp), args.runs)
        n = max(5, args.repeat // 20)
        plain = median_us(lambda i: client.list_runs(RunQuery(limit=50), safe=True), n)
        where = FILTER.format(i=1)
        text = median_us(
            lambda i: client.list_runs(RunQuery(where=where, text="r", limit=50), safe=True), n
        )
        bare = median_us(lambda i: client.list_runs(RunQuery(text="r", limit=50), safe=True), n)
    print(
        f"b. page of 50 of {args.runs} runs: no filter {plain / 1000:6.1f} ms, text only "
        f"{bare / 1000:6.1f} ms, text + where {text / 1000:6.1f} ms; the check is "
        f"{fresh / text * 100:4.1f} % of the filtered page (target < 5 %)"
    )
    if args.sqlglot_python:
        out = subprocess.run(
            [args.sqlglot_python, "-c", SQLGLOT, str(args.repeat), FILTER],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        print(f"c. sqlglot.parse_one of the same texts: {float(out.stdout):8.0f} µs per call")
    print(f"(load average {' '.join(f'{x:.1f}' for x in __import__('os').getloadavg())})")


if __name__ == "__main__":
    sys.exit(main())
