"""``nbtrack sweep NOTEBOOK -p lr 0.1 0.01 -p depth 3 5``: a parameter grid, executed in parallel.

Every point of the grid (or ``--random K`` of them) is one papermill execution and one
notebook run, tagged ``sweep=<sweep id>``. The notebook is read once, when the sweep is
planned: editing it meanwhile does not change the sweep. A failed execution is recorded
with its error and the others go on.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import UsageError
from . import executors
from .environments import check_kernel
from .parameters import grid, inspect_parameters, read_notebook, sample, unread_overrides
from .recording import ExecutionRecord, ExecutionRequest

if TYPE_CHECKING:
    from ..project import Project


@dataclass
class SweepPlan:
    """The executions of a sweep, decided before any runs (so warnings come first)."""

    sweep_id: str
    notebook: Path
    points: list[dict[str, Any]]
    requests: list[ExecutionRequest]
    grid_size: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class SweepRow:
    """One execution of a sweep with the metrics its cells logged."""

    record: ExecutionRecord
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        from ..models import json_float, json_value

        return {
            **self.record.to_dict(),
            "parameters": json_value(self.record.parameters),
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
        }


@dataclass
class SweepResult:
    """A finished sweep."""

    sweep_id: str
    notebook: str
    rows: list[SweepRow]
    param_keys: list[str]
    metric_keys: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[SweepRow]:
        return [r for r in self.rows if not r.record.ok]

    def sorted_rows(self, metric: str | None = None, ascending: bool = False) -> list[SweepRow]:
        """Rows by ``metric`` (best first: descending unless ``ascending``); missing values last."""
        if metric is None:
            return list(self.rows)
        if metric not in self.metric_keys:
            known = ", ".join(self.metric_keys) or "none were logged"
            raise UsageError(f"--sort {metric}: no such metric in this sweep (metrics: {known})")
        have = [r for r in self.rows if _is_number(r.metrics.get(metric))]
        missing = [r for r in self.rows if not _is_number(r.metrics.get(metric))]
        have.sort(key=lambda r: r.metrics[metric], reverse=not ascending)
        return have + missing

    def to_dict(self, metric: str | None = None, ascending: bool = False) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "notebook": self.notebook,
            "executions": len(self.rows),
            "failed": len(self.failed),
            "param_keys": self.param_keys,
            "metric_keys": self.metric_keys,
            "warnings": self.warnings,
            "runs": [r.to_dict() for r in self.sorted_rows(metric, ascending)],
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value  # NaN sorts with the missing


def plan_sweep(
    notebook: str | Path,
    axes: Mapping[str, Sequence[Any]],
    *,
    random_k: int | None = None,
    seed: int | None = None,
    kernel_name: str = "python3",
    execution_timeout: float | None = None,
    executor: str = "local",
) -> SweepPlan:
    """The executions of a sweep over ``axes`` (``{"lr": [0.1, 0.01], ...}``) of ``notebook``;
    ``executor``: where they will run (a kernel name is checked here unless it is Dask's
    workers, which may have other kernels)."""
    path = Path(notebook).expanduser().resolve()
    if not path.is_file():
        raise UsageError(f"no such notebook: {notebook}")
    if execution_timeout is not None and not 0 < execution_timeout < math.inf:
        # (nbclient would take 0 or less for no limit at all: leaving it out says that)
        raise UsageError(
            f"a time limit per cell is a number of seconds above 0, not {execution_timeout:g}; "
            "leave --timeout out for none"
        )
    if kernel_name and executor == "local":
        check_kernel(kernel_name)  # (not one failed run per point: the rerun's error)
    text = path.read_text(encoding="utf-8")
    nb = read_notebook(text, str(notebook))
    full = grid(axes)
    points = sample(full, random_k, seed) if random_k is not None else full
    warnings = inspect_parameters(nb).warnings_for(list(axes), str(notebook))
    if random_k is not None and random_k > len(full):
        warnings.append(
            f"--random {random_k} is more than the {len(full)} grid points: running all"
        )
    sweep_id = uuid.uuid4().hex[:12]
    requests = [
        ExecutionRequest(
            notebook=str(path),
            notebook_text=text,
            parameters=point,
            tags={"sweep": sweep_id},
            kernel_name=kernel_name,
            execution_timeout=execution_timeout,
            index=i,
        )
        for i, point in enumerate(points)
    ]
    return SweepPlan(sweep_id, path, points, requests, len(full), warnings)


def run_sweep(
    project: Project,
    plan: SweepPlan,
    *,
    executor: str = "local",
    jobs: int | None = 1,
    scheduler: str | None = None,
    on_done: Callable[[ExecutionRecord], None] | None = None,
) -> SweepResult:
    """Execute a planned sweep; ``on_done`` is called as each execution ends (progress)."""
    from ..client import Client

    runner = executors.get(executor)(jobs=jobs, scheduler=scheduler)
    records = runner.run(project, plan.requests, on_done or (lambda record: None))
    client = Client(project)
    client.recover()
    warnings = list(plan.warnings)
    rows = _rows_with_metrics(client, records, warnings)
    param_keys = list(dict.fromkeys(k for p in plan.points for k in p))
    # System metrics (CPU, memory) are in every run: not a column of the sweep's table.
    metric_keys = sorted({k for r in rows for k in r.metrics if not k.startswith("system/")})
    return SweepResult(plan.sweep_id, str(plan.notebook), rows, param_keys, metric_keys, warnings)


def _rows_with_metrics(
    client: Any, records: Sequence[ExecutionRecord], warnings: list[str]
) -> list[SweepRow]:
    """Each execution with its metrics: its cells' (a later cell wins) and the notebook
    run's own; ``warnings`` gets the swept values its cells read another value of."""
    client.recover()  # the cell runs of kernels that exited before they were all stored
    children = {r.run_id: client.child_ids(r.run_id) for r in records}
    ids = [r.run_id for r in records] + [c for cells in children.values() for c in cells]
    runs = {run.run_id: run for run in client.runs_by_id(ids, with_env=False)} if ids else {}
    rows = []
    for record in records:
        merged: dict[str, float] = {}
        for cell_id in children[record.run_id]:  # in start order
            merged.update(runs[cell_id].metrics)
        cells = [runs[c] for c in children[record.run_id] if c in runs]
        unread = unread_overrides(record.parameters, cells)
        warnings += [f"{record.run_id[:8]}: {line}" for line in unread]
        if record.run_id in runs:
            merged.update(runs[record.run_id].metrics)
        rows.append(SweepRow(record, merged))
    return rows
