"""The spool under real faults: a SIGKILL at a random moment loses no logged point.

Each trial is a small real process that starts a run and logs metric points as fast
as it can (in bursts, with pauses, two series); after each ``log_metric`` call
returns it counts the call in a shared memory mapping, so the count survives the
kill. It is SIGKILLed at a seeded random moment; the next reader of the store must
show the run ``crashed`` with every counted point.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from nbtrack.client import Client
from nbtrack.project import resolve_project

TRIALS = 20
PARALLEL = 4
SEED = 14

# argv: counter file, ready file, seed. Logs "loss" and (every 7th call) "acc";
# after each call returns, stores the number of returned calls in the counter.
LOGGER = """
import mmap, os, random, sys, time
from pathlib import Path
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

counter, ready, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
fd = os.open(counter, os.O_RDWR)
mm = mmap.mmap(fd, 16)
count = memoryview(mm).cast("q")
w = RunWriter.start(resolve_project(), kind="cell", name=f"killed{seed}", params={"seed": seed})
count[1] = 1  # the run has started
ready.touch()
i = 0
while True:
    burst = rng.choice((1, 10, 1000, 50000))
    for _ in range(burst):
        w.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 7 == 0:
            w.log_metric("acc", i / 7.0)
        i += 1
        count[0] = i
    if rng.random() < 0.3:
        time.sleep(rng.random() * 0.05)
"""


def _counter(path: Path) -> tuple[int, int]:
    with open(path, "rb") as fh:
        data = fh.read(16)
    return int.from_bytes(data[:8], "little"), int.from_bytes(data[8:], "little")


def _start(project_dir: Path, seed: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
    counter = project_dir / f"count{seed}"
    counter.write_bytes(bytes(16))
    ready = project_dir / f"ready{seed}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", LOGGER, str(counter), str(ready), str(seed)],
        cwd=project_dir,
        env=env,
        stderr=subprocess.PIPE,
    )
    return proc, counter, ready


def _kill_at_random(
    proc: subprocess.Popen[bytes], ready: Path, rng: random.Random, early: bool
) -> None:
    deadline = time.monotonic() + 60
    if early:  # a kill while the process is still starting its run
        time.sleep(rng.random() * 1.5)
    else:
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the logger never started"
            time.sleep(0.005)
        time.sleep(rng.random() * 1.2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()


def test_random_sigkills_lose_no_logged_point(project_dir: Path) -> None:
    # Given: TRIALS logging processes, each SIGKILLed at a seeded random moment
    # (every fifth one while it may still be starting its run)
    rng = random.Random(SEED)
    counted: dict[int, tuple[int, int]] = {}
    for first in range(0, TRIALS, PARALLEL):
        batch = [_start(project_dir, seed) for seed in range(first, first + PARALLEL)]
        for seed, (proc, counter, ready) in zip(range(first, first + PARALLEL), batch, strict=True):
            _kill_at_random(proc, ready, rng, early=seed % 5 == 4)
            counted[seed] = _counter(counter)

    # When: a user next reads the store
    client = Client(resolve_project(project_dir))
    client.recover()

    # Then: no run is left running, every killed run is crashed, and every point whose
    # call had returned is stored, once, at its step
    _, rows = client.sql("SELECT name, status FROM runs ORDER BY name")
    assert all(status == "crashed" for _, status in rows), rows
    stored = dict(rows)
    lost: dict[int, int] = {}
    for seed, (returned, started) in counted.items():
        if not started:
            assert f"killed{seed}" not in stored or returned == 0
            continue
        assert stored.get(f"killed{seed}") == "crashed", (seed, stored)
        n, distinct, top = _loss_steps(client, f"killed{seed}")
        assert n == distinct, f"trial {seed}: duplicate points"
        if top + 1 < returned:
            lost[seed] = returned - (top + 1)
    total = sum(r for r, _ in counted.values())
    assert not lost, f"points lost per trial {lost} of {total} logged"
    # ... and nothing is left in the spool folder, temporary files included
    assert sorted(p.name for p in resolve_project(project_dir).spool_dir.iterdir()) == []


def _loss_steps(client: Client, name: str) -> tuple[int, int, int]:
    _, rows = client.sql(
        "SELECT count(*), count(DISTINCT step), coalesce(max(step), -1) FROM metrics m "
        f"JOIN runs r USING (run_id) WHERE r.name = '{name}' AND m.key = 'loss'"
    )
    return rows[0]


def test_a_spool_brought_in_and_removed_by_another_process_counts_as_all_in(
    project_dir: Path,
) -> None:
    # Given: a reader's look at the spool folder, then the run's own process storing
    # the run whole and removing its spool
    from nbtrack import spools
    from nbtrack.tracking import RunWriter

    project = resolve_project(project_dir)
    client = Client(project)
    w = RunWriter.start(project, kind="cell", name="gone", background=False)
    w.log_metric("loss", 0.5)
    w.finish("finished")
    seen = spools.scan(project.spool_dir)
    w.wait(60)
    assert not w.spool.path.exists()

    # When: the reader brings in what it saw
    done = client.ingest_spools(seen, max_points=None, max_seconds=None, background=False)

    # Then: the run counts as all in (an export waiting for it would never end), once
    assert done == [w.run_id]
    _, rows = client.sql("SELECT count(*) FROM metrics WHERE key = 'loss'")
    assert rows == [(1,)]


LISTER = """
from nbtrack.client import Client
print(Client.open().list_runs().total)
"""


def test_a_background_ingester_stops_reading_when_a_reader_queues(project_dir: Path) -> None:
    # Given: five ended runs spooled, and a background ingester holding the store's turn
    from nbtrack import catchup
    from nbtrack.tracking import RunWriter

    project = resolve_project(project_dir)
    client = Client(project)
    client.list_runs()  # the store exists
    for i in range(5):
        w = RunWriter.start(project, kind="cell", name=f"r{i}", params={"i": i})
        w.finish("finished")
    todo = catchup.ended(project.spool_dir)
    with client.store_turn(background=True):
        # ... while another process's reader queues for it
        reader = subprocess.Popen(
            [sys.executable, "-c", LISTER], cwd=project_dir, stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while not client.others_waiting():
            assert reader.poll() is None and time.monotonic() < deadline, "no reader queued"
            time.sleep(0.01)

        # When: the ingester brings the runs in
        done = client.ingest_spools(todo, max_points=None, max_seconds=None, background=True)

    # Then: it stored one run and left the others for later (the reader's turn came
    # after one spool's reading, not after all five) ...
    assert len(done) == 1
    out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0
    # ... and the reader, let in, brought in the rest before it read: all five listed
    assert out.strip() == "5"
    assert not catchup.ended(project.spool_dir)


# argv: ready file. Starts a run, says so, and stays alive with the run open.
HOLDER = """
import sys, time
from pathlib import Path
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

w = RunWriter.start(resolve_project(), kind="cell", name="held", params={"lr": 0.1})
w.wait()
Path(sys.argv[1]).write_text(w.run_id)
time.sleep(120)
"""


def _shift_recorded_start(spool: Path, seconds: float) -> None:
    # What a reader sees after the wall clock was set (or a suspended machine resumed):
    # the writer's start time on the wall clock no longer matches the one it recorded.
    # Same text length, so the header's frame stays whole.
    data = spool.read_bytes()
    key = b'"pid_start": '
    at = data.index(key) + len(key)
    end = data.index(b",", at)
    old = data[at:end].decode()
    decimals = len(old.partition(".")[2])
    new = f"{float(old) + seconds:.{decimals}f}".encode()
    assert len(new) == len(old)
    spool.write_bytes(data[:at] + new + data[end:])


def test_a_live_writers_run_stays_running_when_the_wall_clock_jumps(
    project_dir: Path,
) -> None:
    # given a process holding a run open
    ready = project_dir / "ready"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBTRACK_")}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(ready)], cwd=project_dir, env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        run_id = ready.read_text()
        project = resolve_project(project_dir)
        # when the clock moved an hour since it started (a laptop's suspend, a VM paused)
        _shift_recorded_start(project.spool_dir / f"{run_id}.spool", -3600.0)
        # then another process still reads the run as running, not crashed
        assert Client(project).get_run(run_id).status == "running"
        # and once the writer is really gone, the run is crashed
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert Client(project).get_run(run_id).status == "crashed"
    finally:
        proc.kill()
        proc.wait()


def test_a_temporary_spool_of_a_dead_writer_is_removed_and_a_live_ones_kept(
    project_dir: Path,
) -> None:
    # Given: the temporary starts of two spools, one by a process that is gone (killed
    # between creating its spool and renaming it into place), one by this live process
    from nbtrack import spools

    project = resolve_project(project_dir)
    project.spool_dir.mkdir(parents=True, exist_ok=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = project.spool_dir / f".r1.spool.{int(gone.stdout)}.tmp"
    live = project.spool_dir / f".r2.spool.{os.getpid()}.tmp"
    for path in (dead, live):
        path.write_bytes(b"")
    # When: a reader looks at the spool folder
    assert spools.scan(project.spool_dir) == []
    # Then: the dead writer's leftover is gone, the live writer's is left to it
    assert not dead.exists()
    assert live.exists()
    # and once older than the grace period (a pid can be reused), it goes too
    old = time.time() - spools.UNREADABLE_GRACE - 60
    os.utime(live, (old, old))
    spools.scan(project.spool_dir)
    assert not live.exists()
