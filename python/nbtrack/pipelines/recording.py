"""A notebook execution as a notebook run: what every executor does around papermill.

``start_run`` records the notebook run (status ``running``, the injected parameters,
the snapshot being executed) and builds the ``ExecutionSpec`` whose kernel will attach
its cell runs to it; ``finish_run`` records how the execution ended.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .execute import DEFAULT_KERNEL, ExecutionOutcome, ExecutionSpec, execute, kernel_environment

if TYPE_CHECKING:
    from ..models import Environment
    from ..project import Project
    from ..tracking import RunWriter


@dataclass
class ExecutionRequest:
    """One notebook execution a pipeline asks for; JSON-safe, so it can travel to a worker."""

    notebook: str
    """Absolute path of the notebook file (its folder is the kernel's working directory)."""
    notebook_text: str
    """The notebook document to execute: the file as read once, or a run's recorded snapshot."""
    parameters: dict[str, Any]
    name: str | None = None
    """The notebook run's name; the notebook's stem by default."""
    rerun_of: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    kernel_name: str = DEFAULT_KERNEL
    execution_timeout: float | None = None
    index: int = 0
    """Position in its sweep, so results can be reported in grid order."""
    inject: bool = True
    """False for a re-run's replayed code, which holds its own parameters cell."""
    workspace: str | None = None
    """Where the kernel runs (a re-run's scratch copy): its root; None: the project root."""
    cwd: str | None = None
    """The kernel's working folder; None: the notebook's folder."""
    python: str | None = None
    """The interpreter of the kernel (a re-run's ``--env recorded``); None: the kernelspec's."""

    @property
    def run_name(self) -> str:
        return self.name or Path(self.notebook).stem

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionRequest:
        return cls(**data)


@dataclass
class ExecutionRecord:
    """A finished (or failed) execution as stored: the notebook run and its outcome."""

    index: int
    run_id: str
    status: str
    error: str | None
    parameters: dict[str, Any]
    executed_notebook: str | None
    duration: float | None

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def executed_notebook_path(project: Project, run_id: str) -> Path:
    """Where the executed copy of notebook run ``run_id`` is kept."""
    return Path(project.executions_dir) / f"{run_id}.ipynb"


def store_location(project: Project) -> str:
    """The ``NBTRACK_STORE`` value under which a kernel resolves exactly ``project``.

    The store folder, when it holds the usual ``runs.duckdb`` (so ``.nbtrack/`` gives
    back its parent as the project root), else the database file itself.
    """
    from ..project import DB_FILENAME

    if Path(project.db_path) == Path(project.folder) / DB_FILENAME:
        return str(project.folder)
    return str(project.db_path)


ENVIRONMENT_CACHE = "pipeline-environment.json"
_environment_cache: tuple[list[Any], Environment] | None = None
_environment_lock = threading.Lock()


def _environment_key() -> list[Any]:
    """What changes when packages are installed or removed: the import path's folders' mtimes."""
    folders = [p for p in sys.path if p and os.path.isdir(p)]
    return [sys.executable, *([p, os.stat(p).st_mtime_ns] for p in folders)]


def current_environment(folder: Path | None = None) -> Environment:
    """This process's environment, computed only when an install changed the import path.

    Listing every installed package costs most of a second of CPU, on every rerun and
    every sweep. It is remembered in memory (a sweep, a long-lived server) and in
    ``folder`` (the store folder), keyed on the modification times of the import path's
    folders, which an install or an uninstall changes.
    """
    from ..capture import environment
    from ..models import Environment

    global _environment_cache
    key = _environment_key()
    with _environment_lock:
        if _environment_cache is not None and _environment_cache[0] == key:
            return _environment_cache[1]
        saved = folder / ENVIRONMENT_CACHE if folder is not None else None
        env: Environment | None = None
        if saved is not None and saved.is_file():
            try:
                data = json.loads(saved.read_text(encoding="utf-8"))
                if data.get("key") == key:
                    env = Environment.from_dict(data["environment"])
            except (OSError, ValueError, KeyError, TypeError):
                env = None
        if env is None:
            env = environment()
            if saved is not None and saved.parent.is_dir():
                tmp = saved.with_name(f".{saved.name}.{os.getpid()}")
                try:
                    tmp.write_text(json.dumps({"key": key, "environment": env.to_dict()}))
                    os.replace(tmp, saved)
                except OSError:
                    tmp.unlink(missing_ok=True)
        _environment_cache = (key, env)
        return env


def execution_spec(project: Project, request: ExecutionRequest, run_id: str) -> ExecutionSpec:
    """The papermill execution of ``request`` whose kernel attaches its cell runs to ``run_id``."""
    notebook = Path(request.notebook)
    root = Path(request.workspace) if request.workspace else Path(project.root)
    # In a scratch copy the kernel sees the copy of the notebook, at the same place.
    seen = root / notebook.relative_to(project.root) if request.workspace else notebook
    return ExecutionSpec(
        notebook_text=request.notebook_text,
        input_path=str(notebook),
        output_path=str(executed_notebook_path(project, run_id)),
        parameters=dict(request.parameters),
        cwd=request.cwd or str(seen.parent),
        env=kernel_environment(
            store_location(project),
            root,
            run_id,
            request.parameters,
            seen,
            request.execution_timeout,
        ),
        kernel_name=request.kernel_name,
        execution_timeout=request.execution_timeout,
        inject=request.inject,
        python=request.python,
    )


def start_writer(project: Project, request: ExecutionRequest, run_id: str) -> RunWriter:
    """Record the notebook run of ``request`` (status ``running``) under ``run_id``."""
    from ..cache import Cache
    from ..tracking import RunWriter

    # The snapshot being executed is the run's notebook: `nbtrack rerun` executes it again.
    snapshot = Cache(project.cache_dir).put_bytes(request.notebook_text.encode("utf-8"))
    writer = RunWriter.start(
        project,
        kind="notebook",
        name=request.run_name,
        params=dict(request.parameters),
        param_source="papermill",
        rerun_of=request.rerun_of,
        notebook_path=request.notebook,
        notebook_hash=snapshot,
        environment=current_environment(Path(project.folder)),
        run_id=run_id,
    )
    defaults = parameter_defaults(request.notebook_text, request.notebook)
    defaults = {k: v for k, v in defaults.items() if k not in request.parameters}
    if defaults:
        writer.log_params(defaults, source="default")
    if request.tags:
        writer.set_tags(dict(request.tags))
    return writer


def parameter_defaults(notebook_text: str, name: str) -> dict[str, Any]:
    """The literal values of the notebook's ``parameters`` cell (what papermill overrides)."""
    import ast

    from ..exceptions import UsageError
    from .parameters import inspect_parameters, read_notebook

    try:
        declared = inspect_parameters(read_notebook(notebook_text, name))
    except UsageError:
        return {}
    out: dict[str, Any] = {}
    for key, text in declared.defaults.items():
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue  # computed defaults (Path(...), os.environ[...]) are not recorded
    return out


def start_run(project: Project, request: ExecutionRequest) -> tuple[RunWriter, ExecutionSpec]:
    """Record the notebook run of ``request`` and build the papermill execution that fills it."""
    run_id = uuid.uuid4().hex
    return start_writer(project, request, run_id), execution_spec(project, request, run_id)


def finish_run(
    writer: RunWriter, request: ExecutionRequest, outcome: ExecutionOutcome, *, wait: bool = True
) -> ExecutionRecord:
    """Record how the execution ended; with ``wait``, return once the notebook run is in the store.

    Without ``wait`` the end is in the run's spool (on disk, so never lost) and reaches
    the store with the caller's next ``writer.wait()``.
    """
    writer.finish(status=outcome.status, error=outcome.error)
    if wait:
        writer.wait()
    return ExecutionRecord(
        index=request.index,
        run_id=writer.run_id,
        status=outcome.status,
        error=outcome.error,
        parameters=dict(request.parameters),
        executed_notebook=outcome.output_path,
        duration=outcome.duration,
    )


def execute_recorded(
    project: Project, request: ExecutionRequest, run_id: str | None = None
) -> ExecutionRecord:
    """Execute ``request`` in this process, recorded as a notebook run of ``project``.

    The notebook run is recorded on a helper thread while the kernel starts: gathering
    the environment costs most of a second that would otherwise add to every rerun.
    Cell runs name their parent by id, so they may reach the store first.
    """
    run_id = run_id or uuid.uuid4().hex
    spec = execution_spec(project, request, run_id)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbtrack-notebook-run") as pool:
        starting = pool.submit(start_writer, project, request, run_id)
        try:
            outcome = execute(spec)
        except BaseException as exc:
            # Interrupted (Ctrl-C) or broken beyond a notebook failure: the run must not stay running.
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            finish_run(starting.result(), request, ExecutionOutcome("failed", error, None, 0.0))
            raise
        writer = starting.result()
    return finish_run(writer, request, outcome)


def record_lost_execution(
    project: Project, request: ExecutionRequest, error: str
) -> ExecutionRecord:
    """A failed notebook run for an execution whose worker died before reporting anything."""
    writer, _ = start_run(project, request)
    return finish_run(writer, request, ExecutionOutcome("failed", error, None, 0.0))
