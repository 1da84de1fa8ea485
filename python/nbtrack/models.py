"""Small typed value objects: what a run is, everywhere (kernel, CLI, server, panel)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

RUN_STATUSES = ("running", "finished", "failed", "crashed")
RUN_KINDS = ("cell", "notebook")
MAX_PAGE = 10_000  # the most runs one listing request returns
# System tags (MLflow's ``mlflow.*`` idiom): ``nbtrack.warning.<what>`` holds a one-line
# message about something nbtrack could not record for the run (``git``, ``notebook``).
WARNING_TAG_PREFIX = "nbtrack.warning."


def warning_tag(what: str) -> str:
    """The tag key of a warning about ``what`` (``warning_tag("git")``: ``nbtrack.warning.git``)."""
    return WARNING_TAG_PREFIX + what


# Where a notebook run's failure happened, as each way of running it names the cell: the
# kernel ("In[4]"), a replay ("a replayed cell"), papermill's executor ("cell 3 (In [4])
# `x = lr`"; pipelines/execute.py). Not part of the outcome: a diff compares what raised.
_WHERE_RAISED = re.compile(
    r"^(?:In\[\d+\]|a replayed cell|cell \d+(?: \(In \[\d+\]\))?(?: `.*?`)?) raised "
)


def raised(where: str, what: str) -> str:
    """A notebook run's ``error``: the cell, as its runner names it, and its exception."""
    return f"{where} raised {what}"


def raised_what(error: str | None) -> str | None:
    """The exception a run failed with, without the name of the cell that raised it: one
    failure told by a kernel and by its rerun's replay is the same outcome."""
    return _WHERE_RAISED.sub("", error, count=1) if error else error


def json_float(value: float | None) -> float | str | None:
    """A float as JSON can carry it: NaN and infinities become strings."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def float_from_json(value: float | str | None) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(value, value))


def json_value(value: Any) -> Any:
    """Any recorded value (params may be nested) made JSON-safe."""
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def from_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class DataVersion:
    """One version of one file, folder or DataFrame that a run read or wrote."""

    path: str
    role: str
    hash: str | None
    size: int | None
    kind: str = "file"
    in_project: bool = True
    cached: bool = False
    mtime: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # Every field is a plain value: a copy of the fields, not asdict()'s deep copy
        # of each (a tracked cell spools a few of these per run, on its main thread).
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataVersion:
        fields: dict[str, Any] = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)


#: A key of a config parameter that names a column of its own (``cfg.lr``): a plain
#: name, so a filter writes the path unquoted (store/nested.py, cli/columns.py).
CONFIG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: How a NamedInput's fingerprint begins when it hashes the whole content; a sampled one
#: (an array or frame over a few MB) begins ``xxh64s:``.
WHOLE_FINGERPRINT = "xxh64:"
SAMPLED_FINGERPRINT = "xxh64s:"


@dataclass(frozen=True)
class NamedInput:
    """A value a cell read from the kernel namespace: a name it used before binding it.

    Parameter-like values are in the run's params too; others (DataFrames, arrays,
    models) are known here by type, shape and a content fingerprint. The producer is
    the run (and cell, ``In[n]``) that last bound the name, when there is one;
    ``stale`` says its value was made from names that changed since (``reason``).
    """

    name: str
    type: str
    origin: str = "upstream"  # papermill, default, upstream
    shape: str | None = None
    fingerprint: str | None = None
    producer_run_id: str | None = None
    producer_cell: str | None = None
    execution_count: int | None = None
    stale: bool = False
    reason: str | None = None
    note: str | None = None  # why there is no fingerprint

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # plain values only (see DataVersion.to_dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NamedInput:
        fields: dict[str, Any] = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**fields)


@dataclass(frozen=True)
class MetricPoint:
    step: int | None
    value: float
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "value": json_float(self.value), "ts": self.ts}


@dataclass(frozen=True)
class Environment:
    """Python version, platform and installed packages of the process that ran."""

    env_id: str
    python: str
    platform: str
    packages: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Environment:
        return cls(d["env_id"], d["python"], d["platform"], dict(d.get("packages") or {}))


@dataclass
class Run:
    """Everything recorded about one execution of a tracked cell (or notebook)."""

    run_id: str
    kind: str = "cell"
    name: str | None = None
    status: str = "running"
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    parent_id: str | None = None
    rerun_of: str | None = None
    notebook_path: str | None = None
    cell_id: str | None = None
    execution_count: int | None = None
    session_id: str | None = None
    source: str | None = None
    notebook_hash: str | None = None
    code_matches_notebook: bool | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff: str | None = None
    env_id: str | None = None
    host: str | None = None
    pid: int | None = None
    code_hash: str | None = None
    """The code the kernel session ran up to this run: a cache manifest of cell sources."""
    kernel_name: str | None = None
    executable: str | None = None
    cwd: str | None = None
    """The kernel's working folder (project-relative inside the project)."""
    rerun_verdict: str | None = None
    """``reproduced`` / ``not reproduced`` / ``failed`` on a re-run (see pipelines/verdict.py)."""
    params: dict[str, Any] = field(default_factory=dict)
    param_sources: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: list[DataVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    environment: Environment | None = None
    named_inputs: list[NamedInput] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.run_id[:8]

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def warnings(self) -> list[str]:
        """What nbtrack could not record for this run (its ``nbtrack.warning.*`` tags)."""
        return [v for k, v in sorted(self.tags.items()) if k.startswith(WARNING_TAG_PREFIX)]

    @property
    def inputs(self) -> list[DataVersion]:
        return [d for d in self.data if d.role == "input"]

    @property
    def outputs(self) -> list[DataVersion]:
        return [d for d in self.data if d.role == "output"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "duration": self.duration,
            "parent_id": self.parent_id,
            "rerun_of": self.rerun_of,
            "notebook_path": self.notebook_path,
            "cell_id": self.cell_id,
            "execution_count": self.execution_count,
            "session_id": self.session_id,
            "source": self.source,
            "notebook_hash": self.notebook_hash,
            "code_matches_notebook": self.code_matches_notebook,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "git_diff": self.git_diff,
            "env_id": self.env_id,
            "host": self.host,
            "pid": self.pid,
            "code_hash": self.code_hash,
            "kernel_name": self.kernel_name,
            "executable": self.executable,
            "cwd": self.cwd,
            "rerun_verdict": self.rerun_verdict,
            "params": json_value(self.params),
            "param_sources": dict(self.param_sources),
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "data": [d.to_dict() for d in self.data],
            "tags": dict(self.tags),
            "environment": self.environment.to_dict() if self.environment else None,
            "named_inputs": [i.to_dict() for i in self.named_inputs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Run:
        env = d.get("environment")
        return cls(
            run_id=d["run_id"],
            kind=d.get("kind", "cell"),
            name=d.get("name"),
            status=d.get("status", "running"),
            error=d.get("error"),
            started_at=from_iso(d.get("started_at")),
            ended_at=from_iso(d.get("ended_at")),
            parent_id=d.get("parent_id"),
            rerun_of=d.get("rerun_of"),
            notebook_path=d.get("notebook_path"),
            cell_id=d.get("cell_id"),
            execution_count=d.get("execution_count"),
            session_id=d.get("session_id"),
            source=d.get("source"),
            notebook_hash=d.get("notebook_hash"),
            code_matches_notebook=d.get("code_matches_notebook"),
            git_commit=d.get("git_commit"),
            git_dirty=d.get("git_dirty"),
            git_diff=d.get("git_diff"),
            env_id=d.get("env_id"),
            host=d.get("host"),
            pid=d.get("pid"),
            code_hash=d.get("code_hash"),
            kernel_name=d.get("kernel_name"),
            executable=d.get("executable"),
            cwd=d.get("cwd"),
            rerun_verdict=d.get("rerun_verdict"),
            params=dict(d.get("params") or {}),
            param_sources=dict(d.get("param_sources") or {}),
            metrics={k: float_from_json(v) for k, v in (d.get("metrics") or {}).items()},  # type: ignore[misc]
            data=[DataVersion.from_dict(x) for x in d.get("data") or []],
            tags=dict(d.get("tags") or {}),
            environment=Environment.from_dict(env) if env else None,
            named_inputs=[NamedInput.from_dict(x) for x in d.get("named_inputs") or []],
        )


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list, in which order, which page."""

    where: str | None = None
    text: str | None = None
    sort: str = "started_at"
    descending: bool = True
    limit: int | None = 50
    offset: int = 0
    kind: str | None = "cell"
    parent_id: str | None = None
    status: str | None = None
    sweep: str | None = None  # the runs of a sweep: its notebook runs and their cell runs
    #: Only the runs of this notebook (its recorded, project-relative path).
    notebook_path: str | None = None


@dataclass
class RunPage:
    """One page of runs plus what a table needs to show them."""

    runs: list[Run]
    total: int
    param_keys: list[str]
    metric_keys: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "total": self.total,
            "param_keys": self.param_keys,
            "metric_keys": self.metric_keys,
        }


@dataclass
class Batch:
    """Everything one ingestion writes for one run, in one transaction.

    ``run`` (a dict of run columns) creates or replaces the run row; ``update``
    sets columns of an existing one; ``end`` closes it. Metric points come as
    column lists (keys, steps, values, timestamps) and/or as Arrow tables with those
    columns (``metric_chunks``, decoded from a spool without Python objects).
    """

    run_id: str
    run: dict[str, Any] | None = None
    update: dict[str, Any] = field(default_factory=dict)
    params: list[tuple[str, str, float | None, str, str]] = field(default_factory=list)
    metric_keys: list[str] = field(default_factory=list)
    metric_steps: list[int] = field(default_factory=list)
    metric_values: list[float] = field(default_factory=list)
    metric_ts: list[float] = field(default_factory=list)
    metric_chunks: list[Any] = field(default_factory=list)
    data: list[DataVersion] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    environment: Environment | None = None
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    spool_offset: int | None = None  # bytes of the event spool now in (see ``spool.py``)
    points_offset: int | None = None  # records of the point log now in (see ``points.py``)
    named_inputs: list[NamedInput] = field(default_factory=list)


@dataclass
class NotebookHead:
    """The newest finished notebook run of one notebook: the current state ``repro`` compares with.

    ``data`` holds the data versions of the notebook run and of its cell runs, in the
    order the cells ran; ``snapshot`` is the notebook snapshot the run executed (the
    notebook run's, else its first cell run's).
    """

    run: Run
    data: list[DataVersion] = field(default_factory=list)
    snapshot: str | None = None
