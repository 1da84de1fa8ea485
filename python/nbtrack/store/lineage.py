"""A run's lineage read in one connection: the runs that wrote what it read, the runs
that read what it wrote (level by level), the kernel values passed between runs, and
the model versions registered or loaded along the way."""

from __future__ import annotations

from typing import Any

import duckdb

from ..models import iso

_DATA_COLUMNS = "d.run_id, d.path, d.role, d.hash, d.size, d.kind, d.cached"


def _data(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    keys = ("run_id", "path", "role", "hash", "size", "kind", "cached")
    return [dict(zip(keys, row, strict=True)) for row in rows]


#: The two directions a lineage follows: (role of the rows it starts from, role of the
#: rows that link to them, the named_inputs column known, the side of a value link found).
_SIDES = (
    ("input", "output", "run_id", "source"),  # upstream: who wrote what these runs read
    ("output", "input", "producer_run_id", "target"),  # downstream: who read what they wrote
)


def _rows_of(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], role: str | None
) -> list[dict[str, Any]]:
    """Data-version rows of ``run_ids`` (only ``role`` unless None), by run, role, path."""
    rows = con.execute(
        f"SELECT {_DATA_COLUMNS} FROM data_versions d WHERE list_contains(?, d.run_id) "
        "AND (? IS NULL OR d.role = ?) ORDER BY d.run_id, d.role, d.path",
        [run_ids, role, role],
    ).fetchall()
    return _data(rows)


def _same_content(
    con: duckdb.DuckDBPyConnection, hashes: list[str], role: str, runs: list[str], fanout: int
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of other runs with ``role`` on one of ``hashes``, and how many runs more
    each hash has past ``fanout``.

    Time decides who counts: a writer (``role`` output) only if it started before the
    last of ``runs`` (bytes written after a run read them did not feed it), nearest in
    time first; a reader (``role`` input) only if it started after the first of ``runs``,
    earliest first.
    """
    upstream = role == "output"
    rows = con.execute(
        f"SELECT {_DATA_COLUMNS}, count(*) OVER (PARTITION BY d.hash) AS total "
        "FROM data_versions d JOIN runs r USING (run_id) "
        "WHERE d.role = ? AND list_contains(?, d.hash) AND NOT list_contains(?, d.run_id) "
        "AND (CASE WHEN ? THEN r.started_at <= (SELECT max(started_at) FROM runs "
        "WHERE list_contains(?, run_id)) ELSE r.started_at >= (SELECT min(started_at) "
        "FROM runs WHERE list_contains(?, run_id)) END) "
        "QUALIFY row_number() OVER (PARTITION BY d.hash ORDER BY "
        "CASE WHEN ? THEN -epoch_us(r.started_at) ELSE epoch_us(r.started_at) END, "
        "d.run_id) <= ? "
        "ORDER BY r.started_at, d.run_id, d.path",
        [role, hashes, runs, upstream, runs, runs, upstream, fanout],
    ).fetchall()
    more = {row[3]: int(row[7]) - fanout for row in rows if int(row[7]) > fanout}
    return _data([row[:7] for row in rows]), more


def _value_links(
    con: duckdb.DuckDBPyConnection, column: str, run_ids: list[str], fanout: int
) -> list[dict[str, Any]]:
    """Kernel values a run read from another run's cell (``column`` names the side known)."""
    rows = con.execute(
        "SELECT producer_run_id, run_id, name FROM named_inputs "
        f"WHERE producer_run_id IS NOT NULL AND producer_run_id <> run_id "
        f"AND list_contains(?, {column}) "
        f"QUALIFY row_number() OVER (PARTITION BY {column} ORDER BY run_id, name) <= ? "
        "ORDER BY producer_run_id, run_id, name",
        [run_ids, fanout * 4],
    ).fetchall()
    return [{"source": r[0], "target": r[1], "name": r[2]} for r in rows]


def run_lineage(
    con: duckdb.DuckDBPyConnection, run_id: str, depth: int, fanout: int
) -> dict[str, Any]:
    """The lineage of ``run_id`` up to ``depth`` runs away on each side.

    Returns ``runs`` (summaries of every run in it, the run itself first), ``data``
    (the data-version rows that link them: all of the run's own, then, per level, the
    rows of runs that wrote or read the same content), ``values`` (kernel values
    passed from one run to another), ``models`` (versions registered by, or loaded by,
    those runs) and ``more`` (hash → runs left out past ``fanout``).
    """
    data = _rows_of(con, [run_id], None)
    values: list[dict[str, Any]] = []
    more: dict[str, int] = {}
    seen = {run_id}
    frontier = {side: ([r for r in data if r["role"] == side[0]], [run_id]) for side in _SIDES}
    for level in range(depth):
        new: dict[tuple[str, str, str, str], list[str]] = {}
        for side in _SIDES:
            rows, runs = frontier[side]
            _, other, column, key = side
            hashes = sorted({row["hash"] for row in rows if row["hash"]})
            linked, extra = _same_content(con, hashes, other, runs, fanout) if hashes else ([], {})
            more.update(extra)
            data.extend(linked)
            links = _value_links(con, column, runs, fanout)
            values.extend(links)
            new[side] = sorted(({r["run_id"] for r in linked} | {v[key] for v in links}) - seen)
        for ids in new.values():
            seen.update(ids)
        if level == depth - 1 or not any(new.values()):
            break
        # The next level starts from what the new runs read (upstream) or wrote (downstream).
        for side in _SIDES:
            rows = _rows_of(con, new[side], side[0]) if new[side] else []
            data.extend(rows)
            frontier[side] = (rows, new[side])
    ids = sorted(seen | {v["source"] for v in values} | {v["target"] for v in values})
    return {
        "runs": _runs(con, run_id, ids),
        "data": _unique(data),
        "values": _unique(values),
        "models": _models(con, ids, sorted({r["hash"] for r in data if r["hash"]})),
        "more": more,
    }


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        out.setdefault(tuple(row.values()), row)
    return list(out.values())


def _runs(con: duckdb.DuckDBPyConnection, run_id: str, ids: list[str]) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT run_id, kind, name, status, started_at, notebook_path, cell_id, parent_id "
        "FROM runs WHERE list_contains(?, run_id) "
        "ORDER BY run_id <> ?, started_at, run_id",
        [ids, run_id],
    ).fetchall()
    keys = ("run_id", "kind", "name", "status", "started_at", "notebook_path", "cell_id")
    return [
        {**dict(zip(keys, row[:7], strict=True)), "started_at": iso(row[4]), "parent_id": row[7]}
        for row in rows
    ]


def _models(
    con: duckdb.DuckDBPyConnection, run_ids: list[str], hashes: list[str]
) -> list[dict[str, Any]]:
    """Versions made by one of the runs or whose bytes one of them read or wrote."""
    rows = con.execute(
        "SELECT v.name, v.version, v.hash, v.run_id, v.flavor, v.archived, "
        "list(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL) "
        "FROM model_versions v LEFT JOIN model_aliases a "
        "ON a.name = v.name AND a.version = v.version "
        "WHERE list_contains(?, v.run_id) OR list_contains(?, v.hash) "
        "GROUP BY ALL ORDER BY v.name, v.version",
        [run_ids, hashes],
    ).fetchall()
    keys = ("name", "version", "hash", "run_id", "flavor", "archived")
    return [{**dict(zip(keys, row[:6], strict=True)), "aliases": row[6] or []} for row in rows]
