"""Speed of the ``nbtrack`` command as a user meets it: a new process each time (issue 13).

    .venv/bin/python benchmarks/bench_cli.py [--runs 10000] [--repeat 5]

Over a store of ``--runs`` finished cell runs × 10 params × 10 metrics (built as
``bench_core.py`` builds it), the median of ``--repeat`` new processes of:

a. ``nbtrack ls --json --limit RUNS`` (every run; target: under 500 ms), against
   ``nbtrack.runs()`` in this process over the same store and ``python -c 'import
   duckdb'`` (the floor of any verb that opens the store), measured in the same run;
b. ``nbtrack ls`` (the default page of 50 as a table) and ``nbtrack --version``
   (the CLI's own start: the parser and its imports).

The machine is shared: the load average is printed, and each figure comes with its
baseline from the same minute. Modules run from cached bytecode, as in an installed
package (one warm-up process writes it).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import project_env, synthetic_dump  # noqa: E402

CPU: dict[str, float] = {}  # what: median CPU seconds (user + system) of the child


def median_of(fn: Callable[[], object], repeat: int, what: str = "") -> float:
    """Median wall time of ``fn``; the median CPU time of the processes it ran goes to CPU."""
    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    CPU[what] = statistics.median(cpu)
    return statistics.median(times)


def process(args: list[str], env: dict[str, str]) -> Callable[[], object]:
    def run() -> None:
        done = subprocess.run(args, env=env, capture_output=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{args} failed: {done.stderr.decode()[-2000:]}")

    return run


def line(
    what: str, seconds: float, baseline: str, target: str = "", ok: bool | None = None
) -> None:
    verdict = "" if ok is None else ("PASS" if ok else "MISS")
    cpu = CPU.get(what.split(" ", 1)[1], 0.0) * 1000
    print(
        f"{what:<44} wall {seconds * 1000:7.1f} ms  cpu {cpu:7.1f} ms   {baseline}  {target} {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import nbtrack
    from nbtrack.client import Client
    from nbtrack.project import resolve_project

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / ".nbtrack"
        store.mkdir()
        os.environ["NBTRACK_STORE"] = str(store)
        started = time.perf_counter()
        Client(resolve_project()).load_runs(synthetic_dump(args.runs, 10, 10))
        print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; a store of "
              f"{args.runs:,} runs built in {time.perf_counter() - started:.1f} s")  # fmt: skip
        env = project_env(store)
        # As an installed package runs: from cached bytecode (this machine's environment
        # sets PYTHONDONTWRITEBYTECODE, which recompiles every module at every start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = [sys.executable, "-m", "nbtrack"]
        process([*cli, "ls", "--limit", "1"], env)()  # writes the bytecode once
        assert len(nbtrack.runs()) == args.runs
        frame = median_of(nbtrack.runs, args.repeat)
        floor = median_of(
            process([sys.executable, "-c", "import duckdb"], env), args.repeat, "duckdb"
        )
        every = median_of(
            process([*cli, "ls", "--json", "--limit", str(args.runs)], env),
            args.repeat,
            f"nbtrack ls --json --limit {args.runs}",
        )
        base = (
            f"runs() in-process {frame * 1000:.0f} ms; `import duckdb` {floor * 1000:.0f} ms "
            f"(cpu {CPU['duckdb'] * 1000:.0f} ms)"
        )
        line(f"a. nbtrack ls --json --limit {args.runs}", every, base, "< 500 ms", every < 0.5)
        table = median_of(process([*cli, "ls"], env), args.repeat, "nbtrack ls (a table of 50)")
        line("b. nbtrack ls (a table of 50)", table, f"`import duckdb` {floor * 1000:.0f} ms")
        version = median_of(
            process([*cli, "--version"], env),
            args.repeat,
            "nbtrack --version (the CLI's own start)",
        )
        bare = median_of(process([sys.executable, "-c", "pass"], env), args.repeat)
        line(
            "b. nbtrack --version (the CLI's own start)",
            version,
            f"`python -c pass` {bare * 1000:.0f} ms",
        )
        print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
