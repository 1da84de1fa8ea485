"""System metrics of tracked cells, with real workloads in real kernels."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil

from conftest import Kernel, run_cli
from nbtrack import sysmetrics
from nbtrack.client import Client
from nbtrack.project import resolve_project
from waiting import wait_until


def _wait_for_file(path: Path, timeout: float) -> None:
    wait_until(path.exists, timeout=timeout, what=f"{path.name} to appear")


def _wait_dead(pid: int, timeout: float) -> None:
    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, timeout=timeout, what=f"process {pid} to die")


def _settled(project_dir: Path, status: str = "finished", n: int = 1) -> Client:
    client = Client(resolve_project(project_dir))
    deadline = time.monotonic() + 30
    while True:
        if client.project.db_path.exists():
            _, rows = client.sql(f"SELECT count(*) FROM runs WHERE status = '{status}'")
            spool = client.project.spool_dir
            if rows[0][0] >= n and not (spool.exists() and any(spool.glob("*.spool"))):
                return client
        assert time.monotonic() < deadline, f"{n} {status} run(s) never reached the store"
        time.sleep(0.1)


def test_a_cell_that_allocates_500_mb_shows_that_peak(kernel: Kernel, project_dir: Path) -> None:
    # (the first tracked cell of a kernel also counts nbtrack's own start: DuckDB, the store)
    kernel.ok("import numpy as np")
    kernel.ok("%%track warm-up\nx = 0")
    _settled(project_dir)
    # given a cell that allocates 500 MB, touches it and frees it before the cell ends
    reply = kernel.ok(
        "%%track alloc\nblock = np.ones(500 * 1024 * 1024 // 8)\n"
        "total = float(block.sum())\ndel block"
    )
    # then the summary says how much memory the cell took at its peak
    assert "system:  peak memory" in reply.text and "(+" in reply.text
    run = _settled(project_dir, n=2).get_run("last")
    rise = run.metrics["system/rss_increase_mb"]
    assert 450 <= rise <= 550, f"peak rise {rise:.0f} MB for a 500 MB allocation"
    assert run.metrics["system/peak_rss_mb"] >= rise


def test_a_busy_cell_shows_its_cpu_use(kernel: Kernel, project_dir: Path) -> None:
    kernel.ok("%config TrackMagics.system_interval = 0.25")
    # (the first tracked cell of a kernel also counts nbtrack's own start on its other
    # threads: DuckDB, the store; CI once saw 115 % for a cell that got 94.7 %)
    kernel.ok("%%track warm-up\nx = 0")
    _settled(project_dir)
    # given a cell that keeps one core busy and measures what it got from the machine
    kernel.ok(
        "%%track busy\nimport time\nw0, c0 = time.perf_counter(), time.process_time()\n"
        "while time.perf_counter() - w0 < 2.5:\n    pass\n"
        "got = 100 * (time.process_time() - c0) / (time.perf_counter() - w0)"
    )
    got = float(kernel.ok("print(got)").text)
    client = _settled(project_dir, n=2)
    run = client.get_run("last")
    # then the run's CPU figure is what the process got (near 100 % on an idle machine)
    assert abs(run.metrics["system/cpu_percent_avg"] - got) < 15, (run.metrics, got)
    assert run.metrics["system/cpu_time_s"] >= 2.5 * got / 100 * 0.85
    series = client.metric_series(run.run_id, ["system/cpu_percent", "system/rss_mb"])
    assert (
        len(series["system/cpu_percent"]) >= 3
    )  # sampled every 0.25 s, not just at the end (a loaded machine may skip one)
    assert [p.step for p in series["system/rss_mb"]] == list(range(len(series["system/rss_mb"])))


def test_the_sampler_stops_with_the_run_and_can_be_turned_off(
    kernel_factory, project_dir: Path
) -> None:
    k = kernel_factory(NBTRACK_SYSTEM_INTERVAL="0.1")
    k.ok("%load_ext nbtrack\nimport nbtrack, threading")
    # when a tracked cell looks for the sampler, it is there; after the cell, it is gone
    inside = k.ok(
        "%%track\nimport time; time.sleep(1.0)\nprint([t.name for t in threading.enumerate()])"
    )
    assert sysmetrics.THREAD_NAME in inside.text
    after = k.ok("print([t.name for t in threading.enumerate()])")
    assert sysmetrics.THREAD_NAME not in after.text
    # and --no-system records no system metric at all
    k.ok("%%track quiet --no-system\nx = 1")
    client = _settled(project_dir, n=2)
    quiet = client.get_run("last")
    assert quiet.name == "quiet" and not [k for k in quiet.metrics if k.startswith("system/")]
    # the interval came from NBTRACK_SYSTEM_INTERVAL: several samples in 1 s (ten if
    # the machine keeps up: a busy one wakes the sampler late, and 0.3 s gave it three)
    first = client.runs_frame(kind="cell").iloc[-1]["run_id"]
    assert len(client.metric_series(first, ["system/rss_mb"])["system/rss_mb"]) >= 3


def test_a_killed_kernel_keeps_its_system_samples_and_a_sound_store(
    kernel: Kernel, project_dir: Path
) -> None:
    pid = int(kernel.ok("import os; print(os.getpid())").text.strip())
    kernel.ok("%config TrackMagics.system_interval = 0.1")
    kernel.ok("%%track warm-up\nx = 0")  # the store exists: the ingestor is not busy creating it
    _settled(project_dir)
    kernel.kc.execute(
        "%%track doomed\nimport time\nfrom pathlib import Path\ntime.sleep(1.5)\n"
        "Path('sampled').write_text('yes')\ntime.sleep(60)"
    )
    _wait_for_file(project_dir / "sampled", 60.0)
    client = Client(resolve_project(project_dir))

    def samples() -> int:  # (the ingestion process stores a running run as it goes)
        _, rows = client.sql(
            "SELECT count(*) FROM metrics JOIN runs USING (run_id) "
            "WHERE name = 'doomed' AND key = 'system/rss_mb'"
        )
        return int(rows[0][0])

    # (a busy machine may sample less often than asked: wait for ten, not for a time)
    wait_until(samples, lambda n: n >= 10, timeout=60, what="ten samples of the cell stored")
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid, 20.0)
    # then the run is crashed, with the samples taken before the kill, and the store works
    shown = run_cli("show", "last", "--json", cwd=project_dir)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["name"] == "doomed"
    assert run["status"] == "crashed" and "system/rss_mb" in run["metrics"]
    # ... every sample of it, once the dead kernel's spool is all in (a reader brings in
    # a bounded slice, or hands it to the ingestion process: wait for its removal)
    spool = client.project.spool_dir / f"{run['run_id']}.spool"

    def spool_left() -> bool:
        client.list_runs()  # a reader: brings in (or hands over) what it finds ended
        return spool.exists()

    wait_until(spool_left, lambda left: not left, timeout=60,
               what="the dead kernel's spool to be brought in")  # fmt: skip
    series = client.metric_series(run["run_id"], ["system/rss_mb"])["system/rss_mb"]
    assert len(series) >= 10 and [p.step for p in series] == list(range(len(series)))
    assert run_cli("ls", cwd=project_dir).returncode == 0


def test_without_nvidia_management_library_no_gpu_metric_is_logged() -> None:
    # This machine has no NVIDIA driver (and pynvml need not be installed): the GPU
    # probe finds nothing and every run simply has no gpu metric.
    assert sysmetrics._Gpus().handles == []
    assert sysmetrics.system_summary({"system/peak_rss_mb": 2048.0}) == "peak memory 2.00 GB"


def test_the_process_tree_is_read_without_scanning_every_process() -> None:
    # given a grandchild started by a thread other than the main one (as joblib does)
    import subprocess
    import sys
    import threading

    procs: list[subprocess.Popen[bytes]] = []
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
    t = threading.Thread(
        target=lambda: procs.append(subprocess.Popen([sys.executable, "-c", code]))
    )
    t.start()
    t.join()
    try:
        child = psutil.Process(procs[0].pid)
        (grandchild,) = wait_until(child.children, timeout=30, what="the grandchild")
        # when the sampler lists the tree, then it finds both, as psutil's scan does.
        # (This process may have other children meanwhile, an ingestion process of an
        # earlier test leaving, say: only its own two are this test's to count.)
        found = sysmetrics._descendants(os.getpid())
        assert found is not None
        mine = {child.pid, grandchild.pid}
        assert mine <= set(found), (found, mine)
        assert mine <= {p.pid for p in psutil.Process().children(recursive=True)}
    finally:
        for p in psutil.Process(procs[0].pid).children(recursive=True):
            p.kill()
        procs[0].kill()
        procs[0].wait()
