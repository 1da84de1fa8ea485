"""One papermill execution of a notebook, with nbtrack's environment in its kernel.

The kernel nbtrack launches gets ``NBTRACK_STORE``, ``NBTRACK_PARENT_RUN``,
``NBTRACK_PARAMS`` and ``NBTRACK_NOTEBOOK`` so that every ``%%track`` cell it runs
becomes a child of the notebook run, with the papermill parameters recorded.

The environment and working directory go to the kernel through its kernel manager,
never through ``os.environ`` or ``os.chdir`` of this process: the JupyterLab server
runs re-executions in background threads, and several executions may share a process.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..models import raised

DEFAULT_KERNEL = "python3"
#: The error of an execution its sweep's Ctrl-C stopped.
INTERRUPTED = "interrupted (Ctrl-C)"

# Warnings papermill logs that nbtrack reports itself, in its own words, before executing.
_REPORTED_BY_NBTRACK = (
    "Passed unknown parameter",
    "Input notebook does not contain a cell with tag",
)


class _DropReportedWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_REPORTED_BY_NBTRACK)


_papermill_filter_installed = False


def _quiet_papermill() -> None:
    global _papermill_filter_installed
    if not _papermill_filter_installed:
        logging.getLogger("papermill").addFilter(_DropReportedWarnings())
        _papermill_filter_installed = True


def skip_unused_imports() -> None:
    """Keep papermill's import from building a grammar this process will never use.

    papermill imports nbformat, which imports jsonschema, which builds (at import, about
    a second of CPU) a parser for the optional ``iri`` string formats when
    ``rfc3987_syntax`` is installed. Notebook validation never checks string formats, and
    jsonschema does without that module when it cannot be imported. For processes nbtrack
    owns (a sweep's workers, the ``nbtrack rerun`` command), not for a host process such
    as the Jupyter server, whose other users may want the module.
    """
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def kernel_environment(
    store: str | os.PathLike[str],
    root: str | os.PathLike[str],
    parent_run: str | None,
    parameters: Mapping[str, Any],
    notebook: str | os.PathLike[str],
    timeout: float | None = None,
) -> dict[str, str]:
    """The ``NBTRACK_*`` variables the kernel side of nbtrack reads.

    ``root`` is the project root data paths are recorded against; it differs from the
    store's own folder for a Dask worker's scratch store.
    """
    from .. import settings

    env = {
        settings.STORE.name: str(store),
        settings.ROOT.name: str(root),
        settings.PARAMS.name: json.dumps(dict(parameters), default=str),
        settings.NOTEBOOK.name: str(notebook),
    }
    if parent_run:
        env[settings.PARENT_RUN.name] = parent_run
    if timeout:  # (the kernel names it beside the KeyboardInterrupt the timeout sends)
        env[settings.CELL_TIMEOUT.name] = f"{timeout:g}"
    return env


@dataclass
class ExecutionSpec:
    """Everything one papermill execution needs; JSON-safe so it can cross a process or a cluster."""

    notebook_text: str
    """The notebook document to execute (a snapshot, not a path: the file may change meanwhile)."""
    input_path: str
    """Where the notebook lives, as recorded by papermill and by nbtrack."""
    output_path: str
    parameters: dict[str, Any]
    cwd: str
    """The kernel's working directory: the notebook's folder, so relative paths work as in Jupyter."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to the kernel's environment (``kernel_environment``)."""
    kernel_name: str = DEFAULT_KERNEL
    start_timeout: float = 60.0
    execution_timeout: float | None = None
    inject: bool = True
    """Inject ``parameters`` (papermill's cell); False for replayed code that holds its own."""
    python: str | None = None
    """Start the kernel with this interpreter instead of its kernelspec's (a built environment)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionSpec:
        return cls(**data)


@dataclass
class ExecutionOutcome:
    """How one execution ended. ``error`` names the failing cell and its exception."""

    status: str
    """``finished`` or ``failed``."""
    error: str | None
    output_path: str | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionOutcome:
        return cls(**data)


def _kernel_manager_class(
    env: Mapping[str, str], cwd: str, log_fd: int | None, python: str | None = None
) -> type:
    """A kernel manager class that starts its kernel with ``env`` added, in ``cwd``,
    its stdout and stderr going to ``log_fd`` when given.

    nbclient builds the kernel manager itself from ``kernel_manager_class``; a class made
    per execution is how the environment reaches ``start_kernel`` without touching this
    process's own environment.
    """
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class TrackedKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**os.environ, **kw.get("env", {}), **extra}
            kw["cwd"] = cwd
            if log_fd is not None:
                kw["stdout"] = kw["stderr"] = log_fd
            cmd, kw = await super()._async_pre_start_kernel(**kw)
            if python is not None:
                cmd = [python, *cmd[1:]]  # the kernelspec's arguments, another interpreter
            return cmd, kw

    return TrackedKernelManager


def describe_execution_error(exc: BaseException) -> str:
    """One line naming the failing cell and its exception, for a run's ``error``."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first_line = next((ln for ln in str(exc.source).splitlines() if ln.strip()), "")
        if len(first_line) > 60:
            first_line = first_line[:59] + "…"
        where = f"cell {exc.cell_index}"
        if exc.exec_count is not None:
            where += f" (In [{exc.exec_count}])"
        if first_line:
            where += f" `{first_line}`"
        return raised(where, f"{exc.ename}: {exc.evalue}")
    from nbclient.exceptions import CellExecutionError

    if isinstance(exc, CellExecutionError):  # a replayed session (nbclient, not papermill)
        return raised("a replayed cell", f"{exc.ename}: {exc.evalue}")
    return f"{type(exc).__name__}: {exc}"


#: A kernel that died before it answered its first request ran no cell: started again,
#: up to this many times in all. Kernels started at once (a sweep with ``-j 2``) can
#: pick the same free port, and the second then dies binding it (ipykernel's
#: "Address already in use"; jupyter_client chooses ports before the kernel binds them).
START_ATTEMPTS = 3
NEVER_STARTED = "Kernel died before replying to kernel_info"


def execute(spec: ExecutionSpec) -> ExecutionOutcome:
    """Run the notebook of ``spec`` with papermill; a failure is an outcome, not an exception.

    The executed notebook (outputs and the failing cell included) is written to
    ``spec.output_path`` in every case papermill gets that far; what the kernel process
    itself prints (its own warnings, a crash) goes to ``kernel_log_path(spec.output_path)``.
    """
    import nbformat
    import papermill

    _quiet_papermill()
    started = time.perf_counter()
    output = Path(spec.output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(kernel_log_path(output), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        nb = nbformat.reads(spec.notebook_text, as_version=4)
        if not spec.inject:
            _execute_replay(nb, output, spec, log_fd)
        else:
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    papermill.execute_notebook(
                        nb,
                        str(output),
                        parameters=dict(spec.parameters),
                        kernel_name=spec.kernel_name,
                        progress_bar=False,
                        start_timeout=int(spec.start_timeout),
                        execution_timeout=spec.execution_timeout,
                        kernel_manager_class=_kernel_manager_class(
                            spec.env, spec.cwd, log_fd, spec.python
                        ),
                        # One kernel per execution: an in-memory history avoids SQLite
                        # contention between kernels of a parallel sweep.
                        ipython_hist_file=":memory:",
                    )
                    break
                except RuntimeError as exc:
                    if attempt == START_ATTEMPTS or not str(exc).startswith(NEVER_STARTED):
                        raise
    except Exception as exc:  # every failure of the notebook becomes its outcome
        kept = _record_input_path(output, spec.input_path)
        return ExecutionOutcome(
            "failed",
            describe_execution_error(exc),
            str(output) if kept else None,
            time.perf_counter() - started,
        )
    finally:
        os.close(log_fd)
    _record_input_path(output, spec.input_path)
    return ExecutionOutcome("finished", None, str(output), time.perf_counter() - started)


def _execute_replay(nb: Any, output: Path, spec: ExecutionSpec, log_fd: int) -> None:
    """Execute a re-run's replayed session code with nbclient, the engine papermill drives.

    Not through papermill: papermill fails an execution on any error output, while a
    replayed session holds the cells that raised in it (tagged ``raises-exception``)
    and must go on past them as the session did. The executed notebook is written
    in every case, as papermill does.
    """
    import nbformat
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=spec.execution_timeout,
        startup_timeout=int(spec.start_timeout),
        kernel_name=spec.kernel_name,
        kernel_manager_class=_kernel_manager_class(spec.env, spec.cwd, log_fd, spec.python),
        ipython_hist_file=":memory:",
    )
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(output))


def kernel_log_path(output_path: str | os.PathLike[str]) -> Path:
    """Where the kernel's own stdout/stderr of an execution is kept, beside the executed notebook."""
    return Path(output_path).with_suffix(".kernel.log")


def _record_input_path(output: Path, input_path: str) -> bool:
    """Put the notebook's own path where papermill put the in-memory snapshot it was given.

    papermill stores its ``input_path`` argument in the executed notebook's metadata; we
    execute a snapshot (a notebook object), so without this the metadata would hold a
    copy of the whole notebook instead of its path. Plain JSON, written the way nbformat
    writes (no second validation of a notebook papermill just wrote). False when there
    is no output.
    """
    if not output.exists():
        return False
    try:
        nb = json.loads(output.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {}).setdefault("papermill", {})["input_path"] = input_path
    except (OSError, ValueError, AttributeError):
        return True
    text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)
    output.write_text(text + "\n", encoding="utf-8")
    return True
