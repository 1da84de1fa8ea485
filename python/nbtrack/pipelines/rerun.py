"""``nbtrack rerun RUN``: execute a run's notebook again, with its parameters, and judge the result.

The notebook executed is the snapshot recorded with the run (``run.notebook_hash``),
not whatever the file says today, unless ``current=True``. The parameters injected are
the notebook run's (the papermill parameters of the execution that made the run), with
``overrides`` on top ("clone with edits"). The new notebook run records
``rerun_of=<original>``; its cell runs are compared with the original's (see ``verdict``).

The JupyterLab server's Re-run route calls ``rerun`` from a background job, so nothing
here changes this process's working directory or environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import BlobMissingError, PipelineError
from .parameters import inspect_parameters, read_notebook
from .recording import ExecutionRecord, ExecutionRequest, execute_recorded
from .verdict import DEFAULT_ATOL, DEFAULT_RTOL, Verdict, judge

if TYPE_CHECKING:
    from ..client import Client
    from ..models import Run
    from ..project import Project


@dataclass
class RerunPlan:
    """What a rerun will execute, decided before anything runs (so warnings come first)."""

    original: Run
    original_cells: list[Run]
    """The cell runs the verdict compares: the named cell run, or every cell of a notebook run."""
    request: ExecutionRequest
    notebook_source: str
    """``snapshot <hash>`` or ``current file``."""
    warnings: list[str] = field(default_factory=list)


@dataclass
class RerunResult:
    """A finished rerun: the new notebook run, its cell runs and the verdict."""

    original: str
    run_id: str
    child_ids: list[str]
    status: str
    error: str | None
    executed_notebook: str | None
    notebook_source: str
    parameters: dict[str, Any]
    verdict: Verdict
    warnings: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.verdict.reproduced

    def to_dict(self) -> dict[str, Any]:
        from ..models import json_value

        return {
            "original": self.original,
            "run_id": self.run_id,
            "child_ids": list(self.child_ids),
            "status": self.status,
            "error": self.error,
            "reproduced": self.reproduced,
            "executed_notebook": self.executed_notebook,
            "notebook_source": self.notebook_source,
            "parameters": json_value(self.parameters),
            "warnings": list(self.warnings),
            "verdict": self.verdict.to_dict(),
        }


def _injected_parameters(run: Run, declared: set[str]) -> dict[str, Any]:
    """The parameters to inject to get ``run`` again.

    A notebook run's ``papermill`` parameters are what papermill injected (its
    ``default`` ones are the notebook's own). A cell run's ``auto`` parameters are
    literal assignments the cell makes itself, so only those the notebook declares
    in its ``parameters`` cell are injected, with every ``papermill``, ``flag``
    (``-p VAR``) and ``api`` parameter; what it read from other cells (``default``,
    ``upstream``) the notebook makes again.
    """
    sources = run.param_sources
    if run.kind == "notebook":
        return {k: v for k, v in run.params.items() if sources.get(k, "papermill") == "papermill"}
    return {
        k: v
        for k, v in run.params.items()
        if sources.get(k) in ("papermill", "flag", "api")
        or (sources.get(k) == "auto" and k in declared)
    }


def _code_warning(original: Run, cells: list[Run]) -> str | None:
    dirty = [c for c in cells if c.code_matches_notebook is False]
    if not dirty:
        return None
    names = ", ".join(sorted({c.name or c.short_id for c in dirty}))
    return (
        f"run {original.short_id}: the code that ran ({names}) did not match the saved notebook "
        "(unsaved edits, or cells run out of order); the rerun executes the saved notebook, "
        "so it cannot promise the same code"
    )


def plan_rerun(
    client: Client,
    ref: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    current: bool = False,
) -> RerunPlan:
    """Resolve ``ref`` and decide the notebook, parameters and comparison of its rerun."""
    project = client.project
    run = client.get_run(ref)
    if run.kind == "notebook":
        notebook_run: Run | None = run
        cells = client.children(run.run_id)
    else:
        found = client.runs_by_id([run.parent_id]) if run.parent_id else []
        notebook_run = found[0] if found else None
        cells = [run]
    source_run = notebook_run or run
    notebook_path = source_run.notebook_path or run.notebook_path
    if not notebook_path:
        raise PipelineError(
            f"run {run.short_id} records no notebook path (was it made outside a notebook?): "
            "nothing to re-execute"
        )
    notebook = project.absolute(notebook_path)
    warnings: list[str] = []
    snapshot = source_run.notebook_hash or run.notebook_hash
    if current or not snapshot:
        if not notebook.is_file():
            raise PipelineError(
                f"the notebook {notebook_path} of run {run.short_id} no longer exists"
            )
        if not current:
            warnings.append(
                f"run {run.short_id} has no notebook snapshot: executing today's {notebook_path}"
            )
        text = notebook.read_text(encoding="utf-8")
        source = "current file"
    else:
        try:
            text = client.cache.read_bytes(snapshot).decode("utf-8")
        except BlobMissingError:
            raise PipelineError(
                f"the notebook snapshot {snapshot} of run {run.short_id} is not in the cache "
                "(pruned by gc?); use --current to execute today's file"
            ) from None
        source = f"snapshot {snapshot}"
    if not notebook.parent.is_dir():
        raise PipelineError(
            f"the folder of {notebook_path} no longer exists: the notebook has no place to run"
        )
    declared = inspect_parameters(read_notebook(text, notebook_path))
    parameters = _injected_parameters(source_run, set(declared.names))
    if overrides:
        parameters.update(overrides)
        warnings.extend(declared.warnings_for(list(overrides), notebook_path))
    if current and snapshot:
        from ..hashing import hash_bytes

        if hash_bytes(text.encode("utf-8")) != snapshot:
            warnings.append(
                f"--current: {notebook_path} changed since run {run.short_id}; "
                "differences may come from the new code"
            )
    code_warning = _code_warning(run, cells)
    if code_warning:
        warnings.append(code_warning)
    request = ExecutionRequest(
        notebook=str(notebook),
        notebook_text=text,
        parameters=parameters,
        name=source_run.name if source_run.kind == "notebook" else None,
        rerun_of=run.run_id,
    )
    return RerunPlan(run, cells, request, source, warnings)


def execute_plan(
    project: Project, plan: RerunPlan, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL
) -> RerunResult:
    """Execute a planned rerun in this process and judge it against the original."""
    from ..client import Client

    record: ExecutionRecord = execute_recorded(project, plan.request)
    # A fresh client: it ingests the spools of kernels that died mid-cell first.
    client = Client(project)
    client.recover()
    new_run, *new_cells = client.family(record.run_id)
    verdict = judge(plan.original, plan.original_cells, new_run, new_cells, rtol=rtol, atol=atol)
    return RerunResult(
        original=plan.original.run_id,
        run_id=record.run_id,
        child_ids=[c.run_id for c in new_cells],
        status=record.status,
        error=record.error,
        executed_notebook=record.executed_notebook,
        notebook_source=plan.notebook_source,
        parameters=dict(plan.request.parameters),
        verdict=verdict,
        warnings=list(plan.warnings),
    )


def rerun(
    project: Project,
    ref: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    current: bool = False,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> RerunResult:
    """Re-execute run ``ref``'s notebook with its parameters; returns the new run and the verdict.

    Example::

        result = rerun(resolve_project(), "last")
        result.reproduced, result.verdict.lines()
    """
    from ..client import Client

    plan = plan_rerun(Client(project), ref, overrides=overrides, current=current)
    return execute_plan(project, plan, rtol=rtol, atol=atol)
