"""``nbtrack repro [TARGET ...]``: re-execute the stale notebooks of the inferred graph, upstream first.

``plan_repro`` reads the graph (``dag``) and judges every selected notebook (``stale``)
without starting a kernel or importing papermill. ``run_repro`` executes the stale
ones in the project folder, each as a notebook run tagged ``repro=<id>`` through the
local executor, as many at once as ``jobs`` allows and the graph permits: a notebook
starts when every stale notebook upstream of it has finished. A failure stops what
is downstream of it, not the independent branches.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import PipelineError, UsageError
from .dag import Dag, build
from .stale import Assessment, Assessor

if TYPE_CHECKING:
    from ..client import Client
    from ..project import Project
    from .recording import ExecutionRecord, ExecutionRequest

FALLBACK_KERNEL = "python3"


@dataclass
class ReproPlan:
    """The selected notebooks, upstream first, each judged stale or up to date."""

    repro_id: str
    dag: Dag
    order: list[str]
    steps: dict[str, Assessment]

    @property
    def stale(self) -> list[str]:
        return [n for n in self.order if self.steps[n].stale]

    def stale_upstream(self, notebook: str) -> list[str]:
        return [u for u in self.dag.upstream(notebook) if u in self.steps and self.steps[u].stale]

    def to_dict(self) -> dict[str, Any]:
        return {
            "repro_id": self.repro_id,
            "steps": [self.steps[n].to_dict() for n in self.order],
        }


@dataclass
class StepResult:
    """How one stale notebook's re-execution went."""

    notebook: str
    status: str
    """``finished``, ``failed`` or ``not run`` (an upstream notebook failed)."""
    run_id: str | None = None
    error: str | None = None
    duration: float | None = None
    executed_notebook: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ReproResult:
    plan: ReproPlan
    results: dict[str, StepResult] = field(default_factory=dict)

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results.values() if not r.ok]

    def current_run(self, notebook: str) -> str:
        """The run that now stands for ``notebook``: its re-execution, or its last good run."""
        done = self.results.get(notebook)
        return done.run_id if done is not None and done.run_id else self.plan.steps[notebook].run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "results": [self.results[n].to_dict() for n in self.plan.order if n in self.results],
            "failed": len(self.failed),
        }


def plan_repro(client: Client, targets: Sequence[str] = (), *, force: bool = False) -> ReproPlan:
    """What ``repro`` would do for ``targets`` (paths as the user typed them, relative to the cwd)."""
    dag = build(client.notebook_heads())
    recorded = []
    for target in targets:
        path, in_project = client.project.relative(target)
        if not in_project:
            raise UsageError(f"{target} is outside the project {client.project.root}")
        recorded.append(path)
    selected = dag.select(recorded)
    order = dag.order(selected)
    steps = Assessor(client.project, client.cache).assess_all(dag, order, force=force)
    return ReproPlan(uuid.uuid4().hex[:12], dag, order, steps)


def _kernel(wanted: str | None, notebook_kernel: str | None) -> tuple[str, str | None]:
    """The kernel to execute with, and a warning when the notebook's own one is not installed."""
    if wanted:
        return wanted, None
    if not notebook_kernel:
        return FALLBACK_KERNEL, None
    from jupyter_client.kernelspec import KernelSpecManager

    if notebook_kernel in KernelSpecManager().find_kernel_specs():
        return notebook_kernel, None
    return FALLBACK_KERNEL, (
        f"kernel {notebook_kernel!r} is not installed here: executing with {FALLBACK_KERNEL!r}"
    )


def _request(plan: ReproPlan, notebook: str, project: Project, kernel: str) -> ExecutionRequest:
    from .recording import ExecutionRequest

    step = plan.steps[notebook]
    assert step.notebook_text is not None
    return ExecutionRequest(
        notebook=str(project.absolute(notebook)),
        notebook_text=step.notebook_text,
        parameters=dict(step.parameters),
        tags={"repro": plan.repro_id},
        kernel_name=kernel,
    )


def run_repro(
    project: Project,
    plan: ReproPlan,
    *,
    jobs: int = 1,
    kernel: str | None = None,
    on_start: Callable[[str, ExecutionRequest], None] | None = None,
    on_done: Callable[[StepResult], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> ReproResult:
    """Execute the stale notebooks of ``plan``, upstream first, up to ``jobs`` at once."""
    from . import executors
    from .environments import check_kernel
    from .execute import skip_unused_imports

    if jobs < 1:
        raise UsageError(f"-j must be at least 1, got {jobs}")
    if kernel is not None:
        check_kernel(kernel)  # (before anything executes, as rerun and sweep)
    skip_unused_imports()
    result = ReproResult(plan)
    pending = list(plan.stale)
    guard = threading.Lock()

    def execute_one(notebook: str) -> StepResult:
        chosen, warning = _kernel(kernel, plan.steps[notebook].kernel_name)
        if warning and on_warning is not None:
            on_warning(f"{notebook}: {warning}")
        request = _request(plan, notebook, project, chosen)
        if on_start is not None:
            with guard:
                on_start(notebook, request)
        records: list[ExecutionRecord] = executors.get("local")(jobs=1).run(
            project, [request], lambda record: None
        )
        record = records[0]
        return StepResult(
            notebook,
            record.status,
            record.run_id,
            record.error,
            record.duration,
            record.executed_notebook,
        )

    def settle(step: StepResult) -> None:
        result.results[step.notebook] = step
        if on_done is not None:
            with guard:
                on_done(step)

    running: dict[Future[StepResult], str] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nbtrack-repro") as pool:
        while pending or running:
            for notebook in list(pending):
                ups = plan.stale_upstream(notebook)
                if any(u in result.results and not result.results[u].ok for u in ups):
                    pending.remove(notebook)
                    bad = [u for u in ups if u in result.results and not result.results[u].ok]
                    settle(StepResult(notebook, "not run", error=f"upstream {bad[0]} failed"))
            ready = [
                n
                for n in pending
                if all(u in result.results and result.results[u].ok for u in plan.stale_upstream(n))
            ]
            for notebook in ready[: jobs - len(running)]:
                pending.remove(notebook)
                running[pool.submit(execute_one, notebook)] = notebook
            if not running:
                if pending:  # cannot happen in a graph ordered upstream first
                    raise PipelineError(f"nothing can start among {pending}")
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                notebook = running.pop(future)
                try:
                    step = future.result()
                except Exception as exc:  # the executor itself broke: that notebook failed
                    step = StepResult(notebook, "failed", error=str(exc))
                settle(step)
    return result
