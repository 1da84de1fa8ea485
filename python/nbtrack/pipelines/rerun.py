"""``nbtrack rerun RUN``: execute a run again, with its parameters, and judge the result.

What runs (``replay.py``): the code the run's kernel session actually ran (as executed)
when the saved notebook is missing or does not hold it in that order, else the notebook
snapshot recorded with the run (``run.notebook_hash``), with the parameters injected
again (the notebook run's papermill parameters, ``overrides`` on top: "clone with
edits"). Where (``scratch.py``): a scratch copy of the project with the inputs at the
versions the run read, unless ``in_place``. In which kernel and environment
(``environments.py``): the recorded kernelspec, and on request the recorded packages.
The new notebook run and its cell runs record ``rerun_of=<original>`` and the verdict
word (``rerun_verdict``); the cell runs are compared with the original's (``verdict``).

The JupyterLab server's Re-run route calls ``rerun`` from a background job, so nothing
here changes this process's working directory or environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import BlobMissingError, PipelineError, UsageError
from . import replay
from .execute import DEFAULT_KERNEL
from .parameters import inspect_parameters, read_notebook, unread_overrides
from .recording import ExecutionRecord, ExecutionRequest, execute_recorded
from .verdict import DEFAULT_ATOL, DEFAULT_RTOL, Verdict, environment_changes, judge, match_cells

if TYPE_CHECKING:
    from ..client import Client
    from ..models import Environment, Run
    from ..project import Project
    from .scratch import Workspace


@dataclass
class RerunOptions:
    """How to re-run: what code, where, in which kernel and environment."""

    overrides: dict[str, Any] = field(default_factory=dict)
    current: bool = False
    """Execute today's notebook file (as saved) instead of the run's snapshot."""
    mode: str | None = None
    """``as-executed``, ``as-saved``, or None: chosen (``replay.choose``)."""
    in_place: bool = False
    force: bool = False
    kernel: str | None = None
    env: str = "current"
    """``current`` (the kernel's own) or ``recorded`` (built with the recorded versions)."""
    strict_env: bool = False
    remote: str | None = None
    """A remote (``nbtrack push``/``pull`` URL) to fetch inputs missing from the cache from."""


@dataclass
class RerunPlan:
    """What a rerun will execute, decided before anything runs (so warnings come first)."""

    original: Run
    original_cells: list[Run]
    """The cell runs the verdict compares: the named cell run, or every cell of a notebook run."""
    request: ExecutionRequest
    notebook_source: str
    """``snapshot <hash>``, ``current file`` or ``code as executed <hash>``."""
    choice: replay.Choice
    kernel_reason: str
    options: RerunOptions
    recorded_env: Environment | None = None
    warnings: list[str] = field(default_factory=list)
    cwd: str | None = None
    """The kernel's folder, relative to where it runs (None: the notebook's)."""


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
    mode: str = replay.AS_SAVED
    mode_reason: str = ""
    kernel: str = DEFAULT_KERNEL
    workspace: str | None = None
    """The scratch copy the rerun ran in (kept), or None in place."""
    workspace_detail: str = ""
    """How the workspace was made (files cloned, linked, copied, restored)."""
    shown_run_id: str | None = None
    """The rerun's cell run matching the original (what the runs table shows)."""
    environment: str = "current"
    """``current``, or the recorded environment used (built now or reused) and its folder."""
    warnings: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return self.verdict.reproduced

    @property
    def word(self) -> str:
        """``rerun_verdict``: the verdict's word; ``failed`` for a rerun that failed where
        its original did not (a failure that comes back the same is reproduced, as the
        command says)."""
        return self.verdict.word if self.status == "finished" or self.reproduced else "failed"

    def to_dict(self) -> dict[str, Any]:
        from ..models import json_value

        return {
            "original": self.original,
            "run_id": self.run_id,
            "child_ids": list(self.child_ids),
            "shown_run_id": self.shown_run_id,
            "status": self.status,
            "error": self.error,
            "reproduced": self.reproduced,
            "rerun_verdict": self.word,
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "kernel": self.kernel,
            "workspace": self.workspace,
            "workspace_detail": self.workspace_detail,
            "environment": self.environment,
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


def _saved_text(
    client: Client, run: Run, source_run: Run, notebook: Path | None, current: bool
) -> tuple[str | None, str]:
    """The saved notebook to execute (today's file with ``current``, else the snapshot)."""
    snapshot = source_run.notebook_hash or run.notebook_hash
    if current:
        if notebook is None or not notebook.is_file():
            named = f", {source_run.notebook_path or run.notebook_path}," if notebook else ""
            raise PipelineError(
                f"the notebook of run {run.short_id}{named} no longer exists (renamed or "
                "deleted?); without --current, the rerun executes the code the run recorded"
            )
        return notebook.read_text(encoding="utf-8"), "current file"
    if not snapshot:
        return None, ""
    try:
        return client.cache.read_bytes(snapshot).decode("utf-8"), f"snapshot {snapshot}"
    except BlobMissingError:
        return None, f"snapshot {snapshot} (not in the cache: pruned by gc?)"


def _environment(cells: list[Run], run: Run) -> Environment | None:
    for cell in cells:
        if cell.environment is not None:
            return cell.environment
    return run.environment


def plan_rerun(
    client: Client,
    ref: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    current: bool = False,
    options: RerunOptions | None = None,
) -> RerunPlan:
    """Resolve ``ref`` and decide the code, place, kernel and comparison of its rerun."""
    from .environments import choose_kernel

    opts = options or RerunOptions()
    if overrides:
        opts.overrides = dict(overrides)
    opts.current = opts.current or current
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
    notebook = project.absolute(notebook_path) if notebook_path else None
    warnings: list[str] = []
    text, source = _saved_text(client, run, source_run, notebook, opts.current)
    if text is None and source:
        warnings.append(f"run {run.short_id}: the notebook {source}")
    try:
        code = replay.recorded_code(client, cells)
    except PipelineError as exc:
        if opts.mode == replay.AS_EXECUTED:
            raise
        code = None
        warnings.append(str(exc))
    requested = opts.mode or (replay.AS_SAVED if opts.current else None)
    choice = replay.choose(requested, code, text, run.short_id, notebook_path, bool(cells))
    if opts.current and opts.mode is None:
        choice.reason = "asked for (--current)"
    declared_names: set[str] = set()
    declared = None
    if text is not None:
        declared = inspect_parameters(read_notebook(text, notebook_path or "notebook"))
        declared_names = set(declared.names)
    parameters = _injected_parameters(source_run, declared_names)
    if opts.overrides:
        parameters.update(opts.overrides)
        if declared is not None and choice.mode == replay.AS_SAVED:
            warnings.extend(declared.warnings_for(list(opts.overrides), notebook_path or ""))
    coded = replay.code_run(cells) or run
    kernel, kernel_reason = choose_kernel(
        opts.kernel, coded.kernel_name or source_run.kernel_name, DEFAULT_KERNEL
    )
    recorded_env = _environment(cells, run)
    if choice.mode == replay.AS_SAVED:
        assert text is not None
        if opts.current and source_run.notebook_hash:
            from ..hashing import hash_bytes

            if hash_bytes(text.encode("utf-8")) != source_run.notebook_hash:
                warnings.append(
                    f"--current: {notebook_path} changed since run {run.short_id}; "
                    "differences may come from the new code"
                )
        code_warning = _code_warning(run, cells)
        if code_warning:
            warnings.append(code_warning)
        executed = text
        # A headless kernel ran where its runner was (papermill's --cwd), not always in
        # the notebook's folder; nbtrack's own executions record none: the notebook's.
        recorded = source_run.cwd if source_run.kind == "notebook" else None
        cwd = recorded if recorded and not Path(recorded).is_absolute() else None
    else:
        assert code is not None and coded.code_hash is not None
        defaults = [k for k, how in source_run.param_sources.items() if how == "default"]
        executed = replay.replay_notebook(code, opts.overrides, kernel, defaults)
        source = f"code as executed {coded.code_hash}"
        cwd = coded.cwd or source_run.cwd
        if cwd and Path(cwd).is_absolute():
            warnings.append(
                f"the run's kernel ran outside the project ({cwd}); the rerun runs there"
            )
    if notebook is None:
        folder = project.absolute(cwd) if cwd else Path(project.root)
        notebook = folder / f"{source_run.name or run.name or 'session'}.ipynb"
    if opts.in_place and not notebook.parent.is_dir():
        raise PipelineError(
            f"the folder of {notebook_path} no longer exists: the notebook has no place to run"
        )
    request = ExecutionRequest(
        notebook=str(notebook),
        notebook_text=executed,
        parameters=parameters,
        name=source_run.name if source_run.kind == "notebook" else None,
        rerun_of=run.run_id,
        kernel_name=kernel,
        inject=choice.mode == replay.AS_SAVED,
    )
    return RerunPlan(
        run, cells, request, source, choice, kernel_reason, opts, recorded_env, warnings, cwd
    )


def environment_warning(plan: RerunPlan, current: Environment | None) -> str | None:
    """The recorded environment against the one the rerun will use, before executing."""
    if plan.options.env == "recorded" or plan.recorded_env is None:
        return None
    changes = environment_changes(plan.recorded_env, current)
    if not changes:
        return None
    shown = ", ".join(changes[:5]) + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
    return f"this environment differs from the one run {plan.original.short_id} recorded: {shown}"


def _prepare(client: Client, plan: RerunPlan, rerun_id: str) -> Workspace:
    """Make the folder the rerun executes in (a scratch copy, or the project in place)."""
    from .scratch import in_place, scratch_copy

    project = client.project
    if plan.options.in_place:
        ws = in_place(client, plan.original_cells, plan.options.force)
        if plan.cwd is not None:
            plan.request.cwd = str(project.absolute(plan.cwd))
        return ws
    notebook = Path(plan.request.notebook)
    try:
        inside = notebook.relative_to(project.root)
    except ValueError:
        raise PipelineError(
            f"the notebook {notebook} is outside the project, so a scratch copy of the "
            "project cannot hold it: re-run it in place"
        ) from None
    ws = scratch_copy(client, plan.original_cells, rerun_id, plan.options.remote)
    seen = ws.root / inside
    seen.parent.mkdir(parents=True, exist_ok=True)
    if plan.request.inject:  # the saved notebook as executed, where the kernel looks for it
        seen.write_text(plan.request.notebook_text, encoding="utf-8")
    if plan.cwd is not None and not Path(plan.cwd).is_absolute():
        plan.request.cwd = str(ws.root / plan.cwd)
        Path(plan.request.cwd).mkdir(parents=True, exist_ok=True)
    plan.request.workspace = str(ws.root)
    return ws


def execute_plan(
    project: Project, plan: RerunPlan, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL
) -> RerunResult:
    """Execute a planned rerun in this process and judge it against the original."""
    from ..client import Client

    client = Client(project)
    if plan.options.env == "recorded":
        if plan.recorded_env is None:
            raise UsageError(f"run {plan.original.short_id} recorded no environment to rebuild")
        from .environments import recorded_python
        from .recording import current_environment

        python, built = recorded_python(
            plan.recorded_env, current_environment(Path(project.folder))
        )
        plan.request.python = python
        folder = Path(python).parent.parent
        env_note = (
            f"recorded {plan.recorded_env.env_id}, {'built' if built else 'reused'}: {folder}"
        )
    else:
        env_note = "current"
    rerun_id = uuid.uuid4().hex
    ws = _prepare(client, plan, rerun_id)
    record: ExecutionRecord = execute_recorded(project, plan.request, run_id=rerun_id)
    # A fresh client: it ingests the spools of kernels that died mid-cell first.
    client = Client(project)
    client.recover()
    new_run, *new_cells = client.family(record.run_id)
    compared = new_cells
    if plan.original.kind == "cell" and plan.choice.mode == replay.AS_EXECUTED and new_cells:
        # The replayed code ends with the original cell: its counterpart is the last cell run.
        compared = [max(new_cells, key=lambda c: c.execution_count or 0)]
    verdict = judge(
        plan.original,
        plan.original_cells,
        new_run,
        compared,
        rtol=rtol,
        atol=atol,
        strict_env=plan.options.strict_env,
    )
    result = RerunResult(
        original=plan.original.run_id,
        run_id=record.run_id,
        child_ids=[c.run_id for c in new_cells],
        status=record.status,
        error=record.error,
        executed_notebook=record.executed_notebook,
        notebook_source=plan.notebook_source,
        parameters=dict(plan.request.parameters),
        verdict=verdict,
        mode=plan.choice.mode,
        mode_reason=plan.choice.reason,
        kernel=plan.request.kernel_name,
        workspace=str(ws.root) if ws.scratch else None,
        workspace_detail=ws.describe(),
        environment=env_note,
        warnings=[*plan.warnings, *unread_overrides(plan.options.overrides, compared)],
    )
    marks = {record.run_id: (plan.original.run_id, result.word)}
    for before, after in match_cells(plan.original_cells, compared):
        if after is not None:
            marks[after.run_id] = (before.run_id, result.word)
            result.shown_run_id = result.shown_run_id or after.run_id
    client.mark_reruns(marks)
    result.shown_run_id = result.shown_run_id or (
        new_cells[0].run_id if new_cells else record.run_id
    )
    return result


def rerun(
    project: Project,
    ref: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    current: bool = False,
    options: RerunOptions | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> RerunResult:
    """Re-execute run ``ref`` with its parameters; returns the new run and the verdict.

    Example::

        result = rerun(resolve_project(), "last")
        result.reproduced, result.verdict.lines()
    """
    from ..client import Client

    plan = plan_rerun(Client(project), ref, overrides=overrides, current=current, options=options)
    return execute_plan(project, plan, rtol=rtol, atol=atol)
