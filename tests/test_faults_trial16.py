"""Faults of the sixteenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (another program holding the store open, an
environment variable set to "for ever", a kernel told of a notebook that is not there)
and then asks what a user would ask: does the command end and say why in one line, is
every run still there, and in the store it belongs to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import kernel_env, run_cli
from factory import record_run
from jupyter_fixtures import _no_store_override, jp_server_config  # noqa: F401 - fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)

HOLD = """
import sys, time, duckdb
con = duckdb.connect(".nbtrack/runs.duckdb", read_only=sys.argv[1] == "ro")
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_program_holding_the_store_open_is_named_while_waiting_and_in_the_error(
    project_dir: Path, mode: str
) -> None:
    # Given: a store with a run, which another program keeps open: a notebook's
    # own `duckdb.connect(".nbtrack/runs.duckdb")`, read-write or read-only
    run_id = record_run(project_dir, "one", metrics={"acc": 0.5})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, mode], cwd=project_dir, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        # When: the user lists runs (a short lock timeout: the default is a minute)
        started = time.monotonic()
        out = run_cli("ls", cwd=project_dir, env=kernel_env(NBTRACK_LOCK_TIMEOUT="6"))
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    # Then: while it waits it says who holds the file, and its error names it too;
    # before, it waited in silence and blamed "another process"
    assert out.returncode == 1, out.stdout
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr
    assert f"process {holder.pid} (-c " in lines[0] and "waiting up to 6 s" in lines[0]
    assert lines[1].startswith("nbtrack: error:") and f"process {holder.pid}" in lines[1]
    assert "close its connection" in lines[1]
    assert took < 30

    # and once it lets go, nothing was lost
    listing = run_cli("ls", cwd=project_dir)
    assert listing.returncode == 0, listing.stderr
    assert run_id[:8] in listing.stdout


@pytest.mark.parametrize("value", ["inf", "1e400", "1e12"])
def test_a_query_timeout_of_for_ever_lists_and_queries_without_a_traceback(
    project_dir: Path, value: str
) -> None:
    # Given: a store with a run, and a user who wants queries never cut short
    run_id = record_run(project_dir, "one", metrics={"acc": 0.5})
    env = kernel_env(NBTRACK_QUERY_TIMEOUT=value)

    # When: they list runs and query the store
    listing = run_cli("ls", cwd=project_dir, env=env)
    query = run_cli("sql", "SELECT count(*) AS n FROM runs", cwd=project_dir, env=env)

    # Then: both work, quietly; before, a timer thread died with a 15-line
    # `OverflowError: timestamp out of range for platform time_t`
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    assert run_id[:8] in listing.stdout
    assert query.returncode == 0 and query.stderr == "", query.stderr


@pytest.mark.parametrize("variable", ["NBTRACK_NOTEBOOK", "JPY_SESSION_NAME"])
def test_a_notebook_path_that_is_not_there_leaves_the_run_in_the_kernels_project(
    kernel_factory, project_dir: Path, tmp_path_factory: pytest.TempPathFactory, variable: str
) -> None:
    # Given: a project with its store, and a kernel told it runs a notebook that is
    # not there (a stale or mistyped path: a notebook renamed since, another folder's)
    record_run(project_dir, "before")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    kernel = kernel_factory(**{variable: str(elsewhere / "gone.ipynb")})
    kernel.ok("%load_ext nbtrack\nimport nbtrack")

    # When: a tracked cell runs
    reply = kernel.ok("%%track\nx = 1\nnbtrack.log_metric('acc', 0.9)")
    assert "finished" in reply.text

    # Then: the run is in the kernel's project, and no store was made beside the
    # missing notebook; before, one was (at `/` for `/x.ipynb`: then the nearest store
    # of every folder on the machine without one of its own)
    assert not (elsewhere / ".nbtrack").exists()
    runs = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"]
    assert sorted(r["params"].get("x", 0) for r in runs) == [0, 1]


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_body_nested_100000_deep_is_a_400_not_a_server_error(
    jp_fetch: Any, jp_root_dir: Path, method: str
) -> None:
    # Given: a project under the server (a hostile or broken client is all it takes)
    (jp_root_dir / ".nbtrack").mkdir()
    record_run(jp_root_dir, "train", metrics={"acc": 0.5})

    # When: a client moves an alias with a JSON body of 100,000 nested arrays
    body = '{"version": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = await jp_fetch(
        "nbtrack", "api", "models", "clf", "aliases", "champion",
        method=method, body=body, raise_error=False, allow_nonstandard_methods=True,
    )  # fmt: skip

    # Then: one line saying the body is not JSON; before, a RecursionError was a 500
    # "unexpected server error" and a traceback in the server's log
    assert response.code == 400, response.body
    error = json.loads(response.body)["error"]
    assert error["type"] == "UsageError" and "must be JSON" in error["message"]


def test_an_import_that_fills_the_disk_takes_its_blobs_back_and_the_store_stays_usable(
    project_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given: a bundle of a run that wrote a 6 MB file, and a project on a disk
    # nearly full: its store holds a run, and there is room for the blob, not for more
    source = tmp_path_factory.mktemp("source")
    (source / "big.bin").write_bytes(os.urandom(6_000_000))
    record_run(source, "train", outputs=[source / "big.bin"])
    bundle = source / "b.zip"
    assert run_cli("export", "last", "-o", str(bundle), cwd=source).returncode == 0
    disk = project_dir / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(disk)], check=True)
    try:
        (disk / ".nbtrack").mkdir()
        here = record_run(disk, "here", metrics={"acc": 0.5})
        # (room for the blob, and little more: other files on a real disk)
        with open(disk / "other", "wb") as other:
            other.truncate(0)
            os.posix_fallocate(other.fileno(), 0, shutil.disk_usage(disk).free - 6_100_000)
        free = shutil.disk_usage(disk).free

        # When: the user imports the bundle and the disk fills on the way
        imported = run_cli("import", str(bundle), cwd=disk)

        # Then: one line, and the disk has its room back, so the store works at once;
        # before, the 6 MB of blobs stayed (gc keeps young blobs ten minutes) and every
        # command, `ls` too, failed for want of room
        assert imported.returncode == 1, imported.stdout
        assert imported.stderr.startswith("nbtrack: error:") and "space" in imported.stderr
        assert len(imported.stderr.splitlines()) == 1, imported.stderr
        assert shutil.disk_usage(disk).free > free - 1_000_000
        listing = run_cli("ls", cwd=disk)
        assert listing.returncode == 0, listing.stderr
        assert here[:8] in listing.stdout
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_a_store_held_open_by_a_notebook_slows_only_the_first_tracked_cell(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a store with a run of the cell, held open by another program (the user's
    # `duckdb.connect(".nbtrack/runs.duckdb")` in another notebook) before this kernel
    # loads nbtrack
    record_run(project_dir, "before")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, "rw"], cwd=project_dir, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        kernel = kernel_factory()
        kernel.ok("%load_ext nbtrack\nimport nbtrack")

        # When: the user runs tracked cells while it stays open
        took = []
        for i in range(4):
            started = time.monotonic()
            reply = kernel.ok(f"%%track\nx = {i}\nnbtrack.log_metric('acc', x)")
            took.append(time.monotonic() - started)
            assert "finished" in reply.text
    finally:
        holder.kill()
        holder.wait()

    # Then: the first cell waits for the previous runs (3 s at most), the others not;
    # before, every cell waited the 3 s for a read that could not end
    assert max(took[1:]) < 1.5, took
    # and every run is stored once the store is free again
    runs = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"]
    assert sorted(r["params"].get("x", -1) for r in runs) == [-1, 0, 1, 2, 3]


@pytest.mark.parametrize("ref", ["ab" * 5_000, "zz" * 5_000], ids=["hex", "not-hex"])
def test_a_run_reference_pasted_10000_characters_long_is_not_repeated_back_whole(
    project_dir: Path, ref: str
) -> None:
    # Given: a store with a run
    record_run(project_dir, name="kept")

    # When: a page of text is pasted where a run id goes
    shown = run_cli("show", ref, cwd=project_dir)
    diffed = run_cli("diff", ref, "last", cwd=project_dir)

    # Then: one line each, quoting the start of it and saying how long it was
    for out in (shown, diffed):
        assert out.returncode != 0
        [line] = out.stderr.strip().splitlines()
        assert f"'{ref[:40]}'... (10,000 characters)" in line
        assert len(line) < 300
