"""Reads for inferred pipelines: the newest finished notebook run of every notebook, at once."""

from __future__ import annotations

import duckdb

from ..models import DataVersion, NotebookHead
from . import reads


def notebook_heads(con: duckdb.DuckDBPyConnection) -> list[NotebookHead]:
    """Each notebook's newest ``finished`` notebook run with its cells' data versions.

    A fixed number of statements whatever the number of notebooks: the run ids, the
    runs (``reads.load``), then every data version and snapshot of their cell runs.
    """
    ids = [
        str(r[0])
        for r in con.execute(
            "SELECT run_id FROM (SELECT run_id, row_number() OVER ("
            "PARTITION BY notebook_path ORDER BY started_at DESC, run_id DESC) AS n "
            "FROM runs WHERE kind = 'notebook' AND status = 'finished' "
            "AND notebook_path IS NOT NULL) WHERE n = 1 ORDER BY run_id"
        ).fetchall()
    ]
    if not ids:
        return []
    heads = {
        r.run_id: NotebookHead(r, list(r.data), r.notebook_hash)
        for r in reads.load(con, ids, with_env=False)
    }
    for row in con.execute(
        "SELECT c.parent_id, d.path, d.role, d.hash, d.size, d.kind, d.in_project, d.cached, "
        "d.mtime FROM data_versions d JOIN runs c USING (run_id) "
        "WHERE list_contains(?, c.parent_id) "
        "ORDER BY c.parent_id, c.started_at, c.execution_count, d.role, d.path",
        [ids],
    ).fetchall():
        heads[row[0]].data.append(DataVersion(*row[1:]))
    for parent, snapshot in con.execute(
        "SELECT parent_id, arg_min(notebook_hash, started_at) FROM runs "
        "WHERE list_contains(?, parent_id) AND notebook_hash IS NOT NULL GROUP BY parent_id",
        [ids],
    ).fetchall():
        if heads[parent].snapshot is None:
            heads[parent].snapshot = snapshot
    return list(heads.values())
