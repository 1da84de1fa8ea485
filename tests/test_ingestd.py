"""The store's one ingestion process (``nbtrack.ingestd``): started by the first
process with a run to ingest, one per store, gone when idle or when its store goes,
and killed at any moment it loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from conftest import Kernel, ingestion_processes, kernel_env, run_cli
from nbtrack.client import Client
from nbtrack.ingestd import IDLE_EXIT
from nbtrack.models import RunQuery
from nbtrack.project import resolve_project
from waiting import wait_until

SEED = 14

# argv: runs, points per run, pause between runs (s). Records runs as a kernel does
# (background writers: the ingestion process stores them), then exits without a drain.
WRITER = """
import sys, time
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter

runs, points, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
project = resolve_project()
for i in range(runs):
    w = RunWriter.start(project, kind="cell", name=f"r{i}", params={"i": i}, background=True)
    for step in range(points):
        w.log_metric("loss", 1.0 / (step + 1))
    w.finish("finished")
    time.sleep(pause)
if len(sys.argv) > 4:
    from nbtrack import ingest
    assert ingest.ingestor().drain(60), "not drained"
print("written")
"""


def _writer(project_dir: Path, runs: int, points: int, pause: float, *more: str, **env: str):
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(runs), str(points), str(pause), *more],
        cwd=project_dir,
        env=kernel_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _store_processes(project_dir: Path) -> list[int]:
    store = str(project_dir / ".nbtrack")
    # (the command line as listed: one that exits meanwhile is a zombie for a moment)
    return [p.pid for p in ingestion_processes() if store in " ".join(p.info["cmdline"])]


def _ingestion_process(project_dir: Path, idle: float) -> subprocess.Popen[bytes]:
    """The store's ingestion process, started here, once it runs its rounds."""
    from nbtrack import ingestlink

    project = resolve_project(project_dir)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "nbtrack.ingestd", str(project.db_path), "--idle", str(idle)],
        env=kernel_env(),
    )
    try:
        wait_until(lambda: ingestlink.rounds(project.folder) is not None, timeout=60,
                   what="the ingestion process to start its rounds")  # fmt: skip
    except BaseException:
        daemon.kill()
        daemon.wait()
        raise
    return daemon


def _counts(project_dir: Path) -> tuple[int, ...]:
    _, rows = Client(resolve_project(project_dir)).sql(
        "SELECT (SELECT count(*) FROM runs), "
        "(SELECT count(*) FROM runs WHERE status = 'finished'), "
        "(SELECT count(*) FROM params), "
        "(SELECT count(*) FROM metrics WHERE key IN ('m', 'loss')), "
        "(SELECT count(*) FROM (SELECT DISTINCT run_id, key, step FROM metrics))"
    )
    return tuple(rows[0])


def test_a_kernel_s_runs_are_stored_by_the_store_s_one_ingestion_process(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a kernel that records runs
    kernel.ok("%config TrackMagics.show_summary = False")

    # When: it runs tracked cells and reads its runs right after
    for i in range(3):
        kernel.ok(f"%%track step{i}\nx = {i}\nnbtrack.log_metric('m', x)")
    out = kernel.ok("print(len(nbtrack.runs(limit=None)))")

    # Then: every run is visible at once (read-your-writes) ...
    assert out.text.strip().endswith("3")
    # ... one ingestion process runs for the store, and it brings every spool in. (A
    # second one started by a later cell finds the store's lock taken and leaves at
    # once; on a busy machine it can still be listed a moment later: wait it out.)
    running = wait_until(lambda: _store_processes(project_dir), lambda pids: len(pids) < 2,
                         timeout=30, what="a second ingestion process to leave")  # fmt: skip
    assert len(running) == 1
    spool = project_dir / ".nbtrack" / "spool"
    wait_until(lambda: not list(spool.iterdir()), timeout=30, what="spools removed")
    assert _counts(project_dir)[:4] == (3, 3, 3, 3)
    # ... and leaves on its own once idle, while the kernel still runs
    wait_until(lambda: not _store_processes(project_dir), timeout=IDLE_EXIT + 20,
               what="the idle ingestion process to exit")  # fmt: skip


def test_killing_the_ingestion_process_at_random_moments_loses_nothing(
    project_dir: Path,
) -> None:
    # Given: two processes recording 60 runs of 3,000 points each for ~6 s, as kernels do
    runs, points = 60, 3000
    writers = [_writer(project_dir, runs, points, 0.1) for _ in range(2)]
    rng = random.Random(SEED)
    pids: set[int] = set()  # the processes killed

    # When: the store's ingestion process is SIGKILLed at seeded random moments. It is
    # found by its command line, not by the pid in its lock file: a pid left there by a
    # process that exited may be another program's by now (pids wrap around quickly
    # on a machine running a test suite), and killing it killed the suite itself.
    while any(w.poll() is None for w in writers):
        time.sleep(rng.uniform(0.1, 1.2))
        for pid in _store_processes(project_dir):
            if pid not in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                pids.add(pid)
    for w in writers:
        out, err = w.communicate()
        assert w.returncode == 0, err
    assert len(pids) >= 3  # (the process started again and was killed again)

    # Then: a reader finds every run and every point, each stored once, and no spool
    # is left (the next ingestion process or the reader took over where it stopped)
    Client(resolve_project(project_dir)).recover()
    assert _counts(project_dir) == (2 * runs, 2 * runs, 2 * runs, 2 * runs * points,
                                    2 * runs * points)  # fmt: skip
    assert not list((project_dir / ".nbtrack" / "spool").iterdir())


def test_one_process_per_store_and_it_leaves_when_the_store_folder_goes(
    project_dir: Path,
) -> None:
    # Given: a store, and three ingestion processes started for it at once
    (project_dir / ".nbtrack").mkdir()
    store = str(project_dir / ".nbtrack" / "runs.duckdb")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "nbtrack.ingestd", store, "--idle", "60"],
            env=kernel_env(),
        )
        for _ in range(3)
    ]
    # When: they sort it out
    wait_until(lambda: sum(p.poll() is None for p in procs) == 1, timeout=30,
               what="one process left")  # fmt: skip
    (survivor,) = [p for p in procs if p.poll() is None]
    assert all(p.returncode == 0 for p in procs if p is not survivor)
    # ... and the store's folder is deleted
    shutil.rmtree(project_dir / ".nbtrack")

    # Then: the last one exits at once, long before its idle time
    assert survivor.wait(timeout=10) == 0


def test_without_the_process_the_kernel_ingests_its_runs_itself(project_dir: Path) -> None:
    # Given: a store where the ingestion process cannot run (its lock is a folder) ...
    (project_dir / ".nbtrack" / "ingestd.lock").mkdir(parents=True)
    # When: a process records runs and drains
    proc = _writer(project_dir, 3, 100, 0.0, "drain")
    out, err = proc.communicate(timeout=120)
    # Then: it said so once and stored them itself
    assert proc.returncode == 0, err
    assert "ingesting in the kernel instead" in err
    assert _counts(project_dir)[:4] == (3, 3, 3, 300)
    assert not list((project_dir / ".nbtrack" / "spool").iterdir())

    # Given: NBTRACK_INGEST=thread (the diagnostic), on a fresh store
    shutil.rmtree(project_dir / ".nbtrack")
    proc = _writer(project_dir, 3, 100, 0.0, "drain", NBTRACK_INGEST="thread")
    out, err = proc.communicate(timeout=120)
    # Then: no process was started, and the runs are in
    assert proc.returncode == 0, err
    assert not (project_dir / ".nbtrack" / "ingestd.lock").exists()
    assert _counts(project_dir)[:4] == (3, 3, 3, 300)


def test_a_store_the_ingestion_process_cannot_write_is_said_under_the_next_cell(
    kernel: Kernel, project_dir: Path
) -> None:
    # Given: a store written by a newer nbtrack (this one must not touch it)
    project = resolve_project(project_dir)
    Client(project).info()
    with duckdb.connect(str(project.db_path)) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    kernel.ok("%config TrackMagics.show_summary = True")

    # When: a tracked cell runs, and the store's ingestion process tries to store it
    first = kernel.ok("%%track first\nx = 1\nx")
    problem = project.folder / "ingestd.problem"
    wait_until(problem.exists, timeout=60, what="the ingestion process to give up a round")

    # Then: the user's code ran, and the next tracked cell says why in one line
    assert "1" in first.text
    second = kernel.ok("%%track second\ny = 2")
    assert "runs are not in the store yet" in second.text
    assert "schema version 999" in second.text
    assert "Traceback" not in second.text
    # ... and the run is still kept in its spool, the store untouched
    assert list((project.folder / "spool").glob("*.spool"))
    with duckdb.connect(str(project.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


# Records one run with a parameter and a metric, ends it, and exits: a spool of a run
# that ended in another process, which nobody has brought in.
ENDED = """
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
w = RunWriter.start(resolve_project(), kind="cell", name="handed", params={"lr": 0.1})
w.log_metric("acc", 0.9)
w.finish("finished")
"""


def test_a_reader_hands_another_process_s_ended_run_to_the_ingestion_process(
    project_dir: Path,
) -> None:
    # Given: the store's ingestion process, reading its FIFO (idle for 15 s before it
    # leaves: the run below is ended by a new interpreter, which took over 2 s to start
    # and write on a busy machine, and found the process gone)
    from nbtrack import catchup, ingestlink

    project = resolve_project(project_dir)
    Client(project).list_runs()  # the store exists
    daemon = _ingestion_process(project_dir, idle=15)
    try:
        # ... and a run that another process ended, still in its spool
        subprocess.run([sys.executable, "-c", ENDED], cwd=project_dir, env=kernel_env(), check=True)
        todo = catchup.ended(project.spool_dir)

        # When: a reader asks the process to hurry and waits for it (as every reader
        # that finds other processes' ended runs does, before it reads)
        seen = ingestlink.rounds(project.folder)
        assert ingestlink.hurry(project.folder)
        brought_in = catchup.wait_in(todo, project.folder, seen, timeout=60)

        # Then: the process brought the run in, whole: the reader has nothing to write
        assert brought_in
        assert catchup.to_catch_up(project.spool_dir, project.folder) == []
        run = Client(project).get_run("last")
        assert (run.name, run.status, run.params, run.metrics) == (
            "handed",
            "finished",
            {"lr": 0.1},
            {"acc": 0.9},
        )
        # ... and once the process has left, nobody answers a hurry
        daemon.wait(60)
        assert not ingestlink.hurry(project.folder)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


# What ``nbtrack export``/``gc``/``push`` do first, in a new process: bring in every
# ended run (the ingestion process, stopped meanwhile, goes on when argv[2] says so);
# it prints the ids and whether it loaded Arrow (and the pandas Arrow imports).
RECOVER = """
import os, signal, sys
from nbtrack.client import Client
from nbtrack import catchup
client = Client.open()
print(len(catchup.ended(client.project.spool_dir)))
if sys.argv[2] == "resumed":
    os.kill(int(sys.argv[1]), signal.SIGCONT)
print(sorted(client.recover()), "pyarrow" in sys.modules, "pandas" in sys.modules)
"""


@pytest.mark.parametrize(
    ("runs", "process", "by_itself"),
    [(1, "resumed", False), (25, "resumed", False), (1, "stopped", True)],
    ids=["one-run", "a-backlog", "process-stopped"],
)
def test_bringing_in_every_ended_run_leaves_it_to_the_ingestion_process_while_it_works(
    project_dir: Path, runs: int, process: str, by_itself: bool
) -> None:
    # Given: the store's ingestion process, stopped while another process ends runs
    # (more than 20 of them: a backlog, which readers leave to the process)
    from nbtrack import catchup

    project = resolve_project(project_dir)
    Client(project).list_runs()
    daemon = _ingestion_process(project_dir, idle=30)
    try:
        os.kill(daemon.pid, signal.SIGSTOP)
        ended = f"for _ in range({runs}):\n" + textwrap.indent(ENDED, "    ")
        subprocess.run([sys.executable, "-c", ended], cwd=project_dir, env=kernel_env(), check=True)
        run_ids = sorted(sp.run_id for sp in catchup.ended(project.spool_dir))

        # When: a new process brings in every ended run (as an export does), the
        # ingestion process going on again, or not
        out = subprocess.run(
            [sys.executable, "-c", RECOVER, str(daemon.pid), process], timeout=120,
            cwd=project_dir, env=kernel_env(), check=True, capture_output=True, text=True,
        ).stdout.split("\n")  # fmt: skip

        # Then: every run is in. The ingestion process brought them in while it ran:
        # the exporting process did not load what ingesting needs (~0.8 s of CPU: Arrow,
        # and pandas, which Arrow imports as it builds a column) nor take turns with it
        # at the store. A stopped process spends no CPU: then it brought them in itself.
        assert out[0] == str(runs)
        assert out[1] == f"{run_ids!r} {by_itself} {by_itself}"
        stored = [Client(project).get_run(run_id) for run_id in run_ids]
        assert {(r.name, r.status, str(r.params)) for r in stored} == {
            ("handed", "finished", "{'lr': 0.1}")
        }
    finally:
        os.kill(daemon.pid, signal.SIGCONT)
        daemon.kill()
        daemon.wait()


# A live process that ended a notebook run with two cell runs, and 25 other runs, all
# still spooled (the ingestion process is stopped: a backlog); it stays alive.
LIVE = """
import time
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
p = resolve_project()
nb = RunWriter.start(p, kind="notebook", name="pipeline", params={"lr": 0.1})
cells = [RunWriter.start(p, name=f"step{i}", parent_id=nb.run_id) for i in range(2)]
others = [RunWriter.start(p, name="other") for _ in range(25)]
for w in [*cells, nb, *others]:
    w.log_metric("acc", 0.5)
    w.finish()
print(nb.run_id, flush=True)
time.sleep(300)
"""


def test_an_export_brings_in_what_it_exports_not_the_ingestion_process_s_backlog(
    project_dir: Path, tmp_path: Path
) -> None:
    # Given: a notebook run and its cells, and 25 other runs, ended by a live process
    # and still spooled: the store's ingestion process, stopped, has them in its backlog
    from nbtrack import catchup

    project = resolve_project(project_dir)
    Client(project).list_runs()
    daemon = _ingestion_process(project_dir, idle=30)
    writer = subprocess.Popen([sys.executable, "-c", LIVE], cwd=project_dir, env=kernel_env(),
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        os.kill(daemon.pid, signal.SIGSTOP)
        assert writer.stdout is not None
        notebook_id = writer.stdout.readline().strip()
        assert len(catchup.ended(project.spool_dir)) == 28

        # When: the notebook run is exported by (a prefix of) its id
        out = run_cli("export", notebook_id[:10], "-o", str(tmp_path / "nb.zip"), cwd=project_dir)

        # Then: the bundle holds the notebook run and both its cells, whole
        assert out.returncode == 0, out.stderr
        with zipfile.ZipFile(tmp_path / "nb.zip") as zf:
            runs = json.loads(zf.read("runs.json"))["runs"]
        assert sorted((r["name"], r["status"]) for r in runs) == [
            ("pipeline", "finished"), ("step0", "finished"), ("step1", "finished")
        ]  # fmt: skip
        # ... and the export left the other runs to the ingestion process: it neither
        # brought them in nor waited for the stopped process to (under a storm of
        # kernels that backlog is seconds of work)
        assert len(catchup.ended(project.spool_dir)) == 25
    finally:
        writer.kill()
        writer.wait()
        os.kill(daemon.pid, signal.SIGCONT)
        daemon.kill()
        daemon.wait()


def test_loading_the_extension_starts_the_ingestion_process_before_any_tracked_cell(
    kernel_factory, project_dir: Path
) -> None:
    # Given: a project with a store and no ingestion process
    Client(resolve_project(project_dir)).info()
    assert _store_processes(project_dir) == []

    # When: a kernel loads the extension (and tracks nothing yet)
    kernel = kernel_factory()
    kernel.ok("%load_ext nbtrack")

    # Then: the store's ingestion process starts now, so that its start (~0.3 s of CPU)
    # is not spent beside the first tracked cells
    [pid] = wait_until(lambda: _store_processes(project_dir), lambda p: len(p) == 1, timeout=30,
                       what="the ingestion process started by %load_ext")  # fmt: skip

    # ... and has loaded DuckDB before any run is there to ingest: its import (~60 ms of
    # CPU) is not spent in its first round either, beside the first tracked cells
    def libraries() -> str:
        try:
            return Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return ""

    wait_until(lambda: "duckdb" in libraries(), timeout=30,
               what="DuckDB in the ingestion process started by %load_ext")  # fmt: skip
    assert not list((project_dir / ".nbtrack" / "spool").glob("*.spool"))


# The notebook's last cell: is an ingestion process running for the store, and how
# many spools wait for it (written to a file, read after papermill returns).
PROCESS_PROBE = """
import json, os, psutil
store = os.path.realpath(".nbtrack")
running = [p.pid for p in psutil.process_iter(["cmdline"])
           if "nbtrack.ingestd" in (p.info["cmdline"] or []) and p.status() != "zombie"
           and store in os.path.realpath(p.info["cmdline"][-1])]
spools = [p.name for p in __import__("pathlib").Path(".nbtrack/spool").glob("*.spool")]
open("probe.json", "w").write(json.dumps({"running": running, "spools": spools}))
"""


def test_under_plain_papermill_the_ingestion_process_starts_when_the_kernel_exits(
    project_dir: Path,
) -> None:
    # Given: a notebook of three tracked cells, run by plain papermill (a headless run:
    # nobody reads its runs cell by cell)
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nbtrack")]
    nb.cells += [nbformat.v4.new_code_cell(f"%%track c{i}\nx = {i}") for i in range(3)]
    nb.cells.append(nbformat.v4.new_code_cell(PROCESS_PROBE))
    nbformat.write(nb, project_dir / "nb.ipynb")

    # When: papermill runs it
    done = subprocess.run(
        [sys.executable, "-m", "papermill", "nb.ipynb", "out.ipynb"],
        cwd=project_dir, env=kernel_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    # Then: while its cells ran, no ingestion process ran beside them (its start and
    # its rounds were not the notebook's time); the ended runs waited in their spools
    probe = json.loads((project_dir / "probe.json").read_text())
    assert probe["running"] == []
    assert len(probe["spools"]) == 4  # three cell runs and the notebook run
    # ... and once the kernel exited, the process started and brought every run in,
    # with nobody reading the store
    spool = project_dir / ".nbtrack" / "spool"
    wait_until(lambda: not list(spool.glob("*.spool")), timeout=60,
               what="the runs brought in after the kernel exited")  # fmt: skip
    client = Client(resolve_project(project_dir))
    runs = client.list_runs(RunQuery(kind=None, limit=None)).runs
    assert sorted((r.kind, r.name, r.status) for r in runs) == [
        ("cell", "c0", "finished"), ("cell", "c1", "finished"), ("cell", "c2", "finished"),
        ("notebook", "nb", "finished"),
    ]  # fmt: skip


def test_a_deferred_ingestion_process_starts_when_its_time_is_up(project_dir: Path) -> None:
    # Given: a process that defers the ingestion process by 2 s, then records two runs
    # and stays alive
    script = WRITER.replace(
        "project = resolve_project()",
        "from nbtrack import ingest\ningest.ingestor().defer(2.0)\nproject = resolve_project()",
    ).replace('print("written")', 'print("written", flush=True)\ntime.sleep(60)')
    writer = subprocess.Popen(
        [sys.executable, "-c", script, "2", "10", "0"],
        cwd=project_dir, env=kernel_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        written = time.monotonic()
        spool = project_dir / ".nbtrack" / "spool"
        # Then: until its time is up, no process runs and the spools wait ...
        assert _store_processes(project_dir) == []
        assert len(list(spool.glob("*.spool"))) == 2
        # ... and then, the writer still running, the process starts and brings them in
        wait_until(lambda: not list(spool.glob("*.spool")), timeout=60,
                   what="the deferred runs brought in")  # fmt: skip
        assert time.monotonic() - written > 0.5
        assert writer.poll() is None
        assert _counts(project_dir)[:4] == (2, 2, 2, 20)
    finally:
        writer.kill()
        writer.wait()


@contextlib.contextmanager
def _paused_with_five_ended_runs(project_dir: Path) -> Iterator[tuple[Client, Path, int]]:
    """The store's ingestion process, paused (it still holds its FIFO: a reader sees it
    running), and five runs this process ended and nobody brought in: (a client, the
    store's write-ahead log, the process id)."""
    from nbtrack.tracking import RunWriter

    project = resolve_project(project_dir)
    client = Client(project)
    client.list_runs()  # the store exists
    daemon = _ingestion_process(project_dir, idle=30)
    try:
        os.kill(daemon.pid, signal.SIGSTOP)
        for i in range(5):
            w = RunWriter.start(project, kind="cell", name=f"r{i}", params={"i": i})
            w.log_metric("acc", i / 10)
            w.finish("finished")
            w.let_go()
        yield client, project.db_path.with_name(project.db_path.name + ".wal"), daemon.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signal.SIGCONT)
        daemon.kill()
        daemon.wait()


def test_a_reader_leaves_the_checkpoint_of_its_catch_up_to_the_ingestion_process(
    project_dir: Path,
) -> None:
    # Given: the store's ingestion process, paused, and five runs this process ended
    with _paused_with_five_ended_runs(project_dir) as (client, wal, pid):
        # When: this process reads its runs
        names = sorted(r.name or "" for r in client.list_runs().runs)

        # Then: it sees all of them at once, stored (their spools gone) ...
        assert names == ["r0", "r1", "r2", "r3", "r4"]
        assert not list(client.project.spool_dir.glob("*.spool"))
        # ... but the checkpoint is not on its time: the write-ahead log holds them
        # until the ingestion process, woken by the reader, writes them into the file
        assert wal.exists()
        os.kill(pid, signal.SIGCONT)
        wait_until(wal.exists, lambda there: not there, timeout=60,
                   what="the ingestion process to checkpoint the reader's runs")  # fmt: skip
        with duckdb.connect(str(client.project.db_path), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM runs").fetchone() == (5,)


def test_the_servers_sandboxed_reads_take_a_log_another_reader_left_behind(
    project_dir: Path,
) -> None:
    # Given: the ingestion process paused, and a reader whose catch-up left five runs
    # in the write-ahead log for it to checkpoint
    with _paused_with_five_ended_runs(project_dir) as (client, wal, _):
        assert len(client.list_runs().runs) == 5
        assert wal.exists()

        # When: the server lists the runs and answers a query, with DuckDB's file
        # access limited to the store's own files (ci: a 500 when the read's turn
        # checkpointed that log at its end and DuckDB wanted its checkpoint file)
        server = Client(client.project)
        page = json.loads("".join(server.list_runs_json(RunQuery(limit=10), safe=True)))
        _, rows = server.sql("SELECT count(*) FROM runs", safe=True)

        # Then: both see the five runs, and the log is in the file
        assert sorted(r["name"] for r in page["runs"]) == ["r0", "r1", "r2", "r3", "r4"]
        assert rows == [(5,)]
        assert not wal.exists()


@pytest.mark.parametrize("process", ["none", "gone before the kick"])
def test_with_nobody_to_checkpoint_a_reader_checkpoints_its_catch_up_itself(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, process: str
) -> None:
    # Given: a run this process ended, and no ingestion process for the store, or one
    # that answers the reader's probe but is gone when the reader kicks it after its read
    from nbtrack import ingestlink
    from nbtrack.tracking import RunWriter

    if process != "none":
        monkeypatch.setattr(ingestlink, "hurry", lambda folder, byte=b"h": byte == ingestlink.PROBE)
    project = resolve_project(project_dir)
    w = RunWriter.start(project, kind="cell", name="alone", params={"i": 1})
    w.finish("finished")
    w.let_go()

    # When: this process reads its runs
    assert [r.name for r in Client(project).list_runs().runs] == ["alone"]

    # Then: the store file holds the run, no write-ahead log left behind
    assert not project.db_path.with_name(project.db_path.name + ".wal").exists()
    with duckdb.connect(str(project.db_path), read_only=True) as con:
        assert con.execute("SELECT name FROM runs").fetchall() == [("alone",)]
