"""Recording a run as it happens: ``RunWriter``, the fluent ``log_*`` calls, the ingestor.

Real stores in tmp folders, read back through the client as a user would. A kernel
killed mid-cell is test_crash.py; many writers at once are test_concurrency.py.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from conftest import kernel_env, run_cli
from nbtrack import tracking
from nbtrack.client import Client
from nbtrack.exceptions import NoActiveRunError, UsageError
from nbtrack.models import DataVersion, RunQuery
from nbtrack.project import Project, resolve_project
from nbtrack.tracking import RunWriter
from waiting import wait_until


@pytest.fixture
def project(project_dir: Path) -> Project:
    (project_dir / ".nbtrack").mkdir()
    return resolve_project(project_dir)


@pytest.fixture
def client(project: Project) -> Client:
    return Client(project)


@pytest.fixture
def active(project: Project) -> Iterator[RunWriter]:
    """A run made the active one, as ``%%track`` does while its cell executes."""
    writer = RunWriter.start(project, name="cell")
    tracking.set_active(writer)
    try:
        yield writer
    finally:
        tracking.set_active(None)


def spools(project: Project) -> list[str]:
    return sorted(p.name for p in project.spool_dir.glob("*.spool"))


# ------------------------------------------------------------------ life cycle
def test_a_run_is_visible_as_running_then_finished_and_its_spool_goes(
    project: Project, client: Client
) -> None:
    # given a run that started and logged a parameter
    w = RunWriter.start(project, name="train", params={"lr": 0.1})
    assert spools(project) == [f"{w.run_id}.spool"]
    # when what it logged so far is ingested, a reader sees it running
    w.wait()
    run = client.get_run(w.run_id)
    assert (run.status, run.params, run.ended_at) == ("running", {"lr": 0.1}, None)
    # when it finishes, the reader sees it finished, and the spool is gone
    w.log_metric("acc", 0.9)
    w.finish()
    w.wait()
    run = client.get_run(w.run_id)
    assert run.status == "finished" and run.metrics == {"acc": 0.9}
    assert run.ended_at is not None and run.started_at <= run.ended_at
    assert spools(project) == []


def test_a_stored_run_kept_alive_holds_none_of_its_files_open(
    project: Project, client: Client
) -> None:
    # given a run that logged points (its point log is a mapped file) and was stored,
    # its writer still referenced (as a list of runs, or a callback, would keep it)
    w = RunWriter.start(project, name="train")
    for step in range(5000):
        w.log_metric("loss", 1 / (step + 1))
    w.finish()
    w.wait()
    assert len(client.metric_series(w.run_id, ["loss"])["loss"]) == 5000

    # then this process holds no descriptor of its spool or point log: a mapping
    # keeps a descriptor of its own, and a kernel of a thousand runs ran out of them
    def held() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if w.run_id in target:
                found.append(target)
        return found

    assert held() == []
    # and a point logged into it afterwards makes no file again
    w.log_metric("loss", 0.0)
    for _ in range(5000):
        tracking._log_into(w, "loss", 0.0, None)
    assert held() == [] and not list(project.spool_dir.glob(f"{w.run_id}*"))


def test_a_failed_run_keeps_its_error_and_finishing_twice_changes_nothing(
    project: Project, client: Client
) -> None:
    w = RunWriter.start(project, name="train")
    w.finish("failed", "ValueError: bad row 3")
    w.finish("finished")  # a second end (an atexit hook, say) is ignored
    w.wait()
    run = client.get_run(w.run_id)
    assert (run.status, run.error) == ("failed", "ValueError: bad row 3")


def test_a_bad_kind_or_end_status_is_a_usage_error_naming_it(project: Project) -> None:
    with pytest.raises(UsageError, match="kind must be 'cell' or 'notebook', not 'job'"):
        RunWriter.start(project, kind="job")
    w = RunWriter.start(project)
    with pytest.raises(UsageError, match="not 'done'"):
        w.finish("done")
    w.finish()
    w.wait()


def test_tags_and_later_facts_reach_the_stored_run(project: Project, client: Client) -> None:
    w = RunWriter.start(project, name="train", notebook_path=str(project.root / "nb.ipynb"))
    w.set_tags({"team": "vision", "round": 2})  # type: ignore[dict-item]
    w.update(cell_id="c-7", execution_count=4)
    w.finish()
    w.wait()
    run = client.get_run(w.run_id)
    assert run.tags == {"team": "vision", "round": "2"}
    assert (run.notebook_path, run.cell_id, run.execution_count) == ("nb.ipynb", "c-7", 4)


def test_text_no_utf_8_can_carry_is_stored_escaped_and_every_reader_still_reads(
    project: Project,
) -> None:
    # given a run whose name, parameter, tag and written file hold lone surrogates: a file
    # name's undecodable byte (os.fsdecode(b"data\\xff.csv")) and a string cut in half
    w = RunWriter.start(project, name="cut\ud83d", params={"sep": "\udcff"})
    w.set_tags({"half": "\ud800"})
    w.log_data([DataVersion(path=os.fsdecode(b"data\xff.csv"), role="output", hash="0", size=1)])
    w.finish()
    w.wait()
    # when a user lists the store, the run is there (it stopped every reader with a
    # UnicodeEncodeError traceback), its text escaped
    done = run_cli("ls", "--json", cwd=project.root)
    assert done.returncode == 0, done.stderr
    [run] = json.loads(done.stdout)["runs"]
    assert (run["name"], run["status"]) == ("cut\\ud83d", "finished")
    stored = Client(project).get_run(w.run_id)
    assert stored.params == {"sep": "\\xff"} and stored.tags == {"half": "\\ud800"}
    assert [d.path for d in stored.data] == ["data\\xff.csv"]


def test_a_name_with_a_lone_surrogate_is_refused_at_the_call(project: Project) -> None:
    w = RunWriter.start(project)
    for call in (
        lambda: w.log_metric("acc\ud800", 0.5),
        lambda: w.log_metrics_once({"acc\ud800": 0.5}),
        lambda: w.log_params({"lr\udcff": 0.1}, source="api"),
    ):
        with pytest.raises(ValueError, match="not valid Unicode text"):
            call()
    w.finish()
    w.wait()


# ------------------------------------------------------------------ metrics
def test_steps_count_up_per_series_and_the_latest_value_is_the_highest_step(
    project: Project, client: Client
) -> None:
    w = RunWriter.start(project)
    for loss in (0.9, 0.5, 0.2):
        w.log_metric("loss", loss)  # steps 0, 1, 2
    w.log_metrics({"acc": 0.7, "f1": 0.6}, step=10)
    w.log_metric("acc", 0.1, step=3)  # a late point of an earlier step
    w.finish()
    w.wait()
    series = client.metric_series(w.run_id)
    assert [(p.step, p.value) for p in series["loss"]] == [(0, 0.9), (1, 0.5), (2, 0.2)]
    assert [(p.step, p.value) for p in series["acc"]] == [(3, 0.1), (10, 0.7)]
    assert client.get_run(w.run_id).metrics == {"loss": 0.2, "acc": 0.7, "f1": 0.6}
    assert w.snapshot.metrics == {"loss": 0.2, "acc": 0.7, "f1": 0.6}  # the summary's view


def test_metrics_logged_once_at_the_end_continue_their_series_without_a_point_log(
    project: Project, client: Client
) -> None:
    # given a run that logged a loss twice, and one that logged no point at all
    w = RunWriter.start(project)
    w.log_metric("loss", 0.9)
    w.log_metric("loss", 0.5)
    short = RunWriter.start(project)
    # when both log their end-of-run figures (a -m variable, the system totals) once
    w.log_metrics_once({"loss": 0.2, "acc": 0.8})
    short.log_metrics_once({"system/cpu_time_s": 0.01, "acc": float("nan")})
    points_of_short = short.points.path.exists()
    for writer in (w, short):
        writer.finish()
        writer.wait()
    # then each value is the next step of its series, the latest one the run's value,
    # in the summary's view and in the store alike; the short run made no point log
    series = client.metric_series(w.run_id)
    assert [(p.step, p.value) for p in series["loss"]] == [(0, 0.9), (1, 0.5), (2, 0.2)]
    assert [(p.step, p.value) for p in series["acc"]] == [(0, 0.8)]
    assert client.get_run(w.run_id).metrics == w.snapshot.metrics == {"loss": 0.2, "acc": 0.8}
    stored = client.get_run(short.run_id).metrics
    assert stored["system/cpu_time_s"] == 0.01 and math.isnan(stored["acc"])
    assert not points_of_short
    with pytest.raises(UsageError, match="metric 'acc' must be a number"):
        w.log_metrics_once({"acc": "high"})


def test_a_bad_metric_or_step_is_refused_and_the_run_goes_on(
    project: Project, client: Client
) -> None:
    w = RunWriter.start(project)
    with pytest.raises(UsageError, match="metric 'acc' must be a number, not str 'high'"):
        w.log_metric("acc", "high")
    with pytest.raises(UsageError, match="must be an integer, not float 1.5"):
        w.log_metric("acc", 0.5, step=1.5)  # type: ignore[arg-type]
    w.log_metric("acc", float("nan"))
    w.finish()
    w.wait()
    assert math.isnan(client.get_run(w.run_id).metrics["acc"])


def _log_in_child(w: RunWriter) -> None:
    for i in range(5):
        w.log_metric("c", 100.0 + i)
        w.log_metric("p", 50.0 + i, step=100 + i)


def test_points_a_forked_child_logs_are_stored_and_leave_the_parents_alone(
    project: Project, client: Client
) -> None:
    # given a run that logged points, then a forked child (a fork Pool, a DataLoader
    # worker) that logs points of a series of its own and of the parent's
    w = RunWriter.start(project, name="fork")
    for i in range(5):
        w.log_metric("p", float(i))
    child = multiprocessing.get_context("fork").Process(target=_log_in_child, args=(w,))
    child.start()
    child.join()
    assert child.exitcode == 0
    # when the parent logs on, a new series too, and the run ends
    for i in range(5, 10):
        w.log_metric("p", float(i))
    w.log_metric("q", 1.0)
    w.finish()
    w.wait()
    # then every point is there under its own name (the child wrote into the parent's
    # slots: its points were lost and the parent's later ones could be overwritten)
    series = client.metric_series(w.run_id)
    assert [(p.step, p.value) for p in series["p"]] == [(i, float(i)) for i in range(10)] + [
        (100 + i, 50.0 + i) for i in range(5)
    ]
    assert [p.value for p in series["c"]] == [100.0 + i for i in range(5)]
    assert [p.value for p in series["q"]] == [1.0]


# ------------------------------------------------------------------ the active run
@pytest.mark.parametrize(
    "call",
    [
        lambda: nbtrack.log_metric("acc", 0.9),
        lambda: nbtrack.log_metrics({"acc": 0.9}),
        lambda: nbtrack.log_params({"lr": 0.1}),
    ],
    ids=["log_metric", "log_metrics", "log_params"],
)
def test_logging_outside_a_tracked_cell_says_where_it_works(call, project: Project) -> None:  # type: ignore[no-untyped-def]
    assert tracking.active_run() is None
    with pytest.raises(NoActiveRunError, match="inside a cell that starts with %%track"):
        call()
    assert spools(project) == []  # nothing was recorded anywhere


def test_fluent_calls_inside_a_tracked_cell_land_in_its_run(
    active: RunWriter, client: Client
) -> None:
    nbtrack.log_params({"lr": 0.1})
    for epoch in range(3):
        nbtrack.log_metric("loss", 1 / (epoch + 1))
    nbtrack.log_metrics({"acc": 0.8, "f1": 0.7}, step=2)
    assert tracking.active_run() is active.snapshot
    active.finish()
    active.wait()
    run = client.get_run(active.run_id)
    assert run.params == {"lr": 0.1} and run.param_sources == {"lr": "api"}
    assert run.metrics == {"loss": pytest.approx(1 / 3), "acc": 0.8, "f1": 0.7}
    assert [p.step for p in client.metric_series(active.run_id)["loss"]] == [0, 1, 2]


# ------------------------------------------------------------------ ingestion
def test_the_background_ingestor_stores_a_run_nobody_waits_for(
    project: Project, client: Client
) -> None:
    # given a run handed to the background ingestor, as a tracked cell's run is
    w = RunWriter.start(project, name="bg", background=True)
    for step in range(500):
        w.log_metric("loss", 1 / (step + 1))
    # when it ends and the ingestor is told so (the caller never calls wait())
    w.finish()
    tracking.ingestor().kick()
    # then another reader of the store soon sees it finished with every point
    wait_until(
        lambda: client.list_runs(RunQuery(kind=None)).runs,
        lambda runs: [(r.run_id, r.status) for r in runs] == [(w.run_id, "finished")],
        what="the ingestor to store the finished run",
    )
    assert len(client.metric_series(w.run_id)["loss"]) == 500
    wait_until(lambda: spools(project), lambda left: left == [], what="the spool to be removed")


# A script that records a run and is killed before it ends; its points are on disk
# when log_metric returns (points.py), so the kill lands after all 50 are durable.
KILLED_SCRIPT = """
import os, signal
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
w = RunWriter.start(resolve_project(), name="script", params={"lr": 0.3})
for step in range(50):
    w.log_metric("loss", 1 / (step + 1))
print(w.run_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_killed_script(project: Project) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KILLED_SCRIPT],
        cwd=project.root,
        env=kernel_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_spool_left_by_a_killed_process_becomes_a_crashed_run_with_its_points(
    project: Project,
) -> None:
    # given a process killed after spooling a run's points, before the run ended
    done = _run_killed_script(project)
    assert done.returncode == -signal.SIGKILL, done.stderr
    run_id = done.stdout.strip()
    assert spools(project) == [f"{run_id}.spool"]
    # when a client next opens the store
    client = Client(project)
    run = client.get_run(run_id)
    # then the run is crashed, with what it had logged, and the spool is consumed
    assert run.status == "crashed" and run.params == {"lr": 0.3}
    assert "died" in (run.error or "")
    assert [p.step for p in client.metric_series(run_id)["loss"]] == list(range(50))
    assert spools(project) == []
    assert client.recover() == []  # recovered once, not again


def test_damaged_spool_records_are_skipped_and_the_run_is_still_brought_in(
    project: Project,
) -> None:
    # given a killed process's spool with damaged records appended (bad JSON, bytes that
    # are not UTF-8, an event without its kind, series names that are a list), then a
    # sound record
    done = _run_killed_script(project)
    run_id = done.stdout.strip()
    records = [(1, b"{{{{"), (1, b'{"e": "tags\xf9"}'), (1, b"{}"), (3, b"[1, 2]")]
    records.append((1, b'{"e": "tags", "tags": {"after": "damage"}}'))
    with open(project.spool_dir / f"{run_id}.spool", "ab") as fh:
        for kind, payload in records:
            fh.write(struct.pack("<IB", len(payload), kind) + payload)
    # when a user lists the store: one line, no traceback (each damaged record stopped
    # every reader of the store with a JSONDecodeError, KeyError, AttributeError...)
    listed = run_cli("ls", cwd=project.root)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    # then the run is crashed with all it logged, the damage named, the spool consumed
    client = Client(project)
    run = client.get_run(run_id)
    assert (run.status, run.params, run.tags) == ("crashed", {"lr": 0.3}, {"after": "damage"})
    assert "4 damaged spool records skipped" in (run.error or "")
    assert len(client.metric_series(run_id)["loss"]) == 50
    assert spools(project) == []
