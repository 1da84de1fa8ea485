"""Executors: where a pipeline's notebook executions run. A small registry, like papermill's engines.

``local``
    a pool of worker processes on this machine (``-j N`` of them). Each execution's
    notebook run is recorded straight into the project's store; a worker that dies
    mid-execution fails that execution only, and a fresh worker takes the next one.
``dask``
    a Dask distributed cluster (``--scheduler ADDRESS``). Workers execute against a
    scratch store of their own and hand back a bundle that is imported here, so no
    worker needs the store file. An execution whose worker dies is reported failed
    once Dask gives up on it (after ``distributed.scheduler.allowed-failures`` retries). One
    that ended after such a retry is tagged ``dask_worker_deaths``.

``register(name, factory)`` adds an executor; ``get(name)`` returns its factory and
fails with the list of valid names.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..exceptions import PipelineError, UsageError
from .execute import INTERRUPTED, ExecutionOutcome, ExecutionSpec
from .recording import (
    ExecutionRecord,
    ExecutionRequest,
    finish_run,
    record_lost_execution,
    start_run,
)

if TYPE_CHECKING:
    from ..project import Project
    from ..tracking import RunWriter

OnDone = Callable[[ExecutionRecord], None]

#: Seconds a sweep stopped with Ctrl-C gives its workers to interrupt their kernels and
#: answer (papermill's own Ctrl-C takes about a second) before it kills them.
INTERRUPT_GRACE = 30.0


class Executor(Protocol):
    """Runs notebook executions and records each as a notebook run in ``project``."""

    name: str

    def run(
        self, project: Project, requests: Sequence[ExecutionRequest], on_done: OnDone
    ) -> list[ExecutionRecord]:
        """Execute every request; call ``on_done`` as each one ends; return records in request order."""
        ...


ExecutorFactory = Callable[..., Executor]
_registry: dict[str, ExecutorFactory] = {}


def register(name: str, factory: ExecutorFactory) -> None:
    """Make ``factory(jobs=..., scheduler=...)`` available as executor ``name``."""
    _registry[name] = factory


def get(name: str) -> ExecutorFactory:
    """The factory of executor ``name``; a ``UsageError`` naming the valid ones otherwise."""
    try:
        return _registry[name]
    except KeyError:
        valid = ", ".join(sorted(_registry))
        raise UsageError(f"unknown executor {name!r} (valid: {valid})") from None


def names() -> list[str]:
    return sorted(_registry)


def _describe_death(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = f"signal {-returncode}"
        return f"the worker process was killed ({sig}) during the execution"
    return f"the worker process exited (code {returncode}) during the execution"


# --- local ---------------------------------------------------------------------------------


class _WorkerProcess:
    """One ``nbtrack.pipelines.worker`` process, fed one execution at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nbtrack.pipelines.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            # Its own session: a Ctrl-C at the terminal reaches the sweep alone, which
            # passes it on once (interrupt): a second SIGINT would stop papermill's cleanup.
            start_new_session=True,
        )

    def execute(self, spec: ExecutionSpec) -> ExecutionOutcome:
        stdin: IO[str] = self.proc.stdin  # type: ignore[assignment]
        stdout: IO[str] = self.proc.stdout  # type: ignore[assignment]
        try:
            stdin.write(json.dumps({"spec": spec.to_dict()}, default=str) + "\n")
            stdin.flush()
            answer = stdout.readline()
        except (BrokenPipeError, OSError):
            answer = ""
        if not answer:
            returncode = self.proc.wait()
            return ExecutionOutcome("failed", _describe_death(returncode), None, 0.0)
        return ExecutionOutcome.from_dict(json.loads(answer)["outcome"])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def interrupt(self) -> None:
        """Ctrl-C for the execution running: papermill interrupts its kernel, whose
        cell runs end ``failed`` with the cell's ``KeyboardInterrupt`` (as under plain
        papermill), and the worker answers before it exits."""
        if self.alive:
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGINT)

    def close(self, kill: bool = False) -> None:
        if self.alive:
            if kill:
                self.proc.kill()
            else:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=None if kill else 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class LocalExecutor:
    """Up to ``jobs`` executions at once, each in a worker process of this machine."""

    name = "local"

    def __init__(self, jobs: int | None = None, scheduler: str | None = None) -> None:
        if scheduler:
            raise UsageError("--scheduler is for --executor dask")
        self.jobs = max(1, jobs or 1)

    def run(
        self, project: Project, requests: Sequence[ExecutionRequest], on_done: OnDone
    ) -> list[ExecutionRecord]:
        pending = list(requests)
        results: dict[int, ExecutionRecord] = {}
        guard = threading.Lock()
        workers: list[_WorkerProcess] = []
        failures: list[BaseException] = []
        interrupted = threading.Event()
        unstored: list[RunWriter] = []

        def next_request() -> ExecutionRequest | None:
            with guard:
                return pending.pop(0) if pending else None

        def lane() -> None:
            worker: _WorkerProcess | None = None
            try:
                while (request := next_request()) is not None:
                    if worker is None or not worker.alive:
                        worker = _WorkerProcess()
                        with guard:
                            workers.append(worker)
                    writer, spec = start_run(project, request)
                    try:
                        outcome = worker.execute(spec)
                    except BaseException as exc:
                        finish_run(writer, request, ExecutionOutcome("failed", str(exc), None, 0.0))
                        raise
                    if interrupted.is_set():
                        outcome = ExecutionOutcome("failed", INTERRUPTED, None, outcome.duration)
                    # Into the store after the sweep: a lane does not wait for the
                    # store's lock (kernels write too) before starting its next execution.
                    record = finish_run(writer, request, outcome, wait=False)
                    with guard:
                        unstored.append(writer)
                        results[request.index] = record
                        on_done(record)
            except BaseException as exc:  # reported by run(), on the caller's thread
                with guard:
                    failures.append(exc)
            finally:
                if worker is not None:
                    worker.close()

        lanes = [
            threading.Thread(target=lane, daemon=True) for _ in range(min(self.jobs, len(pending)))
        ]
        for t in lanes:
            t.start()
        try:
            for t in lanes:
                t.join()
        except KeyboardInterrupt:
            interrupted.set()
            with guard:
                pending.clear()
                running = list(workers)
            try:  # the kernels' own records first; a second Ctrl-C does not wait
                for w in running:
                    w.interrupt()
                deadline = time.monotonic() + INTERRUPT_GRACE
                for t in lanes:
                    t.join(max(0.0, deadline - time.monotonic()))
            finally:
                with guard:
                    running = list(workers)
                for w in running:
                    w.close(kill=True)
                for t in lanes:
                    t.join()
            raise
        finally:
            for writer in unstored:
                writer.wait()
        if failures:
            raise PipelineError(f"the local executor failed: {failures[0]}") from failures[0]
        return [results[r.index] for r in requests if r.index in results]


# --- dask ----------------------------------------------------------------------------------


def run_on_worker(request_data: dict[str, Any], project_root: str) -> bytes:
    """Executed on a Dask worker: one execution against a scratch store, returned as a bundle.

    The scratch store lives in the worker's local directory (removed with the worker);
    its project root is the caller's, so data paths are recorded as the caller's own
    store records them. The worker needs the project's files, not its store.
    """
    import shutil
    import tempfile

    from ..client import Client
    from ..project import DB_FILENAME, Project
    from .bundle import bundle_bytes
    from .recording import execute_recorded

    try:
        from distributed import get_worker

        local_dir: str | None = get_worker().local_directory
    except (ImportError, ValueError):
        local_dir = None
    scratch = Path(tempfile.mkdtemp(prefix="nbtrack-scratch-", dir=local_dir))
    request = ExecutionRequest.from_dict(request_data)
    deaths = _worker_deaths()
    if deaths:  # Dask re-ran it: what the attempt that died wrote may be in the project
        request.tags[DASK_RETRIED_TAG] = str(deaths)
    try:
        project = Project(root=Path(project_root), folder=scratch, db_path=scratch / DB_FILENAME)
        record = execute_recorded(project, request)
        client = Client(project)
        client.recover()  # its cell runs: the kernel exited without waiting for their ingestion
        return bundle_bytes(client, [record.run_id, *client.child_ids(record.run_id)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: Tag of a notebook run whose execution Dask started again after its worker died: how
#: many workers died executing it (the run is the attempt that ended).
DASK_RETRIED_TAG = "dask_worker_deaths"


def _worker_deaths() -> int:
    """How many workers died while executing the task running here (Dask's count of
    them, before it gives up): 0 outside a Dask worker or when the scheduler will not say."""
    try:
        from distributed import get_client, get_worker

        key = get_worker().get_current_task()

        def count(dask_scheduler: Any) -> int:
            task = dask_scheduler.tasks.get(key)
            return int(task.suspicious) if task is not None else 0

        return int(get_client().run_on_scheduler(count))
    except Exception:  # no worker, an older scheduler: nothing known
        return 0


class DaskExecutor:
    """Executions sent to a Dask distributed scheduler; ``jobs`` caps how many are in flight."""

    name = "dask"

    def __init__(self, jobs: int | None = None, scheduler: str | None = None) -> None:
        scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
        if not scheduler:
            raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
        self.scheduler = scheduler
        self.jobs = jobs

    def run(
        self, project: Project, requests: Sequence[ExecutionRequest], on_done: OnDone
    ) -> list[ExecutionRecord]:
        try:
            from distributed import Client as DaskClient
            from distributed import as_completed
        except ImportError:
            raise PipelineError(
                "--executor dask needs dask.distributed: pip install 'nbtrack[dask]'"
            ) from None
        from ..client import Client
        from .bundle import import_bundle

        client = Client(project)
        results: dict[int, ExecutionRecord] = {}
        root = str(project.root)
        try:
            dask = DaskClient(self.scheduler, timeout="10s")
        except OSError as exc:
            raise PipelineError(
                f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
            ) from exc
        with dask:
            queue = list(requests)
            limit = self.jobs or len(queue)
            by_key: dict[Any, ExecutionRequest] = {}

            def submit(request: ExecutionRequest) -> Any:
                future = dask.submit(run_on_worker, request.to_dict(), root, pure=False)
                by_key[future.key] = request
                return future

            in_flight = as_completed([submit(queue.pop(0)) for _ in range(min(limit, len(queue)))])
            try:
                for future in in_flight:
                    request = by_key.pop(future.key)
                    try:
                        data = future.result()
                    except Exception as exc:
                        # a dead worker or a broken task: that execution failed
                        record = record_lost_execution(project, request, _dask_error(exc))
                    else:
                        summary = import_bundle(client, data, name=f"execution {request.index}")
                        record = _record_from_bundle(client, request, summary.contained)
                    future.release()
                    results[request.index] = record
                    on_done(record)
                    if queue:
                        in_flight.add(submit(queue.pop(0)))
            except KeyboardInterrupt:  # what was in flight never comes back: say so
                for request in by_key.values():
                    on_done(record_lost_execution(project, request, INTERRUPTED))
                raise
        return [results[r.index] for r in requests if r.index in results]


def _dask_error(exc: BaseException) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        # Dask's message goes on about where to look next; its first sentence is the news.
        first = str(exc).split(". ")[0]
        return f"the Dask worker died during the execution ({name}: {first})"
    return f"{name}: {exc}"


def _record_from_bundle(
    client: Any, request: ExecutionRequest, run_ids: Sequence[str]
) -> ExecutionRecord:
    from .recording import executed_notebook_path

    runs = client.runs_by_id(list(run_ids), with_env=False)
    notebook_run = next(r for r in runs if r.kind == "notebook")
    executed = executed_notebook_path(client.project, notebook_run.run_id)
    return ExecutionRecord(
        index=request.index,
        run_id=notebook_run.run_id,
        status=notebook_run.status,
        error=notebook_run.error,
        parameters=dict(request.parameters),
        executed_notebook=str(executed) if executed.exists() else None,
        duration=notebook_run.duration,
    )


register("local", LocalExecutor)
register("dask", DaskExecutor)
