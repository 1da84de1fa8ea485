"""Re-run speed: the scratch copy's cost over bare papermill, and ``--env recorded`` reuse.

1. ``nbtrack rerun RUN`` (default: a scratch copy of the project, inputs at their
   recorded versions) against a bare ``papermill IN OUT`` of the same notebook, both as
   a user types them, alternated, in a project that also holds a 256 MiB file and 200
   small ones the notebook never reads (cloned or hard-linked, never copied in full).
   Target: overhead under 10 %.
2. ``--env recorded`` with a warm cache: finding the environment already built for a
   recorded environment (two packages at other versions). Target: under 1 s.

Prints medians and the ratio measured in the same run. Usage::

    python benchmarks/bench_rerun.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_pipelines import timed, write_notebook


def fill_project(folder: Path) -> None:
    """What a real project holds beside the notebook: a large file and many small ones."""
    with open(folder / "big.bin", "wb") as fh:
        chunk = os.urandom(1 << 20)
        for _ in range(256):
            fh.write(chunk)
    src = folder / "src"
    src.mkdir()
    for i in range(200):
        (src / f"module_{i}.py").write_text(f"VALUE = {i}\n")


def bench_scratch(folder: Path, repeat: int) -> dict[str, list[float]]:
    nbtrack = [sys.executable, "-m", "nbtrack"]
    papermill = [sys.executable, "-m", "papermill", "bench.ipynb", "bare.ipynb", "-p", "lr", "0.1"]
    papermill.append("--no-progress-bar")
    _, _, first = timed([*nbtrack, "sweep", "bench.ipynb", "-p", "lr", "0.1", "--json"], folder)
    original = json.loads(first.stdout)["runs"][0]["run_id"]
    timed(papermill, folder)  # warm both paths once
    timed([*nbtrack, "rerun", original], folder)
    out: dict[str, list[float]] = {"bare": [], "rerun": []}
    for _ in range(repeat):
        out["bare"].append(timed(papermill, folder)[0])
        out["rerun"].append(timed([*nbtrack, "rerun", original], folder)[0])
    return out


def bench_env_reuse(cache: Path, repeat: int) -> tuple[float, list[float]]:
    os.environ["NBTRACK_ENV_CACHE"] = str(cache)
    from nbtrack.capture import environment
    from nbtrack.models import Environment
    from nbtrack.pipelines.environments import recorded_python

    base = environment()
    recorded = Environment(
        "bench", base.python, base.platform, {**base.packages, "six": "1.16.0", "idna": "3.6"}
    )
    started = time.perf_counter()
    recorded_python(recorded, base)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        _, built = recorded_python(recorded, base)
        warm.append(time.perf_counter() - started)
        assert not built
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="pairs and warm lookups (default 5)")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="nbtrack-bench-") as tmp:
        folder = Path(tmp)
        write_notebook(folder)
        fill_project(folder)
        r = bench_scratch(folder, args.repeat)
        bare, rerun = statistics.median(r["bare"]), statistics.median(r["rerun"])
        print(f"papermill (bare)        median {bare:.2f} s over {args.repeat}")
        print(f"nbtrack rerun (scratch) median {rerun:.2f} s over {args.repeat}")
        print(f"rerun overhead          {100 * (rerun / bare - 1):+.1f} %  (target < 10 %)")
    with tempfile.TemporaryDirectory(prefix="nbtrack-envs-") as tmp:
        cold, warm = bench_env_reuse(Path(tmp), args.repeat)
        print(f"--env recorded cold     {cold:.2f} s (uv builds it: six, idna from PyPI)")
        print(
            f"--env recorded warm     median {statistics.median(warm) * 1000:.1f} ms "
            f"over {args.repeat}  (target < 1 s)"
        )


if __name__ == "__main__":
    main()
