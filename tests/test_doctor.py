"""``nbtrack doctor``: what it finds in real damaged folders, and what --repair fixes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.project import Project, resolve_project

DIE_MID_RUN = """
import os, sys
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
w = RunWriter.start(resolve_project(sys.argv[1]), name="orphan", params={"lr": 0.5})
w.log_metric("loss", 0.25)
os._exit(0)  # dies before the run ends or reaches the store
"""


@pytest.fixture
def project(project_dir: Path) -> Project:
    project = resolve_project(project_dir)
    record_run(project, "kept", params={"lr": 0.1}, metrics={"acc": 0.9})
    return project


def doctor(project: Project, *args: str) -> tuple[int, dict]:
    done = run_cli("doctor", "--json", *args, cwd=project.root)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def status_of(report: dict, check: str) -> str:
    return next(f["status"] for f in report["findings"] if f["check"] == check)


def orphan_spool(project: Project) -> None:
    subprocess.run(
        [sys.executable, "-c", DIE_MID_RUN, str(project.root)],
        env=kernel_env(), check=True, timeout=120,
    )  # fmt: skip
    assert list(project.spool_dir.glob("*.spool"))


def test_a_healthy_project_is_all_ok_and_exit_zero(project: Project) -> None:
    code, report = doctor(project)
    assert code == 0 and report["healthy"]
    assert {f["status"] for f in report["findings"]} == {"ok"}
    table = run_cli("doctor", cwd=project.root)
    assert table.returncode == 0 and "every block read (1 runs" in table.stdout


def test_an_empty_store_file_is_set_aside_and_rebuilt_from_the_spools(project: Project) -> None:
    project.db_path.write_bytes(b"")
    orphan_spool(project)
    code, report = doctor(project, "--repair")
    assert code == 0, report
    assert status_of(report, "file") in ("repaired", "ok")
    assert project.db_path.stat().st_size > 0
    names = [r.name for r in Client(project).list_runs().runs]
    assert names == ["orphan"]
    assert Client(project).get_run("last").status == "crashed"
    # Nothing deleted: the empty file is beside the store, unless the store replaced it.
    assert all(p.stat().st_size == 0 for p in project.folder.glob("runs.duckdb.empty-*"))


def test_a_garbage_write_ahead_log_is_moved_aside_not_deleted(project: Project) -> None:
    wal = project.db_path.with_name("runs.duckdb.wal")
    wal.write_bytes(b"garbage" * 100)
    code, report = doctor(project)
    assert code == 1 and "write-ahead log" in status_of(report, "file") + str(report)
    assert wal.read_bytes() == b"garbage" * 100
    code, report = doctor(project, "--repair")
    assert code == 0 and status_of(report, "write-ahead log") == "repaired"
    [moved] = project.folder.glob("runs.duckdb.wal.bad-*")
    assert moved.read_bytes() == b"garbage" * 100 and not wal.exists()
    assert Client(project).list_runs().total == 1


def test_orphan_spools_are_reported_then_brought_in(project: Project) -> None:
    orphan_spool(project)
    code, report = doctor(project)
    assert code == 1 and status_of(report, "orphans") == "problem"
    code, report = doctor(project, "--repair")
    assert code == 0 and status_of(report, "orphans") == "repaired"
    assert {r.name for r in Client(project).list_runs().runs} == {"kept", "orphan"}


def test_corrupt_blobs_are_quarantined_and_stale_temporaries_removed(project: Project) -> None:
    client = Client(project)
    digest = client.cache.put_bytes(b"the bytes of a data file")
    blob = client.cache.path_for(digest)
    blob.chmod(0o644)
    blob.write_bytes(b"other bytes")
    tmp = client.cache.root / "tmp" / ".tmp-dead-writer"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"half a copy")
    old = time.time() - 7200
    import os

    os.utime(tmp, (old, old))
    code, report = doctor(project)
    assert code == 1
    assert status_of(report, "blobs") == "problem" and digest in str(report)
    assert status_of(report, "temporary files") == "problem"
    code, report = doctor(project, "--repair")
    assert code == 0
    assert status_of(report, "blobs") == status_of(report, "temporary files") == "repaired"
    assert blob.with_name(blob.name + ".corrupt").read_bytes() == b"other bytes"
    assert not tmp.exists()
    assert doctor(project)[0] == 0


def test_a_damaged_store_is_a_problem_doctor_names_with_the_newest_backup(
    project: Project,
) -> None:
    assert run_cli("sql", "--write", "CHECKPOINT", cwd=project.root).returncode == 0
    data = bytearray(project.db_path.read_bytes())
    for start in range(3 * 4096, len(data) - 200, 262144):
        for i in range(start + 64, start + 128):
            data[i] ^= 0xFF
    project.db_path.write_bytes(bytes(data))
    code, report = doctor(project, "--repair")
    assert code == 1 and status_of(report, "file") == "problem"
    detail = next(f["detail"] for f in report["findings"] if f["check"] == "file")
    assert "is damaged" in detail and "runs.duckdb.sql-" in detail and ".bak" in detail
    assert project.db_path.read_bytes() == bytes(data)  # never touched
