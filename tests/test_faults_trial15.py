"""Faults of the fifteenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (a 10 MB parameter, a FIFO a cell opens, ...)
and then asks what a user would ask: does the command end, in reasonable time and
size, is every run still there, and is the workspace as it was.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import run_cli
from factory import record_run

BIG_VALUE = "x" * 10_000_000  # a 10 MB text parameter: a file's contents passed as one


def test_a_10_mb_parameter_beside_10000_others_prints_once_not_padded_on_every_row(
    project_dir: Path,
) -> None:
    # Given: a run with one 10 MB text parameter, and a run with 10,000 parameters
    big = record_run(project_dir, "big", params={"big": BIG_VALUE}, metrics={"acc": 0.5})
    many = record_run(project_dir, "many", params={f"p{i}": i for i in range(10_000)})

    # When: the user pipes `diff` and `ls` into a file (no terminal: every character)
    started = time.monotonic()
    diff = run_cli("diff", big, many, cwd=project_dir)
    listing = run_cli("ls", cwd=project_dir)
    took = time.monotonic() - started

    # Then: both end at once with the 10 MB value written once, whole; before, every
    # one of the 10,000 rows of the diff was padded to 10 MB: 100 GB over 4 minutes
    # (a `> diff.txt` filled the disk), and `ls` padded every run's row the same way
    assert diff.returncode == 0, diff.stderr
    assert listing.returncode == 0, listing.stderr
    assert diff.stdout.count(BIG_VALUE) == 1
    assert listing.stdout.count(BIG_VALUE) == 1
    assert len(diff.stdout) < len(BIG_VALUE) + 1_000_000
    assert len(listing.stdout) < len(BIG_VALUE) + 1_000_000  # 10,000 columns
    assert "p9999" in diff.stdout
    assert took < 60
