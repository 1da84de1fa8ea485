"""Recorded runs for tests, made the way a pipeline makes them: through ``RunWriter``.

One function, ``record_run``, so every test file records a run the same way and a
change to how runs are written shows up in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nbtrack.client import Client
from nbtrack.hashing import StatCache
from nbtrack.models import DataVersion, NamedInput
from nbtrack.project import Project, resolve_project
from nbtrack.tracking import RunWriter
from nbtrack.versioning import version_path


def record_run(
    store: Project | Client | Path,
    name: str | None = "run",
    *,
    kind: str = "cell",
    params: Mapping[str, Any] | None = None,
    param_source: str = "flag",
    metrics: Mapping[str, float | Sequence[float]] | None = None,
    inputs: Sequence[str | Path] = (),
    outputs: Sequence[str | Path] = (),
    cache: bool = True,
    data: Sequence[DataVersion] = (),
    named_inputs: Sequence[NamedInput] = (),
    tags: Mapping[str, str] | None = None,
    status: str = "finished",
    error: str | None = None,
    **fields: Any,
) -> str:
    """Record one ended run in ``store`` (a project folder will do) and return its id
    once it is in DuckDB.

    ``metrics`` maps a name to a value or to a series (logged at steps 0, 1, ...).
    ``inputs`` / ``outputs`` are files or folders the run read / wrote, versioned as
    the recorder does (into the blob cache unless ``cache=False``); ``data`` adds
    data versions as given; ``named_inputs`` the values it read from a kernel. Other keywords (``parent_id``, ``notebook_path``,
    ``cell_id``, ``source``, ``notebook_hash``...) go to ``RunWriter.start``.

    Runs recorded one after another start in that order: each call returns only
    after its run was written to DuckDB, which takes milliseconds.
    """
    if isinstance(store, Path):
        store = resolve_project(store)
    project = store.project if isinstance(store, Client) else store
    writer = RunWriter.start(
        project,
        kind=kind,
        name=name,
        params=dict(params or {}),
        param_source=param_source,
        **fields,
    )
    versions = list(data)
    if inputs or outputs:
        blobs = writer.client.cache if cache else None
        stat_cache = StatCache.for_folder(project.folder)
        versions[:0] = [
            version_path(project, path, role, cache=blobs, stat_cache=stat_cache)
            for role, paths in (("input", inputs), ("output", outputs))
            for path in paths
        ]
    writer.log_data(versions)
    writer.log_inputs(list(named_inputs))
    if tags:
        writer.set_tags(dict(tags))
    for key, values in (metrics or {}).items():
        series = values if isinstance(values, Sequence) else [values]
        for step, value in enumerate(series):
            writer.log_metric(key, value, step=step)
    writer.finish(status, error)
    writer.wait()
    return writer.run_id
