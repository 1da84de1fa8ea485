"""Pipelines speed: what ``nbtrack rerun`` adds to papermill, and what ``sweep -j 2`` gains.

1. ``nbtrack rerun RUN`` against a bare ``papermill IN OUT -p lr 0.1`` of the same
   notebook (same kernel, same tracked cell), both as a user types them, alternated.
   Target: overhead under 10 %.
2. ``nbtrack sweep NB -p lr <8 values> -j 2`` against ``-j 1``. Target: at least 1.6x
   faster on 2 cores.

Prints medians (wall-clock seconds, and CPU seconds of the command with every process it
waited for: kernels, workers) and the ratios. On a machine shared with other work the
CPU figures are the steadier ones. Usage::

    python benchmarks/bench_pipelines.py [--repeat 5] [--sweep-repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

BIN = Path(sys.executable).parent


def write_notebook(folder: Path) -> Path:
    """A short notebook like a real one: parameters, a tracked cell reading data and logging a metric."""
    params = nbformat.v4.new_code_cell("lr = 0.1")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[
            params,
            nbformat.v4.new_code_cell("import nbtrack\n%load_ext nbtrack"),
            nbformat.v4.new_code_cell(
                "%%track train\n"
                "with open('data.csv') as fh:\n"
                "    total = sum(float(x) for x in fh.read().split())\n"
                "acc = 1 - lr / total\n"
                "nbtrack.log_metric('acc', acc)\n"
                "with open('out.txt', 'w') as fh:\n"
                "    fh.write(str(acc))"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / "bench.ipynb"
    nbformat.write(nb, path)
    (folder / "data.csv").write_text("1\n2\n3\n")
    (folder / ".nbtrack").mkdir(exist_ok=True)
    return path


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    out["PATH"] = os.pathsep.join([str(BIN), out.get("PATH", "")])
    return out


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds, result) of one command."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed, cpu_of_children() - cpu, done


def bench_rerun(folder: Path, repeat: int) -> dict[str, list[float]]:
    nbtrack = [sys.executable, "-m", "nbtrack"]
    papermill = [sys.executable, "-m", "papermill", "bench.ipynb", "bare.ipynb", "-p", "lr", "0.1"]
    papermill.append("--no-progress-bar")
    _, _, first = timed([*nbtrack, "sweep", "bench.ipynb", "-p", "lr", "0.1", "--json"], folder)
    original = json.loads(first.stdout)["runs"][0]["run_id"]
    # Warm both paths once (file system caches, compiled bytecode, the environment listing).
    timed(papermill, folder)
    timed([*nbtrack, "rerun", original], folder)
    out: dict[str, list[float]] = {"bare": [], "bare_cpu": [], "rerun": [], "rerun_cpu": []}
    for _ in range(repeat):
        t, cpu, _ = timed(papermill, folder)
        out["bare"].append(t)
        out["bare_cpu"].append(cpu)
        t, cpu, _ = timed([*nbtrack, "rerun", original], folder)
        out["rerun"].append(t)
        out["rerun_cpu"].append(cpu)
    return out


def bench_sweep(folder: Path, repeat: int) -> dict[str, list[float]]:
    values = [str(v / 100) for v in range(1, 9)]
    args = [sys.executable, "-m", "nbtrack", "sweep", "bench.ipynb", "-p", "lr", *values]
    args.append("--no-progress")
    out: dict[str, list[float]] = {"one": [], "one_cpu": [], "two": [], "two_cpu": []}
    for _ in range(repeat):
        t, cpu, _ = timed([*args, "-j", "1"], folder)
        out["one"].append(t)
        out["one_cpu"].append(cpu)
        t, cpu, _ = timed([*args, "-j", "2"], folder)
        out["two"].append(t)
        out["two_cpu"].append(cpu)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="rerun / papermill pairs (default 5)")
    parser.add_argument("--sweep-repeat", type=int, default=2, help="sweep pairs (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-") as tmp:
        folder = Path(tmp)
        write_notebook(folder)
        print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
        r = bench_rerun(folder, args.repeat)
        bare, rerun = median(r["bare"]), median(r["rerun"])
        bare_cpu, rerun_cpu = median(r["bare_cpu"]), median(r["rerun_cpu"])
        print(
            f"papermill (bare)   median {bare:.2f} s wall, {bare_cpu:.2f} s CPU  over {args.repeat}"
        )
        print(
            f"nbtrack rerun      median {rerun:.2f} s wall, {rerun_cpu:.2f} s CPU  over {args.repeat}"
        )
        print(
            f"rerun overhead     {100 * (rerun / bare - 1):+.1f} % wall, "
            f"{100 * (rerun_cpu / bare_cpu - 1):+.1f} % CPU  (target < 10 %)"
        )
        w = bench_sweep(folder, args.sweep_repeat)
        one, two = median(w["one"]), median(w["two"])
        print(
            f"sweep 8 x -j 1     median {one:.2f} s wall, {median(w['one_cpu']):.2f} s CPU  "
            f"over {args.sweep_repeat}"
        )
        print(
            f"sweep 8 x -j 2     median {two:.2f} s wall, {median(w['two_cpu']):.2f} s CPU  "
            f"over {args.sweep_repeat}"
        )
        print(f"speed-up -j 2      {one / two:.2f}x  (target >= 1.6x)")
        print(
            f"load average now   {os.getloadavg()[0]:.1f} (other work on the machine slows -j 2 most)"
        )


if __name__ == "__main__":
    main()
