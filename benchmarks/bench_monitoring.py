"""Monitoring speed: drift profiles, drift over many versions, the system sampler, autolog.

(a) profile + drift sketches of a 1,000,000-row, 20-column Parquet file on first
    sight (target < 2 s); baseline: DuckDB reading the file once (count per column);
(b) ``nbtrack drift PATH`` over 100 recorded versions of such a file, from stored
    profiles only (target < 200 ms); baseline: loading the 100 profiles;
(c) the system sampler's CPU over an idle run of ``--seconds`` (default 60) at the
    default interval, as % of one core (target < 0.5 %); baseline: the same idle
    wait without a sampler, in the same run;
(d) ``nbtrack.autolog()`` on a GridSearchCV of 50 fits, inside a tracked run, against
    the same search with autolog off, alternated in the same run (target < 2 %).

    PATH=$PWD/.venv/bin:$PATH .venv/bin/python benchmarks/bench_monitoring.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil


def _median(times: list[float]) -> float:
    return statistics.median(times)


def _make_parquet(path: Path, rows: int, shift: float, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    cols = {f"num{i}": rng.normal(shift, 1 + i / 10, rows) for i in range(14)}
    cols.update({f"int{i}": rng.integers(0, 50 + i, rows) for i in range(3)})
    cols.update({f"cat{i}": rng.choice(["a", "b", "c", "d", "e"], rows) for i in range(3)})
    pq.write_table(pa.table(cols), path)


def bench_profile(work: Path, rows: int, repeat: int) -> None:
    import duckdb

    from nbtrack.profile import profile_file

    path = work / "big.parquet"
    _make_parquet(path, rows, 0.0, 1)
    src = f"read_parquet('{path}')"
    base, prof, cpu = [], [], []
    for _ in range(repeat):
        con = duckdb.connect()
        t = time.perf_counter()
        con.execute(f"SELECT {', '.join(f'avg(num{i})' for i in range(14))} FROM {src}")
        base.append(time.perf_counter() - t)
        con.close()
        t, c = time.perf_counter(), time.process_time()
        profile_file(path, "parquet")
        prof.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(
        f"(a) profile + drift sketches, {rows:,} rows x 20 columns: median {_median(prof):.3f} s "
        f"(target < 2 s), CPU {_median(cpu):.3f} s (all threads); one DuckDB scan "
        f"{_median(base):.3f} s; ratio {_median(prof) / _median(base):.1f}x"
    )


def _distinct(profile: dict, i: int) -> dict:
    """A copy of a profile whose sketches differ by one count: every version decodes anew."""
    import copy

    from nbtrack.driftsketch import decode, encode

    out = copy.deepcopy(profile)
    for sketch in out["drift"]["columns"].values():
        if "counts" in sketch and isinstance(sketch["counts"], str):
            counts = decode(sketch["counts"], "i8").copy()
            counts[0] += i
            sketch["counts"] = encode(counts)
    return out


def bench_drift(work: Path, rows: int, versions: int, repeat: int) -> None:
    from nbtrack.client import Client
    from nbtrack.drift import _decoded
    from nbtrack.driftreport import drift_path
    from nbtrack.models import DataVersion
    from nbtrack.profile import profile_file
    from nbtrack.project import resolve_project
    from nbtrack.tracking import RunWriter

    project = work / "project"
    (project / ".nbtrack").mkdir(parents=True)
    client = Client(resolve_project(project))
    profiles = []
    for i in range(5):  # five real contents, shifted a little each time
        path = work / f"v{i}.parquet"
        _make_parquet(path, rows, 0.02 * i, 10 + i)
        profiles.append(profile_file(path, "parquet"))
    for i in range(versions):
        digest = f"xxh3:{i:032x}"
        client.put_profile(digest, _distinct(profiles[i % 5], i))
        w = RunWriter.start(client.project, name="load")
        w.log_data([DataVersion("data/big.parquet", "input", digest, 1, "file", True, False)])
        w.finish()
        w.wait()
    hashes = [f"xxh3:{i:032x}" for i in range(versions)]
    load, full, cpu = [], [], []
    for _ in range(repeat):
        t = time.perf_counter()
        client.get_profiles(hashes)
        load.append(time.perf_counter() - t)
        _decoded.clear()  # decode every sketch each time, as a fresh process would
        t, c = time.perf_counter(), time.process_time()
        report = drift_path(client, "data/big.parquet")
        full.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    drifted = sum(1 for v in report.versions if v.drift)
    print(
        f"(b) drift of {versions} versions x 20 columns from profiles: median "
        f"{_median(full) * 1000:.0f} ms (target < 200 ms), CPU {_median(cpu) * 1000:.0f} ms; "
        "loading the profiles "
        f"{_median(load) * 1000:.0f} ms; {drifted} version(s) flagged"
    )


def bench_sampler(work: Path, seconds: float) -> None:
    from nbtrack import sysmetrics
    from nbtrack.project import resolve_project
    from nbtrack.tracking import RunWriter

    project = work / "idle"
    (project / ".nbtrack").mkdir(parents=True)
    proc = psutil.Process()

    def cpu() -> float:
        t = proc.cpu_times()
        return t.user + t.system

    writer = RunWriter.start(resolve_project(project), name="idle")
    c0 = cpu()
    time.sleep(seconds)
    idle = cpu() - c0
    interval = sysmetrics.interval_from(None)
    c0 = cpu()
    sampler = sysmetrics.SystemSampler(writer, interval)
    time.sleep(seconds)
    sampler.stop()
    sampled = cpu() - c0
    writer.finish()
    per_sample = []
    for _ in range(200):
        t = time.thread_time()
        sampler._sample()
        per_sample.append(time.thread_time() - t)
    cost = max(0.0, sampled - idle) / seconds * 100
    print(
        f"(c) system sampler over {seconds:.0f} s idle at {interval:g} s: {cost:.3f} % of one core "
        f"(target < 0.5 %); without a sampler {idle / seconds * 100:.3f} %; one sample "
        f"{_median(per_sample) * 1000:.2f} ms CPU = {_median(per_sample) / interval * 100:.3f} %"
    )


def bench_autolog(work: Path, repeat: int) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import nbtrack
    from nbtrack import tracking
    from nbtrack.project import resolve_project

    project = work / "auto"
    (project / ".nbtrack").mkdir(parents=True)
    X, y = load_breast_cancer(return_X_y=True)
    grid = {"logisticregression__C": list(np.logspace(-2, 2, 10))}  # 10 x 5 folds = 50 fits

    def search() -> float:
        writer = tracking.RunWriter.start(resolve_project(project), name="search")
        tracking.set_active(writer)
        try:
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            t = time.perf_counter()
            GridSearchCV(model, grid, cv=5).fit(X, y)
            return time.perf_counter() - t
        finally:
            tracking.set_active(None)
            writer.finish()

    search()  # warm caches and imports
    off, on = [], []
    for _ in range(repeat):
        off.append(search())
        nbtrack.autolog()
        on.append(search())
        nbtrack.autolog(disable=True)
    ratio = _median(on) / _median(off)
    print(
        f"(d) GridSearchCV of 50 fits: autolog on {_median(on):.3f} s, off {_median(off):.3f} s "
        f"(medians of {repeat}); overhead {100 * (ratio - 1):+.1f} % (target < 2 %)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--versions", type=int, default=100)
    p.add_argument("--seconds", type=float, default=60.0, help="idle run for (c)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", choices=list("abcd"), action="append")
    args = p.parse_args()
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        only = set(args.only or "abcd")
        if "a" in only:
            bench_profile(work, args.rows, max(3, args.repeat // 2))
        if "b" in only:
            bench_drift(work, args.rows, args.versions, args.repeat)
        if "c" in only:
            bench_sampler(work, args.seconds)
        if "d" in only:
            bench_autolog(work, args.repeat)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
