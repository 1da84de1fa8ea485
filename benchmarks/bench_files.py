"""Finding the files a tracked cell wrote in a 10,000-file project (issue 15).

    .venv/bin/python benchmarks/bench_files.py [--files 10000] [--cells 200]

a. In one process: the inotify watch's per-cell cost (``begin()`` + ``written()``)
   in a project of ``--files`` files, for a cell that writes nothing and one that
   writes a file, vs what a stat snapshot of the project would cost per cell (one
   ``os.scandir`` + ``stat`` walk); and the one-off cost of setting up the watch.
   Target: under 5 ms per cell.
b. In real kernels: ``%%track`` on a trivial cell and on a cell writing one file, in
   that project and in an empty one, each against the same cell untracked in the same
   kernel (median of ``--cells``). The difference of the two overheads is what the
   project's size adds (target: under 5 ms); the trivial cell's overhead stays under
   5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_core import KERNEL_SETUP, BenchKernel, ms, report


def make_project(root: Path, files: int) -> int:
    """``files`` small files in folders of 100, two levels deep; returns the folder count."""
    folders = 0
    for i in range(files):
        folder = root / f"d{i // 1000}" / f"s{(i // 100) % 10}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
            folders += 1
        (folder / f"f{i}.csv").write_text(f"x\n{i}\n")
    return folders


def snapshot(root: str) -> dict[str, int]:
    """What a stat-snapshot design does each cell: every file's mtime."""
    out: dict[str, int] = {}
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    out[e.path] = e.stat(follow_symlinks=False).st_mtime_ns
    return out


def bench_watch(project: Path, files: int, cells: int) -> None:
    from nbtrack import fswatch

    start = time.perf_counter()
    watch = fswatch.ProjectWatch(str(project))
    setup = time.perf_counter() - start
    idle, one = [], []
    target = project / "d0" / "s0" / "out.csv"
    for i in range(cells):
        t = time.perf_counter()
        watch.begin()
        assert watch.written() == []
        idle.append(time.perf_counter() - t)
        watch.begin()
        target.write_text(f"y\n{i}\n")
        t = time.perf_counter()
        assert watch.written() == [str(target)]
        one.append(time.perf_counter() - t)
    scans = []
    for _ in range(max(5, cells // 20)):
        t = time.perf_counter()
        snapshot(str(project))
        scans.append(time.perf_counter() - t)
    watch.close()
    scan = statistics.median(scans)
    for what, times in (("writes nothing", idle), ("writes one file", one)):
        m = statistics.median(times)
        report(
            f"a. finding the files written by a cell that {what}, {files} files "
            f"(median of {cells})",
            f"{ms(m)} inotify watch, begin + written",
            f"{ms(scan)} a stat snapshot of the project",
            f"{scan / m:.0f}x faster than a snapshot",
            "< 5 ms per cell",
            m < 0.005,
        )
    print(f"  one-off: setting up the watch of {len(watch._wds)} folders took {ms(setup)}")


CELLS = {
    "trivial": ("x = 1", "%%track trivial\nx = 1"),
    "one file": (
        "open('out.txt', 'w').write('x')",
        "%%track writer\nopen('out.txt', 'w').write('x')",
    ),
}


def bench_kernels(work: Path, project: Path, cells: int) -> None:
    empty = work / "empty"
    empty.mkdir()
    overheads: dict[tuple[str, str], float] = {}
    for label, folder in (("empty project", empty), ("10,000-file project", project)):
        kernel = BenchKernel(folder)
        try:
            kernel.run(KERNEL_SETUP)
            codes = [c for pair in CELLS.values() for c in pair]
            kernel.run(f"_time_cells({codes!r}, 5)")  # warm up
            medians = json.loads(
                kernel.run(
                    f"_r = _time_cells({codes!r}, {cells})\n"
                    "ingest.ingestor().drain(60)\n"
                    "print(json.dumps({k: _medians(v) for k, v in _r.items()}))"
                )
            )
        finally:
            kernel.shutdown()
        for name, (plain, tracked) in CELLS.items():
            over = medians[tracked][0] - medians[plain][0]
            overheads[(label, name)] = over
            report(
                f"b. %%track overhead, {name} cell, {label} (median of {cells}, in the kernel)",
                f"{ms(medians[tracked][0])} tracked",
                f"{ms(medians[plain][0])} the same cell untracked",
                f"overhead {ms(over)}",
                "overhead < 5 ms",
                over < 0.005,
            )
            cpu = medians[tracked][1] - medians[plain][1]
            overheads[(label, name + " cpu")] = cpu
            print(
                f"  CPU of the kernel's main thread: {ms(medians[tracked][1])} tracked, "
                f"{ms(medians[plain][1])} untracked, overhead {ms(cpu)}"
            )
    for name in CELLS:
        extra = overheads[("10,000-file project", name)] - overheads[("empty project", name)]
        report(
            f"b. what 10,000 files in the project add to a tracked {name} cell",
            f"{ms(overheads[('10,000-file project', name)])} overhead in the 10,000-file project",
            f"{ms(overheads[('empty project', name)])} overhead in an empty project",
            f"difference {ms(extra)}",
            "< 5 ms",
            extra < 0.005,
        )
        cpu = overheads[("10,000-file project", name + " cpu")]
        cpu -= overheads[("empty project", name + " cpu")]
        print(f"  the same in CPU of the kernel's main thread: {ms(cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--only", default="a,b", help="parts to run: a, b or a,b")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbtrack-bench-files-"))
    try:
        project = work / "project"
        folders = make_project(project, args.files)
        print(f"project: {args.files} files in {folders} folders; load {os.getloadavg()[0]:.2f}")
        if "a" in args.only:
            bench_watch(project, args.files, args.cells)
        if "b" in args.only:
            bench_kernels(work, project, args.cells)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
