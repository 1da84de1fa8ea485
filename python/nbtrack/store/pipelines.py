"""Reads for inferred pipelines: the newest finished notebook run of every notebook, at once."""

from __future__ import annotations

import json

import duckdb

from ..models import DataVersion, NotebookHead, Run
from .tables import utc

# What a pipeline needs of a run: no metrics, tags or named inputs (``repro`` on a
# pipeline with nothing stale is three statements, whatever the number of notebooks).
_HEAD_COLUMNS = (
    "run_id",
    "kind",
    "name",
    "status",
    "started_at",
    "ended_at",
    "notebook_path",
    "notebook_hash",
)


def notebook_heads(con: duckdb.DuckDBPyConnection) -> list[NotebookHead]:
    """Each notebook's newest ``finished`` notebook run with its cells' data versions.

    The snapshot is the notebook run's own, else the first one its cell runs recorded
    (a notebook run opened by plain papermill inside the kernel has none).
    """
    cols = ", ".join(f"r.{c}" for c in _HEAD_COLUMNS)
    heads: dict[str, NotebookHead] = {}
    for row in con.execute(
        f"SELECT {cols}, (SELECT arg_min(c.notebook_hash, c.started_at) FROM runs c "
        "WHERE c.parent_id = r.run_id AND c.notebook_hash IS NOT NULL) "
        "FROM (SELECT *, row_number() OVER (PARTITION BY notebook_path "
        "ORDER BY started_at DESC, run_id DESC) AS newest FROM runs "
        "WHERE kind = 'notebook' AND status = 'finished' AND notebook_path IS NOT NULL) r "
        "WHERE newest = 1 ORDER BY r.notebook_path"
    ).fetchall():
        fields = dict(zip(_HEAD_COLUMNS, row[:-1], strict=True))
        fields["started_at"] = utc(fields["started_at"])
        fields["ended_at"] = utc(fields["ended_at"])
        run = Run(**fields)
        heads[run.run_id] = NotebookHead(run, [], run.notebook_hash or row[-1])
    if not heads:
        return []
    ids = list(heads)
    for run_id, key, value, source in con.execute(
        "SELECT run_id, key, value, source FROM params WHERE list_contains(?, run_id) ORDER BY key",
        [ids],
    ).fetchall():
        heads[run_id].run.params[key] = json.loads(value)
        heads[run_id].run.param_sources[key] = source
    # The notebook run's own data first, then its cells' in the order they ran.
    for row in con.execute(
        "SELECT coalesce(c.parent_id, c.run_id), d.path, d.role, d.hash, d.size, d.kind, "
        "d.in_project, d.cached, d.mtime FROM data_versions d JOIN runs c USING (run_id) "
        "WHERE list_contains(?, c.parent_id) OR list_contains(?, c.run_id) "
        "ORDER BY c.parent_id NULLS FIRST, c.started_at, c.execution_count, d.role, d.path",
        [ids, ids],
    ).fetchall():
        heads[row[0]].data.append(DataVersion(*row[1:]))
    return list(heads.values())
