"""Checks on a dump of runs (from a bundle or a remote) before any row reaches the store.

A dump is ``{table: [row, ...]}`` as ``Client.dump_runs`` writes it. One that came
from elsewhere may be hand-edited, truncated or hostile: a row without ``run_id``, a
timestamp that is not one, a step that is not an integer, a data version whose path
climbs out of the project (``../../..``) or whose hash is not a hash. Each is refused
here with one line naming the table, the row and the field, and nothing is imported.
"""

from __future__ import annotations

import datetime as dt
import json
import numbers
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from .cache import is_content_hash
from .exceptions import UsageError
from .models import RUN_KINDS, RUN_STATUSES

RUN_TABLES = ("runs", "params", "metrics", "metric_latest", "data_versions", "tags", "named_inputs")
OTHER_TABLES = ("environments", "profiles")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")  # run ids become file names on import


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and -(2**63) <= int(value) < 2**63  # a BIGINT column (2**70 was an OverflowError)
    )


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    """What any other field may hold: a JSON scalar, never an object or a list."""
    return value is None or isinstance(value, (str, bool, float)) or _is_int(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return True
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_json_text(value: Any) -> bool:
    """Text a reader decodes as JSON (a parameter's value, an environment's packages)."""
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _safe_path(value: Any) -> bool:
    if not isinstance(value, str) or not value or "\x00" in value:
        return False
    if value.startswith("/"):
        return True  # recorded outside the project; checkout asks before writing there
    return ".." not in PurePosixPath(value).parts


# What each field must be, per table; fields not named here are left to the store.
FIELDS: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "runs": {
        "kind": (lambda v: v in RUN_KINDS, f"one of {', '.join(RUN_KINDS)}"),
        "status": (lambda v: v in RUN_STATUSES, f"one of {', '.join(RUN_STATUSES)}"),
        "started_at": (_is_time, "an ISO timestamp"),
        "ended_at": (_optional(_is_time), "an ISO timestamp or null"),
        "updated_at": (_optional(_is_time), "an ISO timestamp or null"),
        "execution_count": (_optional(_is_int), "an integer or null"),
        "notebook_hash": (_optional(is_content_hash), "a content hash or null"),
        "code_hash": (_optional(is_content_hash), "a content hash or null"),
        "code_matches_notebook": (_optional(_is_bool), "true, false or null"),
        "git_dirty": (_optional(_is_bool), "true, false or null"),
        "pid": (_optional(_is_int), "an integer or null"),
        "spool_offset": (_optional(_is_int), "an integer"),
        "points_offset": (_optional(_is_int), "an integer"),
    },
    "params": {"key": (_is_text, "text"), "value": (_optional(_is_json_text), "JSON text")},
    "metrics": {
        "key": (_is_text, "text"),
        "step": (_is_int, "an integer"),
        "value": (_optional(_is_number), "a number"),
        "ts": (_optional(_is_number), "a number"),
    },
    "metric_latest": {
        "key": (_is_text, "text"),
        "step": (_optional(_is_int), "an integer"),
        "value": (_optional(_is_number), "a number"),
        "n": (_optional(_is_int), "an integer"),
    },
    "data_versions": {
        "path": (_safe_path, "a path inside the project or an absolute path, without '..'"),
        "role": (lambda v: v in ("input", "output"), "input or output"),
        "hash": (_optional(is_content_hash), "a content hash (algo:hex) or null"),
        "size": (_optional(_is_int), "an integer or null"),
        "in_project": (_optional(_is_bool), "true, false or null"),
        "cached": (_optional(_is_bool), "true, false or null"),
    },
    "tags": {"key": (_is_text, "text")},
    "named_inputs": {
        "name": (_is_text, "text"),
        "stale": (_optional(_is_bool), "true, false or null"),
        "execution_count": (_optional(_is_int), "an integer or null"),
    },
    "environments": {
        "env_id": (_is_text, "text"),
        "python": (_optional(_is_text), "text"),
        "platform": (_optional(_is_text), "text"),
        "packages": (_optional(_is_json_text), "JSON text"),
    },
    "profiles": {
        "hash": (is_content_hash, "a content hash"),
        "profile": (_is_json_text, "JSON text"),
    },
}
# Fields a row must have (the others may be absent and are stored as NULL).
REQUIRED = {
    "runs": ("run_id", "kind", "status", "started_at"),
    "params": ("run_id", "key"),
    "metrics": ("run_id", "key", "step"),
    "metric_latest": ("run_id", "key"),
    "data_versions": ("run_id", "path", "role"),
    "tags": ("run_id", "key"),
    "named_inputs": ("run_id", "name"),
    "environments": ("env_id", "python", "platform", "packages"),
    "profiles": ("hash", "profile"),
}


def check_dump(dump: Any, source: str) -> dict[str, list[dict[str, Any]]]:
    """``dump`` if every row is well-formed, else ``UsageError`` naming the first bad one."""
    if not isinstance(dump, dict):
        raise UsageError(f"{source}: runs must be an object of tables, not {type(dump).__name__}")
    for table, rows in dump.items():
        if table not in FIELDS:
            continue  # written by a newer nbtrack: the store keeps what it knows
        if not isinstance(rows, list):
            raise UsageError(f"{source}: table {table!r} must be a list of rows")
        for i, row in enumerate(rows):
            _check_row(source, table, i, row)
    return dump


def _check_row(source: str, table: str, i: int, row: Any) -> None:
    where = f"{source}: {table} row {i + 1}"
    if not isinstance(row, dict):
        raise UsageError(f"{where} is not an object")
    missing = [f for f in REQUIRED[table] if f not in row]
    if missing:
        raise UsageError(f"{where} lacks {', '.join(missing)}; nothing was imported")
    if table in RUN_TABLES and not (
        isinstance(row["run_id"], str) and _RUN_ID.match(row["run_id"])
    ):
        raise UsageError(f"{where}: run_id {row['run_id']!r} is not a run id; nothing was imported")
    checks = FIELDS[table]
    for name, value in row.items():
        check, what = checks.get(name, (_is_scalar, "a number, text, true, false or null"))
        if not check(value):
            raise UsageError(f"{where}: {name} must be {what}, not {value!r}; nothing was imported")
    if table == "runs":
        # The store's times have no zone (UTC): a time given with an offset is moved to
        # UTC, or the store dropped the offset and kept the wrong instant.
        for name in ("started_at", "ended_at", "updated_at"):
            if isinstance(row.get(name), str) and (t := _as_time(row[name])).utcoffset():
                row[name] = t.astimezone(dt.timezone.utc).isoformat()
    ended = row.get("ended_at") if table == "runs" else None
    if ended is not None and _as_time(ended) < _as_time(row["started_at"]):
        raise UsageError(
            f"{where}: ended_at {ended} is before started_at {row['started_at']}; "
            "nothing was imported"
        )


def _as_time(value: str | dt.datetime) -> dt.datetime:
    """A checked timestamp; one without a zone is UTC, as the store takes it."""
    t = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)
