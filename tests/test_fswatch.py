"""The inotify watch of a project: every file written between ``begin`` and ``written``."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from nbtrack import fswatch


@pytest.fixture
def watch(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "old.csv").write_text("x\n")
    (tmp_path / ".git").mkdir()
    w = fswatch.ProjectWatch(str(tmp_path))
    yield w
    w.close()


def test_writes_by_other_processes_renames_and_new_folders_are_seen(watch, tmp_path: Path) -> None:
    # given writes made before the cell began
    (tmp_path / "data" / "before.csv").write_text("x\n")
    watch.begin()
    # when a shell copies, renames a temporary file into place and fills new folders
    subprocess.run(
        "cp data/old.csv data/copy.csv && echo 1 > data/.tmp && mv data/.tmp data/final.csv"
        " && mkdir -p out/deep && echo 2 > out/deep/x.txt && echo 3 > .git/index",
        shell=True,
        check=True,
        cwd=tmp_path,
    )
    got = {os.path.relpath(p, tmp_path) for p in watch.written() if os.path.exists(p)}
    # then exactly the files written since begin, tool folders left out
    assert got == {"data/copy.csv", "data/final.csv", "out/deep/x.txt"}
    # and the new folder is watched from now on
    watch.begin()
    (tmp_path / "out" / "deep" / "y.txt").write_text("y")
    assert watch.written() == [str(tmp_path / "out" / "deep" / "y.txt")]


def test_a_file_appended_in_a_loop_is_one_write(watch, tmp_path: Path) -> None:
    watch.begin()
    for i in range(20_000):  # past the 16,384 events the kernel queues, unless merged
        with open(tmp_path / "data" / "log.txt", "a") as fh:
            fh.write(f"{i}\n")
    assert watch.written() == [str(tmp_path / "data" / "log.txt")]


def test_an_overflowing_queue_falls_back_to_a_scan_of_what_changed(
    watch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given a file older than the cell by more than the filesystem clock's lag
    old = tmp_path / "data" / "old.csv"
    while time.time_ns() < old.stat().st_ctime_ns + fswatch.CLOCK_SLACK_NS:
        time.sleep(0.005)
    watch.begin()
    # when more distinct events pile up than the kernel queues
    for i in range(20_000):  # (appends: a truncating rewrite is flushed on ext4, slow)
        with open(tmp_path / "data" / f"f{i % 2}.txt", "a") as fh:
            fh.write(f"{i}\n")
    with caplog.at_level(logging.INFO, logger="nbtrack"):
        got = {os.path.relpath(p, tmp_path) for p in watch.written()}
    # then the project is scanned for what changed since the cell began
    assert "overflowed" in caplog.text
    assert got == {"data/f0.txt", "data/f1.txt"}


def test_a_folder_moved_away_and_back_is_watched_under_its_new_name(watch, tmp_path: Path) -> None:
    watch.begin()
    os.rename(tmp_path / "data", tmp_path / "renamed")
    (tmp_path / "renamed" / "new.csv").write_text("z")
    written = set(watch.written())
    assert str(tmp_path / "renamed" / "new.csv") in written
    watch.begin()
    (tmp_path / "renamed" / "again.csv").write_text("z")
    assert watch.written() == [str(tmp_path / "renamed" / "again.csv")]


def test_a_file_opened_before_the_cell_and_only_closed_in_it_was_not_written(
    watch, tmp_path: Path
) -> None:
    # given a file written and flushed before the cell, and one with bytes still buffered
    flushed = (tmp_path / "data" / "flushed.log").open("w")
    flushed.write("x\n")
    flushed.flush()
    buffered = (tmp_path / "data" / "buffered.log").open("w")
    buffered.write("y\n")
    written = os.stat(flushed.name).st_ctime_ns  # the cell begins past the clocks' slack
    while time.time_ns() < written + fswatch.CLOCK_SLACK_NS:
        time.sleep(0.001)
    watch.begin()
    # when the cell closes both
    flushed.close()
    buffered.close()
    # then only the one whose bytes landed during the cell was written
    assert [os.path.relpath(p, tmp_path) for p in watch.written()] == ["data/buffered.log"]
