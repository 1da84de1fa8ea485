"""What a tracked cell pays at its end when a table it read changed: the drift alert (issue 15).

    .venv/bin/python benchmarks/bench_drift_cell.py [--old PYTHONPATH] [--repeat 5]
                                                      [--rows 200000]

For a 2,000-row CSV, a ``--rows`` CSV and a ``--rows`` Parquet file (eight numeric
columns, a label and a three-valued category): before each run an untracked cell puts a
new version of the file in place (prepared beforehand: the next seed, one column
shifted), then a ``%%track`` cell reads it with pandas and notes, as its last line, the
kernel's main-thread CPU (``time.thread_time``), process CPU and clock; the next,
untracked cell reads them again. The difference is nbtrack's step after the cell (its
summary, with the drift alert nbtrack makes because the input changed), plus the
kernel's reply, which the baseline (the same tracked cell, the file unchanged) also has.

With ``--old`` (a tree made by ``git archive main python | tar -x -C DIR``, given as
``DIR/python``) a second kernel runs that code in a project of its own; the two take
turns run by run, so both see the same load. The alert lines of both are compared
(run ids aside): the same verdicts and text, or the script says where they differ.
Medians over ``--repeat`` runs; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_capture import Kernel  # the benchmarks folder is on sys.path

VENV_BIN = str(Path(sys.executable).parent)
HERE = str(Path(__file__).resolve().parents[1] / "python")
CASES = {  # name -> (file, how the cell reads it)
    "csv 2,000 rows": ("small.csv", "pd.read_csv"),
    "csv big": ("big.csv", "pd.read_csv"),
    "parquet big": ("big.parquet", "pd.read_parquet"),
}
SETUP = """%load_ext nbtrack
import shutil, time
import pandas as pd
from nbtrack import ingest
_post = []
def _note(end):
    _post.append((time.thread_time() - end[0], time.process_time() - end[1],
                   time.perf_counter() - end[2]))
"""
CELL = """%%track drift_{tag}
df = {reader}("data/{file}")
_end = (time.thread_time(), time.process_time(), time.perf_counter())"""


def write_versions(folder: Path, rows: int, count: int) -> None:
    """``count`` versions of each file: version i has f0 shifted by 0.1·i."""
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True)
    for i in range(count):
        rng = np.random.default_rng(i)
        for name, n in (("small", 2000), ("big", rows)):
            x = rng.normal(size=(n, 8)).round(5)
            x[:, 0] += 0.1 * i
            df = pd.DataFrame(x, columns=[f"f{j}" for j in range(8)])
            df["y"] = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
            df["segment"] = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
            df.to_csv(folder / f"{name}.csv.{i}", index=False)
            if name == "big":
                df.to_parquet(folder / f"{name}.parquet.{i}")


def start_kernel(cwd: Path, pythonpath: str) -> Kernel:
    """A python3 kernel running one tree's nbtrack (``pythonpath``) in a project of its own."""
    (cwd / "data").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=cwd, check=True)
    os.environ["PYTHONPATH"] = pythonpath  # the kernel's environment is a copy of ours
    return Kernel(cwd)


def shown(k: Kernel, code: str) -> str:
    """Run ``code``; what it displayed as text (the run's summary is a display)."""
    text: list[str] = []

    def keep(msg: dict[str, Any]) -> None:
        if msg["msg_type"] in ("display_data", "execute_result"):
            text.append(msg["content"]["data"].get("text/plain", ""))

    reply = k.kc.execute_interactive(code, timeout=300, output_hook=keep)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code[:60]!r} failed: {reply['content'].get('evalue')}")
    return "".join(text)


def alert_lines(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if "drifted since" in line]
    return [re.sub(r"since [0-9a-f]{8}", "since <run>", line) for line in lines]


def step(k: Kernel, tag: str, file: str, reader: str, version: int | None) -> str:
    """One tracked run (after putting ``version`` in place, untimed); what it showed."""
    if version is not None:
        k.run(
            f"ingest.ingestor().drain(60)\nshutil.copyfile('../v/{file}.{version}', 'data/{file}')"
        )
    text = shown(k, CELL.format(tag=tag, reader=reader, file=file))
    k.run("_note(_end)")
    return text


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--old", help="PYTHONPATH of the tree to compare with (DIR/python)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    trees = {"this tree": HERE, **({"old": args.old} if args.old else {})}
    for path in trees.values():  # as an installed package runs: bytecode compiled
        compileall.compile_dir(path, quiet=1)
    root = Path(tempfile.mkdtemp(prefix="nbtrack-bench-drift-"))
    kernels: dict[str, Kernel] = {}
    try:
        write_versions(root / "v", args.rows, args.repeat + 2)
        for i, (name, path) in enumerate(trees.items()):
            kernels[name] = start_kernel(root / f"p{i}", path)
            kernels[name].run(SETUP)
        figures: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
        alerts: dict[tuple[str, str], list[list[str]]] = {}
        for c, (case, (file, reader)) in enumerate(CASES.items()):
            tag = f"c{c}"
            for k in kernels.values():  # first sight, then the first alert in the kernel
                step(k, tag, file, reader, 0)
                step(k, tag, file, reader, 1)
                k.run("_post.clear()")
            for kind in ("changed", "unchanged"):
                for r in range(args.repeat):
                    for name, k in kernels.items():
                        version = r + 2 if kind == "changed" else None
                        text = step(k, tag, file, reader, version)
                        if kind == "changed":
                            alerts.setdefault((case, name), []).append(alert_lines(text))
                for name, k in kernels.items():
                    out = k.run("print(repr(_post)); _post.clear()")
                    figures[(case, name, kind)] = eval(out)  # noqa: S307 - our own repr
        load = os.getloadavg()
        print(f"post-cell step of a %%track cell whose input changed (median of {args.repeat}; "
              f"load {load[0]:.1f} {load[1]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
        print(f"{'case':16} {'tree':10} {'input':10} {'thread CPU':>10} {'process CPU':>11} "
              f"{'wall':>7}  (ms)")  # fmt: skip
        for case in CASES:
            for name in kernels:
                for kind in ("changed", "unchanged"):
                    f = figures[(case, name, kind)]
                    print(f"{case:16} {name:10} {kind:10} {ms([x[0] for x in f]):>10} "
                          f"{ms([x[1] for x in f]):>11} {ms([x[2] for x in f]):>7}")  # fmt: skip
            seen = {name: alerts[(case, name)] for name in kernels}
            first = next(iter(seen.values()))
            flagged = sum(1 for lines in first if lines)
            same = all(v == first for v in seen.values())
            print(f"  alerts: {flagged} of {args.repeat} runs flagged drift; "
                  + ("the same text in both trees" if same and len(seen) > 1 else
                     "texts differ:\n" + "\n".join(f"    {n}: {v}" for n, v in seen.items())
                     if not same else ""))  # fmt: skip
            if first and first[0]:
                print(f"  e.g. {first[0][0][:160]}")
    finally:
        for k in kernels.values():
            k.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
