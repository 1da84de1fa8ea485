"""Runs as JSON text built by DuckDB: ``ls --json`` over 10,000 runs without a Python object each.

The text of each run has the fields of ``Run.to_dict()`` (environment left out, as in
a listing) with the same values once parsed: timestamps ISO-8601 UTC with ``Z``,
NaN and infinities as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
Building it in DuckDB costs ~0.1 s for 10,000 runs where Python objects, ``to_dict``
and the encoder cost ~1.5 s. A parameter's stored JSON text is used as it is; the
rare run whose stored text holds ``NaN`` or ``Infinity`` outside a plain string is
re-encoded in Python (``json.loads`` takes those constants, JSON does not).

Two things kept it at ~0.2 s more than that (profiled with DuckDB's JSON profile):
the page's ids passed as one list parameter were a 10,000-element constant that the
optimizer copied into every CTE that used it (~60 ms of planning: they go into a
temporary table now), and each run's parts cast to ``JSON`` were parsed again to be
embedded (they are appended as text to the run's own object now). A third: a run's
text was put together with ``||``, a new string per operator (fourteen copies of each
1 KB run); one ``concat(...)`` of all the parts builds it once (the query's CPU fell by
about 40 %, profiled the same way).
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from ..models import json_value


def _iso(col: str) -> str:
    # Python's isoformat: microseconds only when there are some.
    return (
        f"CASE WHEN epoch_us({col}) % 1000000 = 0 THEN strftime({col}, '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def _float_json(col: str) -> str:
    # DuckDB writes NaN bare (not JSON): non-finite values as strings, as json_float does.
    return (
        f"CASE WHEN isnan({col}) THEN '\"NaN\"' WHEN {col} = 'infinity'::DOUBLE THEN '\"Infinity\"' "
        f"WHEN {col} = '-infinity'::DOUBLE THEN '\"-Infinity\"' "
        f"ELSE coalesce(to_json({col})::VARCHAR, 'null') END"
    )


def _group_object(key: str, value: str) -> str:
    """A JSON object of one run's rows, from a key and a JSON text per row. Keys in order
    by sorting ``"key":value`` texts (a quoted key sorts as the key does, bar escapes);
    an ordered aggregate costs twice as much."""
    return f"concat('{{', array_to_string(list_sort(list(concat(to_json({key})::VARCHAR, ':', {value}))), ','), '}}')"


_RUN_FIELDS = (
    "run_id", "kind", "name", "status", "error", "started_at", "ended_at", "duration",
    "parent_id", "rerun_of", "notebook_path", "cell_id", "execution_count", "session_id",
    "source", "notebook_hash", "code_matches_notebook", "git_commit", "git_dirty", "git_diff",
    "env_id", "host", "pid", "code_hash", "kernel_name", "executable", "cwd", "rerun_verdict",
)  # fmt: skip
_COMPUTED = {
    "started_at": _iso("r.started_at"),
    "ended_at": _iso("r.ended_at"),
    "duration": "(epoch_us(r.ended_at) - epoch_us(r.started_at))::DOUBLE / 1000000",
}
# The fields of Run.to_dict(), in its order (environment: none in a listing). DuckDB's
# to_json of one struct per run is 3x faster than concatenating the fields' texts; the
# parts built per run (params, metrics, ...) come last in to_dict, so they are appended
# to that object's text as text (a JSON-typed field would be parsed again).
_PART_TEXT = {
    "params": ("p", "coalesce(p.params, '{}')"),
    "param_sources": ("p", "coalesce(p.sources, '{}')"),
    "metrics": ("m", "coalesce(m.metrics, '{}')"),
    "data": ("d", "coalesce(d.data, '[]')"),
    "tags": ("t", "coalesce(t.tags, '{}')"),
    "environment": ("", "'null'"),
    "named_inputs": ("i", "coalesce(i.inputs, '[]')"),
}
ALL_FIELDS = (*_RUN_FIELDS, *_PART_TEXT)


def _object(fields: tuple[str, ...]) -> str:
    """One run's JSON text with ``fields``: some of the run's own columns, then its parts."""
    own = [f for f in fields if f in _RUN_FIELDS]
    parts = [f for f in fields if f in _PART_TEXT]
    if not own or fields != (*own, *parts):
        raise ValueError(f"a run's own fields, then its parts, not {fields}")
    text = (
        "to_json(struct_pack("
        + ", ".join(f"{c} := {_COMPUTED.get(c, 'r.' + c)}" for c in own)
        + "))::VARCHAR"
    )
    if not parts:
        return text
    tail = "".join(f""", ',"{f}":', {_PART_TEXT[f][1]}""" for f in parts)
    return f"concat(left({text}, -1){tail}, '}}')"


_DATA = (
    "concat(left(to_json(struct_pack(path := path, role := role, hash := hash, size := size, "
    "kind := kind, in_project := in_project, cached := cached))::VARCHAR, -1), "
    f"""',"mtime":', {_float_json("mtime")}, '}}')"""
)
_INPUT = (
    "to_json(struct_pack(name := name, type := type, origin := origin, shape := shape, "
    "fingerprint := fingerprint, producer_run_id := producer_run_id, "
    "producer_cell := producer_cell, execution_count := execution_count, "
    "stale := coalesce(stale, false), reason := reason, note := note))::VARCHAR"
)


def _array(item: str, order: str) -> str:
    return f"concat('[', array_to_string(list({item} ORDER BY {order}), ','), ']')"


# The page's ids and their order, in a temporary table of this connection (a list
# parameter would be a constant the optimizer copies into every CTE that reads it).
_PAGE = "nbtrack_page_ids"

_FILL = (
    f"CREATE OR REPLACE TEMP TABLE {_PAGE} AS "
    "SELECT unnest($ids) AS run_id, generate_subscripts($ids, 1) AS pos"
)
_CTES = {
    "p": f"""p AS (
    SELECT run_id,
        {_group_object("key", "CASE WHEN json_valid(value) THEN value ELSE coalesce(to_json(value)::VARCHAR, 'null') END")}
            AS params,
        {_group_object("key", "coalesce(to_json(source)::VARCHAR, 'null')")} AS sources,
        bool_or(contains(value, 'NaN') OR contains(value, 'Infinity')) AS odd
    FROM params SEMI JOIN w USING (run_id) GROUP BY run_id)""",
    "m": f"""m AS (
    SELECT run_id, {_group_object("key", _float_json("value"))} AS metrics
    FROM metric_latest SEMI JOIN w USING (run_id) GROUP BY run_id)""",
    "d": f"""d AS (
    SELECT run_id, {_array(_DATA, "role, path")} AS data
    FROM data_versions SEMI JOIN w USING (run_id) GROUP BY run_id)""",
    "t": f"""t AS (
    SELECT run_id, {_group_object("key", "coalesce(to_json(value)::VARCHAR, 'null')")} AS tags
    FROM tags SEMI JOIN w USING (run_id) GROUP BY run_id)""",
    "i": f"""i AS (
    SELECT run_id, {_array(_INPUT, "name")} AS inputs
    FROM named_inputs SEMI JOIN w USING (run_id) GROUP BY run_id)""",
}


def _sql(fields: tuple[str, ...]) -> str:
    """The query of the runs of the page table with ``fields``, and whether each needs
    re-encoding in Python (a parameter holding NaN or Infinity)."""
    used = [c for c in "pmdti" if any(_PART_TEXT.get(f, ("",))[0] == c for f in fields)]
    odd = "coalesce(p.odd, false)" if "p" in used else "false"
    return (
        f"WITH w AS (SELECT run_id, pos FROM temp.{_PAGE})"
        + "".join(",\n" + _CTES[c] for c in used)
        + f"\nSELECT {_object(fields)}, {odd}\nFROM w JOIN runs r USING (run_id)\n"
        + "".join(f"LEFT JOIN {c} USING (run_id) " for c in used)
        + "\nORDER BY w.pos"
    )


def runs_json(
    con: duckdb.DuckDBPyConnection, ids: list[str], fields: tuple[str, ...] = ALL_FIELDS
) -> list[str]:
    """The runs ``ids`` (in that order; unknown ids left out), each as its JSON text with
    ``fields`` of ``Run.to_dict()`` (all of them but the environment)."""
    if not ids:
        return []
    con.execute(_FILL, {"ids": ids})
    try:
        rows = con.execute(_sql(fields)).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS temp.{_PAGE}")
    return [
        # a bare NaN/Infinity inside a stored parameter, or a string holding the word
        json.dumps(json_value(json.loads(text)), allow_nan=False) if odd else text
        for text, odd in rows
    ]


#: Runs per chunk of a page's text: ~0.5 MB, a size the allocator reuses.
_CHUNK = 500


def page_chunks(
    runs: list[str],
    total: int,
    param_keys: list[str],
    metric_keys: list[str],
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """A page of runs as ``RunPage.to_dict()`` has it (plus ``extra``), as text chunks
    whose concatenation is the JSON document. Written chunk by chunk, 10,000 runs never
    become one 11 MB string: each copy of one cost ~10 ms of fresh memory, and joining,
    bracketing, adding a newline and encoding made five of them."""
    tail: dict[str, Any] = {
        "total": total,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        **(extra or {}),
    }
    chunks = ['{"runs": [']
    for start in range(0, len(runs), _CHUNK):
        chunks.append(("," if start else "") + ",".join(runs[start : start + _CHUNK]))
    chunks.append("], " + json.dumps(tail)[1:])
    return chunks
