"""What the store's tables hold, shared by its reads and writes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

RUN_COLUMNS = (
    "run_id", "kind", "name", "status", "error", "started_at", "ended_at", "parent_id",
    "rerun_of", "notebook_path", "cell_id", "execution_count", "session_id", "source",
    "notebook_hash", "code_matches_notebook", "git_commit", "git_dirty", "git_diff",
    "env_id", "host", "pid", "code_hash", "kernel_name", "executable", "rerun_verdict",
    "cwd",
)  # fmt: skip
# Columns of a run that may change after it started (ingested "update"/"end" events).
MUTABLE_RUN_COLUMNS = frozenset(RUN_COLUMNS) - {"run_id", "kind", "started_at"}
TABLES = ("runs", "params", "metrics", "metric_latest", "data_versions", "tags", "named_inputs")


def utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=timezone.utc)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def jsonable_row(row: dict[str, Any]) -> dict[str, Any]:
    for k, v in row.items():
        if isinstance(v, datetime):
            row[k] = v.isoformat()
    return row
