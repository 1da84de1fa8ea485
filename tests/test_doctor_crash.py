"""``nbtrack doctor --repair`` survives a SIGKILL at any moment and a full disk.

A project with what repair fixes — runs spooled by processes that died, a blob whose
bytes were damaged, a temporary file a dead writer left — is copied afresh for each of
20 seeded trials; ``doctor --repair`` runs as a real process and is killed with SIGKILL
at a random moment. After each kill the store opens, every orphaned run is in it once
with every metric point it logged (never half), the damaged blob is in place or set
aside (never lost), and a repair run to its end leaves a healthy project.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
from test_registry_crash import (
    SEED,
    TRIALS,
    fill,
    killed_at_random,
    nbtrack_command,
    quickest,
    small_disk,
)

__all__ = ["small_disk"]  # the fixture, shared with the alias tests

ORPHANS = 4
POINTS = 200
DIE_MID_RUN = f"""
import os, sys
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
w = RunWriter.start(resolve_project(sys.argv[1]), name="orphan-" + sys.argv[2])
for step in range({POINTS}):
    w.log_metric("loss", 1.0 / (step + 1), step=step)
os._exit(0)  # dies before the run ends or reaches the store
"""
DAMAGED = b"the bytes of a data file"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project needing repair: orphan spools, a damaged blob, a stale temporary file."""
    root = tmp_path_factory.mktemp("template")
    project = resolve_project(root)
    record_run(project, "kept", metrics={"acc": 0.9})
    for i in range(ORPHANS):
        subprocess.run(
            [sys.executable, "-c", DIE_MID_RUN, str(root), str(i)],
            env=kernel_env(), check=True, timeout=120,
        )  # fmt: skip
    cache = Client(project).cache
    blob = cache.path_for(cache.put_bytes(DAMAGED))
    blob.chmod(0o644)
    blob.write_bytes(b"other bytes")
    stale = cache.root / "tmp" / ".tmp-dead-writer"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a copy")
    old = time.time() - 7200
    import os

    os.utime(stale, (old, old))
    assert len(list(project.spool_dir.glob("*.spool"))) == ORPHANS
    return root


def copy_of(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def assert_whole(root: Path) -> None:
    """The store opens; each orphan run is in it once, with every point it logged."""
    client = Client(resolve_project(root))
    runs = client.list_runs(RunQuery(limit=100)).runs
    names = sorted(r.name or "" for r in runs)
    assert names == ["kept", *(f"orphan-{i}" for i in range(ORPHANS))], names
    for run in runs:
        if run.name != "kept":
            assert run.status == "crashed"
            assert len(client.metric_series(run.run_id, ["loss"])["loss"]) == POINTS


def blob_kept(root: Path) -> None:
    """The damaged blob is where it was or set aside as .corrupt: its bytes are never lost."""
    blobs = [p for p in (root / ".nbtrack" / "cache").rglob("*") if p.is_file()]
    assert any(p.read_bytes() == b"other bytes" for p in blobs)


def doctor(root: Path, *args: str) -> tuple[int, dict]:
    done = run_cli("doctor", "--json", *args, cwd=root)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_sigkill_at_random_moments_of_a_repair_loses_nothing(
    template: Path, tmp_path: Path
) -> None:
    timing = iter([copy_of(template, tmp_path / f"timing-{i}") for i in range(3)])

    def repair() -> None:
        code, report = doctor(next(timing), "--repair")
        assert code == 0, report

    span = quickest(repair)  # how long one repair takes here, start to exit
    rng = random.Random(SEED)
    killed = 0
    for trial in range(TRIALS):
        # Given: a fresh copy of the project that needs repair
        root = copy_of(template, tmp_path / f"trial-{trial}")
        # When: doctor --repair is killed at a random moment
        killed += killed_at_random(nbtrack_command("doctor", "--repair"), root, rng, span)
        # Then: nothing is lost or half-stored, and a repair to the end makes it healthy
        blob_kept(root)
        assert_whole(root)
        code, report = doctor(root, "--repair")
        assert code == 0, report
        assert doctor(root)[0] == 0
        blob_kept(root)
        shutil.rmtree(root)
    assert killed >= TRIALS // 2, f"only {killed} of {TRIALS} repairs were killed before their end"


def test_a_repair_on_a_full_disk_fails_cleanly_and_finishes_once_there_is_space(
    template: Path, small_disk: Path
) -> None:
    # Given: the project on a filesystem with no space left
    for item in template.iterdir():
        if item.is_dir():
            shutil.copytree(item, small_disk / item.name, symlinks=True)
        else:
            shutil.copy2(item, small_disk / item.name)
    spools = sorted(p.name for p in (small_disk / ".nbtrack" / "spool").glob("*.spool"))
    filler = fill(small_disk)
    # When: doctor --repair runs
    done = run_cli("doctor", "--repair", cwd=small_disk)
    # Then: no traceback, and every orphan run is still somewhere: spooled, or stored whole
    assert "Traceback" not in done.stderr, done.stderr
    left = sorted(p.name for p in (small_disk / ".nbtrack" / "spool").glob("*.spool"))
    assert set(left) <= set(spools)
    blob_kept(small_disk)
    # When: space comes back, then a repair finishes and nothing was lost
    filler.unlink()
    code, report = doctor(small_disk, "--repair")
    assert code == 0, report
    assert_whole(small_disk)
    blob_kept(small_disk)
    assert doctor(small_disk)[0] == 0
