"""Every ``NBTRACK_*`` environment variable, read in this one place.

Each variable is a :class:`Setting` (name, meaning, default, type) listed in
``SETTINGS`` and read by one function below. The functions read the environment
at call time, never at import, so a test (or a kernel nbtrack launches) sets a
variable and the next call sees it. docs/configuration.md lists the same table.

The pipelines set the kernel-side variables for the kernels they start
(``pipelines/execute.py`` ``kernel_env``); a person sets ``NBTRACK_STORE``,
``NBTRACK_MAX_BLOB_SIZE`` and ``NBTRACK_LOCK_TIMEOUT`` where they need them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import UsageError

log = logging.getLogger("nbtrack")


@dataclass(frozen=True)
class Setting:
    """One environment variable nbtrack reads."""

    name: str
    meaning: str
    default: str
    type: str

    def raw(self) -> str | None:
        """The variable's value, or None when it is unset or empty."""
        return os.environ.get(self.name) or None


STORE = Setting(
    "NBTRACK_STORE",
    "the store: a store folder, a folder holding .nbtrack/, or a .duckdb file",
    "unset: the nearest .nbtrack/ above the notebook (or the current folder), "
    "else a new one at the git root",
    "path",
)
ROOT = Setting(
    "NBTRACK_ROOT",
    "the project root data paths are recorded against, for a store kept outside its "
    "project (a Dask worker's scratch store); read only together with NBTRACK_STORE",
    "unset: the folder holding the store",
    "path",
)
PARENT_RUN = Setting(
    "NBTRACK_PARENT_RUN",
    "set by nbtrack's pipelines: the notebook run whose children this kernel's cell runs are",
    "unset: cell runs have no parent",
    "run id",
)
PARAMS = Setting(
    "NBTRACK_PARAMS",
    "set by nbtrack's pipelines: the injected parameters, recorded on each cell run "
    "(source papermill)",
    "unset: none",
    "JSON object",
)
NOTEBOOK = Setting(
    "NBTRACK_NOTEBOOK",
    "set by nbtrack's pipelines: the path of the notebook this kernel executes",
    "unset: Jupyter's JPY_SESSION_NAME, else VS Code's __vsc_ipynb_file__",
    "path ending in .ipynb",
)
CELL_TIMEOUT = Setting(
    "NBTRACK_CELL_TIMEOUT",
    "set by nbtrack's pipelines: the execution's cell timeout (`nbtrack sweep --timeout`), "
    "so a cell it interrupts is recorded as timed out",
    "unset: none",
    "seconds (a number)",
)
MAX_BLOB_SIZE = Setting(
    "NBTRACK_MAX_BLOB_SIZE",
    "files larger than this are hashed but their bytes are not cached "
    "(%config TrackMagics.max_blob_size wins when set)",
    "unset or 0: no limit",
    "size: bytes, or K/M/G/T (binary) suffixes, e.g. 500M, 2G",
)
LOCK_TIMEOUT = Setting(
    "NBTRACK_LOCK_TIMEOUT",
    "how long a process retries a store another process holds before StoreBusyError",
    "60",
    "seconds (a number)",
)

SYSTEM_INTERVAL = Setting(
    "NBTRACK_SYSTEM_INTERVAL",
    "seconds between samples of a tracked cell's CPU, memory, disk and GPU use; 0 turns "
    "them off (%config TrackMagics.system_interval wins when set)",
    "2",
    "seconds (a number)",
)

QUERY_TIMEOUT = Setting(
    "NBTRACK_QUERY_TIMEOUT",
    "how long a run query (a listing with --where, a REST filter) may run before it is "
    "stopped with an error that says so",
    "5",
    "seconds (a number)",
)

ENV_CACHE = Setting(
    "NBTRACK_ENV_CACHE",
    "where `nbtrack rerun --env recorded` keeps the environments it builds (one per recorded "
    "environment, reused)",
    "$XDG_CACHE_HOME/nbtrack/envs, else ~/.cache/nbtrack/envs",
    "path",
)
INGEST = Setting(
    "NBTRACK_INGEST",
    "who moves a kernel's spooled runs into the store: `process`, the store's one "
    "ingestion process (`python -m nbtrack.ingestd`), or `thread`, a thread of each "
    "kernel (a diagnostic; also the fallback when the process cannot start)",
    "process",
    "process or thread",
)
SETTINGS = (
    STORE, ROOT, PARENT_RUN, PARAMS, NOTEBOOK, CELL_TIMEOUT, MAX_BLOB_SIZE, LOCK_TIMEOUT,
    QUERY_TIMEOUT, SYSTEM_INTERVAL, ENV_CACHE, INGEST,
)  # fmt: skip
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_QUERY_TIMEOUT = 5.0

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes from a size such as ``"500M"``, ``"2GiB"``, ``"1.5g"`` or ``"1048576"``.

    >>> parse_size("2G")
    2147483648
    """
    match = _SIZE.fullmatch(text)
    if match is None:
        raise UsageError(f"not a size: {text!r} (try 500M, 2G, or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _path(setting: Setting) -> Path | None:
    raw = setting.raw()
    return Path(raw).expanduser().resolve() if raw else None


def store() -> Path | None:
    """``NBTRACK_STORE`` as an absolute path, or None."""
    return _path(STORE)


def root() -> Path | None:
    """``NBTRACK_ROOT`` as an absolute path, or None."""
    return _path(ROOT)


def env_cache() -> Path:
    """``NBTRACK_ENV_CACHE``, else the user's cache folder's ``nbtrack/envs``."""
    chosen = _path(ENV_CACHE)
    if chosen is not None:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "nbtrack" / "envs"


def parent_run() -> str | None:
    """``NBTRACK_PARENT_RUN``: the id of the notebook run that launched this kernel, or None."""
    return PARENT_RUN.raw()


def params() -> dict[str, Any]:
    """``NBTRACK_PARAMS`` as a dict; ``{}`` when unset, or (with a logged warning) not a JSON object."""
    raw = PARAMS.raw()
    if raw is None:
        return {}
    try:
        return dict(json.loads(raw))
    except (ValueError, TypeError):
        log.warning("nbtrack: %s is not a JSON object; ignored", PARAMS.name)
        return {}


def notebook() -> str | None:
    """``NBTRACK_NOTEBOOK`` when it names a ``.ipynb`` file (as an absolute path), else None."""
    raw = NOTEBOOK.raw()
    return str(Path(raw).expanduser().resolve()) if raw and raw.endswith(".ipynb") else None


def cell_timeout() -> str | None:
    """``NBTRACK_CELL_TIMEOUT`` as set (seconds), or None."""
    return CELL_TIMEOUT.raw() or None


def max_blob_size() -> int | None:
    """``NBTRACK_MAX_BLOB_SIZE`` in bytes; None when unset or ``0`` (no limit, as
    ``TrackMagics.max_blob_size``)."""
    raw = (MAX_BLOB_SIZE.raw() or "").strip()
    return (parse_size(raw) or None) if raw else None


def lock_timeout() -> float:
    """``NBTRACK_LOCK_TIMEOUT`` in seconds (default 60)."""
    return _seconds(LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT)


def query_timeout() -> float:
    """``NBTRACK_QUERY_TIMEOUT`` in seconds (default 5)."""
    return _seconds(QUERY_TIMEOUT, DEFAULT_QUERY_TIMEOUT)


def _seconds(setting: Setting, default: float) -> float:
    raw = setting.raw()
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{setting.name} must be a number of seconds, not {raw!r}") from None
    if not value > 0:
        raise UsageError(f"{setting.name} must be more than 0 seconds, not {raw!r}")
    # `inf` (or 1e20) says "wait for ever": the longest wait a lock or a timer takes
    # (292 years), where a larger one failed in a thread with a traceback
    return min(value, threading.TIMEOUT_MAX)


def system_interval() -> float:
    """``NBTRACK_SYSTEM_INTERVAL`` in seconds (default 2; 0 or less: no system metrics)."""
    raw = SYSTEM_INTERVAL.raw()
    if raw is None:
        return float(SYSTEM_INTERVAL.default)
    try:
        return float(raw)
    except ValueError:
        raise UsageError(
            f"{SYSTEM_INTERVAL.name} must be a number of seconds, not {raw!r}"
        ) from None


def ingest() -> str:
    """``NBTRACK_INGEST``: ``process`` (default) or ``thread``."""
    raw = (INGEST.raw() or INGEST.default).strip().lower()
    if raw not in ("process", "thread"):
        raise UsageError(f"{INGEST.name} must be process or thread, not {raw!r}")
    return raw
