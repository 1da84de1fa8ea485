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
from waiting import wait_until


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
