"""Speed of data versioning (issue 3), each case against a baseline measured in the same run.

    .venv/bin/python benchmarks/bench_data.py [--size-mib 1024] [--files 10000] [--rows 1000000]
                                              [--repeat 5] [--workdir DIR]

Cases (medians of --repeat runs, the page cache warm, as when a cell re-reads its data):
1. hashing a 1 GiB file vs ``cat FILE > /dev/null`` (target: >= 80% of cat's speed);
2. hashing + caching it vs hashing alone (target: within 2x), ``cp`` shown for scale;
3. a folder of 10,000 small files: first version (hash + cache, target < 1 s) and a
   re-check in a new process state (stat only, target < 0.15 s) vs a bare ``os.stat``;
4. profiling a 1,000,000-row CSV for the data diff (target < 2 s).
If DVC is installed (importable, on PATH, or ``--dvc PATH``), the same cases run through
``dvc add`` / ``dvc status`` and the ratio is printed; it is not a dependency.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from nbtrack.cache import Cache
from nbtrack.hashing import StatCache, hash_file
from nbtrack.profile import profile_file
from nbtrack.project import Project
from nbtrack.versioning import version_path


class Timing(NamedTuple):
    """Median wall time, and median CPU time of this process (user + system: on a
    machine busy with other work, the part of the wall time that was ours)."""

    wall: float
    cpu: float


def median_time(
    fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> Timing:
    walls, cpus = [], []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start, start_cpu = time.perf_counter(), cpu_seconds()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - start_cpu)
    return Timing(statistics.median(walls), statistics.median(cpus))


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for (cat, cp, dvc)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def line(name: str, t: Timing, note: str = "") -> None:
    print(f"  {name:<46} {t.wall * 1000:9.1f} ms  (cpu {t.cpu * 1000:8.1f} ms)  {note}")


def make_big_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    block = os.urandom(16 << 20)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            fh.write(block[: min(len(block), size - written)])
            written += len(block)


def make_folder(path: Path, count: int) -> None:
    if path.is_dir() and sum(1 for _ in path.rglob("*.txt")) == count:
        return
    shutil.rmtree(path, ignore_errors=True)
    for i in range(count):
        sub = path / f"d{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"sample {i} " * 8)
    past = time.time() - 120
    for f in path.rglob("*.txt"):
        os.utime(f, (past, past))


def make_csv(path: Path, rows: int) -> None:
    if path.exists():
        return
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "age": rng.integers(18, 90, rows).astype(float),
            "income": rng.normal(50_000, 15_000, rows),
            "city": rng.choice(["Paris", "Lyon", "Nice", "Lille", "Brest"], rows),
            "score": rng.random(rows),
            "label": rng.integers(0, 2, rows),
        }
    )
    frame.loc[frame.sample(frac=0.05, random_state=1).index, "age"] = np.nan
    frame.to_csv(path, index=False)


def project_in(folder: Path) -> Project:
    store = folder / ".nbtrack"
    return Project(root=folder, folder=store, db_path=store / "runs.duckdb")


def bench_big_file(work: Path, size: int, repeat: int) -> dict[str, float]:
    big = work / "big.bin"
    make_big_file(big, size)
    subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    cat = median_time(
        lambda: subprocess.run(f"cat '{big}' > /dev/null", shell=True, check=True), repeat
    )
    hashed = median_time(lambda: hash_file(big), repeat)
    cache_root = work / "cache-big"

    def fresh_cache() -> None:
        shutil.rmtree(cache_root, ignore_errors=True)

    cached = median_time(lambda: Cache(cache_root).add_file(big), repeat, setup=fresh_cache)
    copy = work / "copy.bin"
    cp = median_time(
        lambda: subprocess.run(["cp", str(big), str(copy)], check=True),
        repeat,
        setup=lambda: copy.unlink(missing_ok=True),
    )
    copy.unlink(missing_ok=True)
    fresh_cache()
    gib = size / (1 << 30)
    print(f"1. hashing a {size >> 20} MiB file")
    line("cat FILE > /dev/null", cat, f"{gib / cat.wall:.2f} GiB/s")
    line("nbtrack hash (xxh3-128 chunked, 2 threads)", hashed, f"{gib / hashed.wall:.2f} GiB/s")
    print(f"     hash speed / cat speed = {cat.wall / hashed.wall:.2f}  (target >= 0.80)")
    print("2. hashing + caching it")
    line("nbtrack hash + copy into cache (one pass)", cached)
    line("cp FILE COPY (for scale)", cp)
    print(f"     (hash + cache) / hash alone = {cached.wall / hashed.wall:.2f}  (target <= 2)")
    return {"cat": cat.wall, "hash": hashed.wall, "cache": cached.wall, "cp": cp.wall}


def bench_folder(work: Path, count: int, repeat: int) -> dict[str, float]:
    folder = work / "proj"
    data = folder / "many"
    make_folder(data, count)
    # Each first version gets a store of its own, removed only at the end: deleting
    # 10,000 blobs right before a timed call would bill the deletion's journal work to it.
    stores = iter(range(repeat + 1))
    project = project_in(folder)

    def new_store() -> None:
        nonlocal project
        store = folder / f".nbtrack-{next(stores)}"
        project = Project(root=folder, folder=store, db_path=store / "runs.duckdb")

    def version() -> None:
        version_path(
            project,
            data,
            "input",
            cache=Cache(project.cache_dir),
            stat_cache=StatCache.for_folder(project.folder),
        )

    first_time = median_time(version, repeat, setup=new_store)
    # a re-check starts from the state a new process has: nothing loaded yet
    recheck = median_time(version, repeat)
    files = [str(p) for p in data.rglob("*.txt")]
    bare = median_time(lambda: [os.stat(f) for f in files], repeat)
    hash_only = median_time(
        lambda: version_path(project, data, "input", cache=None, stat_cache=StatCache()), repeat
    )
    floor = median_time(lambda: create_files(folder / f".floor-{time.time_ns()}", count), repeat)
    for store in [*folder.glob(".nbtrack-*"), *folder.glob(".floor-*")]:
        shutil.rmtree(store)
    print(f"3. a folder of {count} small files")
    line("first version (hash + cache + manifest)", first_time, "(target < 1000 ms)")
    line("  of which hashing alone (no cache)", hash_only)
    line("  filesystem floor: create+write+rename N files", floor, "(no hashing, no reading)")
    line("re-check, unchanged (stat cache from disk)", recheck, "(target < 150 ms)")
    line("bare os.stat of every file", bare)
    return {"first": first_time.wall, "recheck": recheck.wall, "stat": bare.wall}


def create_files(folder: Path, count: int) -> None:
    """What any atomic cache must do per new small blob: create, write, rename."""
    for fan in range(256):
        (folder / f"{fan:02x}").mkdir(parents=True)
    for i in range(count):
        sub = f"{folder}/{i % 256:02x}"
        fd = os.open(f"{sub}/.tmp{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        os.write(fd, b"x" * 80)
        os.close(fd)
        os.rename(f"{sub}/.tmp{i}", f"{sub}/{i}")


def bench_profile(work: Path, rows: int, repeat: int) -> dict[str, float]:
    csv = work / f"table-{rows}.csv"
    make_csv(csv, rows)
    seconds = median_time(lambda: profile_file(csv, "csv"), repeat)
    print(f"4. profiling a {rows}-row CSV ({csv.stat().st_size >> 20} MiB)")
    line("profile (rows, types, nulls, distinct, min/max/mean)", seconds, "(target < 2000 ms)")
    return {"profile": seconds.wall}


def dvc_command(explicit: str | None) -> list[str] | None:
    """How to run DVC: --dvc PATH, else the importable module, else ``dvc`` on PATH."""
    if explicit:
        return [explicit]
    if importlib.util.find_spec("dvc") is not None:
        return [sys.executable, "-m", "dvc"]
    found = shutil.which("dvc")
    return [found] if found else None


def bench_dvc(work: Path, dvc: list[str] | None, ours: dict[str, float]) -> None:
    if dvc is None:
        print("5. dvc is not installed here: DVC cases skipped (figures from issue 3: dvc add")
        print("   1 GiB 6.0 s, dvc add 10k files 7.4 s, dvc status 10k files 1.55 s)")
        return
    repo = work / "dvc-repo"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*dvc, "config", "core.analytics", "false"], cwd=repo, check=True)
    shutil.copy(work / "big.bin", repo / "big.bin")
    shutil.copytree(work / "proj" / "many", repo / "many")
    subprocess.run(["cat", str(repo / "big.bin")], stdout=subprocess.DEVNULL, check=True)

    def timed(*args: str) -> Timing:
        return median_time(
            lambda: subprocess.run([*dvc, *args], cwd=repo, check=True, capture_output=True), 1
        )

    add_big = timed("add", "big.bin")
    add_dir = timed("add", "many")
    timed("status")  # DVC builds its own state on the first status
    status = timed("status")
    print("5. DVC, same cases (one run each, same files)")
    line(
        "dvc add big file (md5 + copy)",
        add_big,
        f"nbtrack hash+cache is {add_big.wall / ours['cache']:.1f}x faster",
    )
    line(
        "dvc add folder",
        add_dir,
        f"nbtrack first version is {add_dir.wall / ours['first']:.1f}x faster",
    )
    line(
        "dvc status (unchanged)",
        status,
        f"nbtrack re-check is {status.wall / ours['recheck']:.1f}x faster",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="keep inputs here between runs")
    parser.add_argument("--dvc", default=None, help="a dvc executable to compare with")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nbtrack-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"workdir {work}, {os.cpu_count()} CPUs, medians of {args.repeat}")
    ours = bench_big_file(work, args.size_mib << 20, args.repeat)
    ours |= bench_folder(work, args.files, args.repeat)
    ours |= bench_profile(work, args.rows, args.repeat)
    bench_dvc(work, dvc_command(args.dvc), ours)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
