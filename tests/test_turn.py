"""The store's turn across processes: first come, first served, readers first.

Real processes queue on the lock file while this one holds the turn; when it lets
go, the order they got the turn in is the order a user would see their commands
answered in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.store.connection import Connection

# Queue for the turn, say when it was had (CLOCK_MONOTONIC is the same in every
# process), hold it a moment, let go.
TAKER = """
import json, os, sys, time
from nbtrack.store.connection import Connection
db, background, hold, go = sys.argv[1], sys.argv[2] == "bg", float(sys.argv[3]), sys.argv[4]
c = Connection(db)
open(go + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
asked = time.monotonic()
with c.turn(background=background):
    got = time.monotonic()
    time.sleep(hold)
print(json.dumps({"asked": asked, "got": got}))
"""


def _tickets(db: Path) -> int:
    # Read through the turn's own descriptor: closing any other descriptor of the lock
    # file would drop every POSIX lock this process holds on it (the turn, here).
    turn = Connection(db)._turn
    if turn.fd >= 0:
        raw = os.pread(turn.fd, 8, 0)
    else:
        raw = db.with_name(db.name + ".lock").read_bytes()[:8]
    return int.from_bytes(raw, "little") if len(raw) == 8 else 0


def _start(db: Path, kind: str, hold: float = 0.05) -> tuple[subprocess.Popen[str], Path]:
    """A process ready to queue for the turn (it starts slowly on a busy machine)."""
    go = db.parent / f"go-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", TAKER, str(db), kind, str(hold), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return _ready(proc, go), go


def _ready(proc: subprocess.Popen[str], go: Path) -> subprocess.Popen[str]:
    deadline = time.monotonic() + 60
    while not Path(f"{go}.ready").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the process never started"
        time.sleep(0.01)
    return proc


def _queue(db: Path, kind: str, hold: float = 0.05) -> subprocess.Popen[str]:
    """Start a process that queues for the turn; return once it holds a ticket."""
    return _go(db, *_start(db, kind, hold))


def _go(db: Path, proc: subprocess.Popen[str], go: Path) -> subprocess.Popen[str]:
    before = _tickets(db)
    go.touch()
    deadline = time.monotonic() + 60
    while _tickets(db) == before:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the process never queued"
        time.sleep(0.01)
    return proc


def _got(proc: subprocess.Popen[str]) -> float:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return float(json.loads(out)["got"])


def test_readers_get_the_turn_in_the_order_they_asked(project_dir: Path) -> None:
    # Given: the store's turn held here, and three readers queued one after the other
    db = resolve_project(project_dir).db_path
    Client(resolve_project(project_dir)).info()
    holder = Connection(db)
    with holder.turn():
        readers = [_queue(db, "fg") for _ in range(3)]
        # When: the turn is let go
    # Then: they had it one after the other, first come first served
    got = [_got(p) for p in readers]
    assert got == sorted(got)


def test_a_reader_goes_before_background_ingesters_queued_before_it(project_dir: Path) -> None:
    # Given: the turn held here, two background ingesters queued, then a reader
    db = resolve_project(project_dir).db_path
    Client(resolve_project(project_dir)).info()
    started = [_start(db, kind) for kind in ("bg", "bg", "fg")]
    with Connection(db).turn():
        *ingesters, reader = [_go(db, *s) for s in started]
        # When: the turn is let go (within the ingesters' patience)
    # Then: the reader had it first, then the ingesters in their order
    got_reader, got_ingesters = _got(reader), [_got(p) for p in ingesters]
    assert got_reader < min(got_ingesters)
    assert got_ingesters == sorted(got_ingesters)


def test_a_holder_that_dies_leaves_no_one_waiting(project_dir: Path) -> None:
    # Given: a process holding the turn for a long time, and a reader queued behind it
    db = resolve_project(project_dir).db_path
    Client(resolve_project(project_dir)).info()
    stuck = _queue(db, "fg", hold=600)
    deadline = time.monotonic() + 60
    while Connection(db)._turn.path.stat().st_size < 8 or _tickets(db) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.5)  # it holds the turn now (its ticket was the only one)
    reader = _queue(db, "fg")
    # When: the holder is killed
    stuck.kill()
    stuck.communicate()
    killed = time.monotonic()
    # Then: the reader has the turn at once
    assert _got(reader) - killed < 5.0


# Look at the whole foreground queue the way a holder does (``others_waiting``), but for
# long enough that a newcomer is sure to take its ticket meanwhile.
LOOKER = """
import fcntl, os, sys, time
from nbtrack.store.turn import FOREGROUND, SPAN
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, SPAN, FOREGROUND)
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
"""


def test_a_newcomer_is_not_refused_while_another_process_looks_at_the_queue(tmp_path):
    # given another process looking at the queue at the very moment a reader arrives
    # (for 2 s: the reader must arrive while it looks, however busy the machine)
    db = tmp_path / ".nbtrack" / "runs.duckdb"
    db.parent.mkdir()
    looking = tmp_path / "looking"
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOKER, str(db) + ".lock", str(looking), "2.0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not looking.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the looker never started"
            time.sleep(0.01)
        # when the reader takes its ticket, then it waits the look out and gets its turn
        conn = Connection(db)
        with conn.turn():
            assert conn._turn.waited >= 0.1
    finally:
        proc.kill()
        proc.communicate()


# Queue for the turn as a reader; once had, say whether DuckDB's write-ahead log was
# there (the ingester before it did not checkpoint) and how many runs the store shows.
WAL_READER = """
import json, os, sys, time
from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.store import integrity
project = resolve_project(sys.argv[1])
go = sys.argv[2]
open(go + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
store = Client(project)._store
with store.turn():
    wal = integrity.wal_path(project.db_path).exists()
    runs = len(store.runs_frame(__import__("nbtrack.models").models.RunQuery(kind=None)))
print(json.dumps({"wal": wal, "runs": runs}))
"""


def test_an_ingester_leaves_its_checkpoint_to_later_when_a_reader_waits(
    project_dir: Path,
) -> None:
    # Given: runs written in an ingester's (background) turn, and a reader of another
    # process queued for the store meanwhile
    from nbtrack.store import integrity
    from nbtrack.tracking import RunWriter

    project = resolve_project(project_dir)
    client = Client(project)
    client.info()
    go = project_dir / f"go-{time.monotonic_ns()}"
    reader = subprocess.Popen(
        [sys.executable, "-c", WAL_READER, str(project_dir), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _ready(reader, go)
    with client.store_turn(background=True):
        w = RunWriter.start(project, kind="cell", name="a", params={"lr": 0.1})
        w.finish("finished")
        w.wait()
        _go(project.db_path, reader, go)
        # When: the ingester's turn ends with the reader waiting
    # Then: the reader had the store before any checkpoint, and saw the run
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert json.loads(out) == {"wal": True, "runs": 1}
    # and the ingester's own checkpoint afterwards leaves no log behind
    assert client.checkpoint()
    assert not integrity.wal_path(project.db_path).exists()
    # while an ingester's turn that nobody waits for checkpoints as it ends
    with client.store_turn(background=True):
        w = RunWriter.start(project, kind="cell", name="b")
        w.finish("finished")
        w.wait()
    assert not integrity.wal_path(project.db_path).exists()
    assert len(client.runs_frame(kind=None)) == 2
