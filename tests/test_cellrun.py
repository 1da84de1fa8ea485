"""One tracked cell's run, driven in this process: what its background work leaves behind."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from nbtrack import ingest
from nbtrack.cellrun import CellRun, TrackOptions
from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.session import KernelSession
from test_crash import _fill, small_disk
from waiting import wait_until

__all__ = ["small_disk"]  # the fixture (a real tmpfs), from the kernel crash tests


def test_a_git_state_that_cannot_be_read_is_logged_and_kept_on_the_run(
    project_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a project whose .git points to a repository that is not there
    (project_dir / ".git").write_text("gitdir: /nonexistent/repo\n")
    session = KernelSession({})

    # when a cell runs and ends once nbtrack's background work is done
    with caplog.at_level(logging.WARNING, logger="nbtrack"):
        cell = CellRun(session, TrackOptions(auto=False), "x = 1", "x = 1", None, 1)
        wait_until(lambda: cell.writer.snapshot.tags, timeout=60, what="a warning tag")
        outcome = cell.end({"x": 1}, None)
        assert ingest.ingestor().drain(60)

    # then the failure was logged under the "nbtrack" logger, naming the run
    expected = "no git state recorded: git status failed: fatal: not a git repository"
    logged = [r.getMessage() for r in caplog.records if r.name == "nbtrack"]
    assert any(outcome.run.short_id in m and expected in m for m in logged), logged

    # and the stored run carries it as its one warning, the run itself finished
    run = Client(resolve_project(project_dir)).get_run(outcome.run.run_id)
    assert list(run.tags) == ["nbtrack.warning.git"]
    assert len(run.warnings) == 1 and run.warnings[0].startswith(expected)
    assert run.status == "finished" and run.params == {}


def test_an_output_the_full_disk_cannot_cache_says_no_space_once_and_keeps_its_hash(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a project on a small disk whose store exists, and a cell writing an output
    # that fits on the disk once but not twice (the cache keeps a copy of its bytes)
    monkeypatch.chdir(small_disk)
    session = KernelSession({})
    warm = CellRun(session, TrackOptions(auto=False), "x = 1", "x = 1", None, 1)
    warm.end({"x": 1}, None)
    assert ingest.ingestor().drain(60)
    filler = _fill(small_disk)
    filler.write_bytes(filler.read_bytes()[: -(2 << 20)])  # 2 MiB free again
    opts = TrackOptions(auto=False, outputs=["out.bin"])

    # when the cell writes 1.5 MiB and ends
    cell = CellRun(session, opts, "write", "write", None, 2)
    (small_disk / "out.bin").write_bytes(b"\1" * (3 << 19))
    outcome = cell.end({}, None)

    # then the summary says once that there was no space, and the output is recorded
    # with its hash, its bytes not kept
    spaced = [w for w in outcome.warnings if "space" in w]
    assert len(spaced) == 1 and len(outcome.warnings) == 1, outcome.warnings
    (out,) = [d for d in outcome.run.data if d.path == "out.bin"]
    assert out.role == "output" and out.size == 3 << 19 and not out.cached and out.hash
