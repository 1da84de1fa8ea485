"""Faults of the twelfth trial: nothing lost, nothing stalls.

Each test makes the fault for real (a forked child that leaves by ``os._exit`` or is
killed, a fork Pool torn down by its context manager) and then asks what a user would
ask: is every point whose call returned in the store, once.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Kernel, kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.hashing import hash_file
from nbtrack.project import resolve_project
from waiting import wait_until


def _stored(project_dir: Path, name: str) -> dict:
    """The one run named ``name``, once it is stored and ended."""
    runs = wait_until(
        lambda: json.loads(run_cli("ls", "--json", "--text", name, cwd=project_dir).stdout)["runs"],
        lambda runs: len(runs) == 1 and runs[0]["status"] != "running",
        timeout=30,
        what=f"the run {name} in the store",
    )
    return runs[0]


def _series(project_dir: Path, run_id: str) -> dict[str, list[tuple[int, float]]]:
    client = Client(resolve_project(project_dir))
    return {
        name: [(p.step, p.value) for p in points]
        for name, points in client.metric_series(run_id).items()
        if not name.startswith("system/")
    }


# A child that logs and leaves without Python's exit handlers (os._exit, as a fork
# server's children and many libraries' workers do), a child killed after its calls
# returned, and a fork Pool whose `with` block ends in `terminate()` (SIGTERM: its
# workers' finalizers never run).
FORKED_CHILDREN = """%%track forked
import multiprocessing as mp, os, signal

def work(i):
    for s in range(20):
        nbtrack.log_metric(f"w{i}", float(s), step=s)
    return i

nbtrack.log_metric("parent", 0.0)
pid = os.fork()
if pid == 0:
    for s in range(5):
        nbtrack.log_metric("exited", float(s))
    os._exit(0)
os.waitpid(pid, 0)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    for s in range(5):
        nbtrack.log_metric("killed", float(s))
    os.write(w, b"x")
    signal.pause()
os.read(r, 1)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
with mp.get_context("fork").Pool(3) as pool:
    done = pool.map(work, range(6))
nbtrack.log_metric("parent", 1.0)
"""


def test_points_of_forked_children_are_kept_however_the_children_end(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given/When: a tracked cell whose forked children log points, then leave by
    # os._exit, are killed, or are terminated with their Pool
    kernel.ok(FORKED_CHILDREN)

    # Then: every point of every child is stored once, and the parent's run is whole
    # (before: each child's last point was lost: it waited in memory for an exit
    # handler that never ran)
    run = _stored(project_dir, "forked")
    assert run["status"] == "finished", run
    series = _series(project_dir, run["run_id"])
    assert series.pop("parent") == [(0, 0.0), (1, 1.0)]
    assert series.pop("exited") == [(s, float(s)) for s in range(5)]
    assert series.pop("killed") == [(s, float(s)) for s in range(5)]
    assert series == {f"w{i}": [(s, float(s)) for s in range(20)] for i in range(6)}


# Logs a run's parameters, tags and points, then dies (SIGKILL): its spool stays for
# the next reader. Prints the run's id first.
KILLED_WRITER = """
import os, signal
from pathlib import Path
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

w = RunWriter.start(resolve_project(Path.cwd()), name="damaged", params={"lr": 0.1})
for i in range(20):
    w.log_params({f"p{i}": i}, source="api")
    w.set_tags({f"t{i}": "x"})
for s in range(300):
    w.log_metric("loss", float(s))
print(w.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writers_spool(project_dir: Path) -> tuple[str, Path, list[int]]:
    """The run id and spool a killed writer left, and where the spool's records start."""
    (project_dir / ".nbtrack").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER], cwd=project_dir, env=kernel_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    run_id = done.stdout.strip()
    spool = resolve_project(project_dir).spool_dir / f"{run_id}.spool"
    data, starts = spool.read_bytes(), [0]
    while starts[-1] < len(data):
        starts.append(starts[-1] + 5 + struct.unpack_from("<I", data, starts[-1])[0])
    return run_id, spool, starts[:-1]


@pytest.mark.parametrize("seed", range(3))
def test_a_damaged_first_record_loses_none_of_the_rest_of_the_run(
    project_dir: Path, seed: int
) -> None:
    # Given: a killed writer's spool whose start record (the run's name, code and
    # environment: the second record, after the header) has a byte flipped to one that
    # no JSON text holds
    run_id, spool, starts = _killed_writers_spool(project_dir)
    data = bytearray(spool.read_bytes())
    data[random.Random(seed).randrange(starts[1] + 5, starts[2])] ^= 0x80
    spool.write_bytes(bytes(data))

    # When: a user lists the runs (which brings the spool in)
    listed = run_cli("ls", "--json", cwd=project_dir)

    # Then: the run is there, crashed, saying a record was damaged, with every
    # parameter, tag and point logged after it (before: the whole spool was taken for
    # a writer that died before its first record, and removed: the run was gone)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "crashed")], runs
    assert "1 damaged spool records skipped" in runs[0]["error"], runs[0]["error"]
    assert runs[0]["params"] == {"lr": 0.1, **{f"p{i}": i for i in range(20)}}
    shown = run_cli("show", run_id, "--json", cwd=project_dir)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tags"] == {f"t{i}": "x" for i in range(20)}
    assert _series(project_dir, run_id) == {"loss": [(s, float(s)) for s in range(300)]}


def test_a_first_record_cut_short_leaves_a_crashed_run_that_says_so(project_dir: Path) -> None:
    # Given: a killed writer's spool cut short inside its start record (a machine that
    # lost power while the writer wrote it)
    run_id, spool, starts = _killed_writers_spool(project_dir)
    with open(spool, "r+b") as fh:
        fh.truncate((starts[1] + starts[2]) // 2)

    # When: a user lists the runs
    listed = run_cli("ls", "--json", cwd=project_dir)

    # Then: the run is there, crashed, saying its spool was cut short (before: it was
    # removed without a word, as if the writer had died before writing anything)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "crashed")], runs
    assert "cut short" in runs[0]["error"], runs[0]["error"]


def _replace_with_directory(blob: Path) -> None:
    blob.mkdir()
    (blob / "inside").write_text("not a blob")


@pytest.mark.parametrize(
    "replace",
    [_replace_with_directory, lambda blob: blob.symlink_to(blob.name), lambda blob: blob.symlink_to("/nowhere/at/all")],
    ids=["a folder", "a link to itself", "a link to nowhere"],
)  # fmt: skip
def test_a_blob_replaced_by_something_else_is_a_finding_not_a_traceback(
    project_dir: Path, replace: object
) -> None:
    # Given: two runs' files in the cache, one of the blobs then replaced (by a sync
    # tool, a careless `ln -s`) with a folder or a symbolic link that leads nowhere
    (project_dir / ".nbtrack").mkdir()
    kept, lost = project_dir / "kept.csv", project_dir / "lost.csv"
    kept.write_text("a\n1\n")
    lost.write_text("a\n2\n")
    kept_run = record_run(project_dir, "kept", inputs=[kept])
    record_run(project_dir, "lost", inputs=[lost])
    cache = Client(resolve_project(project_dir)).cache
    blob = cache.path_for(hash_file(lost))
    blob.unlink()
    replace(blob)  # type: ignore[operator]

    # When: the user asks the doctor, repairs, and collects garbage
    asked = run_cli("doctor", cwd=project_dir)
    repaired = run_cli("doctor", "--repair", cwd=project_dir)
    collected = run_cli("gc", cwd=project_dir)

    # Then: the doctor names the bad blob, the repair moves it aside, gc goes through,
    # all without a traceback (before: IsADirectoryError or "Too many levels of symbolic
    # links" tracebacks from doctor and gc), and the other run's file still checks out
    assert asked.returncode == 1 and "no longer match" in asked.stdout, asked.stdout
    for done in (asked, repaired, collected):
        assert "Traceback" not in done.stderr, done.stderr
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert collected.returncode == 0, collected.stderr
    kept.unlink()
    assert run_cli("checkout", kept_run, cwd=project_dir).returncode == 0
    assert kept.read_text() == "a\n1\n"


@pytest.fixture
def shared_project() -> Iterator[Path]:
    """A project with a stored run, in a folder another user may enter (pytest's own
    temporary folders are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="nbtrack-shared-"))
    try:
        os.chmod(folder, 0o755)
        (folder / ".nbtrack" / "spool").mkdir(parents=True)
        record_run(folder, "stored")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("closed", [".nbtrack/spool", ".nbtrack"])
def test_a_store_folder_another_user_may_not_read_is_one_line_not_a_traceback(
    shared_project: Path, closed: str
) -> None:
    # Given: the spool folder, or the whole store folder, made unreadable (chmod 000)
    os.chmod(shared_project / closed, 0)

    # When: a user who is not its owner (nor root) lists, shows or asks the doctor
    for verb in (["ls"], ["show", "last"], ["doctor"]):
        done = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             sys.executable, "-m", "nbtrack", *verb],
            cwd=shared_project, env=kernel_env(HOME=str(shared_project)),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

        # Then: one line that says which folder cannot be read (before: a PermissionError
        # traceback from the look at the spool folder)
        said = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in said, (verb, said)
        assert "cannot read" in said and "Permission denied" in said, (verb, said)


@pytest.mark.parametrize("seed", range(3))
def test_a_flipped_bit_in_a_record_s_length_loses_that_record_only(
    project_dir: Path, seed: int
) -> None:
    # Given: a killed writer's spool where one parameter record's length has its top
    # bit flipped: it claims 2 GiB, past the end of the file
    run_id, spool, starts = _killed_writers_spool(project_dir)
    data = bytearray(spool.read_bytes())
    params = [at for at in starts[3:] if data[at + 5 :].startswith(b'{"e": "params"')]
    at = random.Random(seed).choice(params)
    lost = json.loads(data[at + 5 : at + 5 + struct.unpack_from("<I", data, at)[0]])
    data[at + 3] ^= 0x80
    spool.write_bytes(bytes(data))

    # When: a user lists the runs
    listed = run_cli("ls", "--json", cwd=project_dir)

    # Then: only that record is lost; every record after it is read (before: the
    # reader took the record for the torn last one and stopped: every later parameter
    # and tag, and every point, whose series is named after them, was lost)
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "crashed")], runs
    assert "1 damaged spool records skipped" in runs[0]["error"], runs[0]["error"]
    gone = lost["params"][0][0]
    assert runs[0]["params"] == {
        k: v for k, v in {"lr": 0.1, **{f"p{i}": i for i in range(20)}}.items() if k != gone
    }
    assert _series(project_dir, run_id) == {"loss": [(s, float(s)) for s in range(300)]}
