"""The run query: one page of runs filtered and sorted by any column, param or metric."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from .. import settings
from ..exceptions import QueryError, QueryTimeoutError
from ..models import RunPage, RunQuery
from . import filters, nested, reads
from .integrity import is_damage
from .tables import RUN_COLUMNS, quote_ident

SORTABLE = {
    "started_at", "ended_at", "name", "status", "duration", "notebook_path", "kind",
    "run_id", "execution_count",
}  # fmt: skip

# Parameter and metric names per file, remembered while the row counts stay the same.
_keys_cache: dict[str, tuple[Any, list[tuple[str, bool]], list[str]]] = {}
_integers_cache: dict[str, tuple[Any, set[str]]] = {}
# A parameter whose every value is one of these is an integer column (JSON's text of an
# int; 18 digits at most, so it fits a BIGINT): ``epochs`` is 3 and <NA>, not 3.0 and NaN.
_INTEGER_JSON = "'-?[0-9]{1,18}'"
_NONE = "value = 'null'"  # a None (JSON's null, its text 'null'): NULL in filters and sorts


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """The rows of ``params`` and ``metric_latest``: while they stay the same, the names
    read from them are remembered (kept by DuckDB, the counts cost next to nothing; one
    query for every cache of a listing)."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM params), (SELECT count(*) FROM metric_latest)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _keys(
    path: str, con: duckdb.DuckDBPyConnection, counts: tuple[int, int]
) -> tuple[list[tuple[str, bool]], list[str]]:
    """Every parameter name (with whether all its values are numbers) and metric name.

    Remembered per file while the row ``counts`` stay the same: at 100,000 runs the
    two scans cost ~100 ms."""
    cached = _keys_cache.get(path)
    if cached is not None and cached[0] == counts:
        return cached[1], cached[2]
    param_kinds = con.execute(  # (a None is no number, nor text: NULL in a number column)
        f"SELECT key, bool_and(value_num IS NOT NULL OR {_NONE}) FROM params GROUP BY 1 ORDER BY 1"
    ).fetchall()
    metric_keys = [
        r[0] for r in con.execute("SELECT DISTINCT key FROM metric_latest ORDER BY key").fetchall()
    ]
    kinds = [(k, bool(n)) for k, n in param_kinds]
    _keys_cache[path] = (counts, kinds, metric_keys)
    return kinds, metric_keys


def _integer_params(path: str, con: duckdb.DuckDBPyConnection, count: int) -> set[str]:
    """The parameters whose every value is a whole number as written (``3``, not ``3.0``).

    Only ``nbtrack.runs()`` asks (its columns are nullable integers): the pattern test
    triples the scan of ``_keys`` (~275 vs ~90 ms over a million values), which a
    listing should not pay after every new run. Remembered while the ``count`` of
    ``params`` rows stays."""
    cached = _integers_cache.get(path)
    if cached is not None and cached[0] == count:
        return cached[1]
    rows = con.execute(
        "SELECT key FROM params GROUP BY key "
        f"HAVING bool_and(regexp_full_match(value, {_INTEGER_JSON}))"
    ).fetchall()
    found = {r[0] for r in rows}
    _integers_cache[path] = (count, found)
    return found


def _wide_sql(
    param_kinds: list[tuple[str, bool]],
    metric_keys: list[str],
    integers: set[str] | frozenset[str] = frozenset(),
    leaves: list[nested.Leaf] | None = None,
) -> tuple[str, list[str]]:
    """A query with one row per run and one column per param and metric.

    Numeric parameters are DOUBLE columns (BIGINT for those in ``integers``), others
    text; each column is there as ``"params.lr"`` and, where the bare name is free, as
    ``lr`` too, so a ``--where`` can say ``lr > 0.01 and acc > 0.9``.
    """
    taken = set(RUN_COLUMNS) | {
        "duration",
        "params_text",
        "spool_offset",
        "points_offset",
        "updated_at",
    }
    bare: dict[str, int] = {}
    for k, _ in param_kinds:
        bare[k] = bare.get(k, 0) + 1
    for k in metric_keys:
        bare[k] = bare.get(k, 0) + 1
    leaves = leaves or []

    def lit(s: str) -> str:
        return "'" + s.replace("'", "''") + "'"

    p_cols, m_cols, aliases = [], [], []
    names = [c for c in RUN_COLUMNS if c not in ("source", "git_diff")] + ["duration"]
    names += ["params." + k for k, _ in param_kinds] + ["metrics." + k for k in metric_keys]
    for k, numeric in param_kinds:
        col = "value_num" if numeric else f"CASE WHEN NOT {_NONE} THEN value_text END"
        if k in integers:
            col = "TRY_CAST(value AS BIGINT)"
        p_cols.append(f"max({col}) FILTER (WHERE key = {lit(k)}) AS {quote_ident('params.' + k)}")
        if bare[k] == 1 and k not in taken:
            aliases.append(f"{quote_ident('params.' + k)} AS {quote_ident(k)}")
            names.append(k)
    for leaf in leaves:  # a dict parameter's values: params.cfg.lr (nested.py)
        col = quote_ident("params." + leaf.name)
        p_cols.append(f"max({leaf.value_sql()}) FILTER (WHERE key = {lit(leaf.param)}) AS {col}")
        names.append("params." + leaf.name)
        if leaf.name not in bare and leaf.name not in taken:
            aliases.append(f"{col} AS {quote_ident(leaf.name)}")
            names.append(leaf.name)
    for k in metric_keys:
        m_cols.append(f"max(value) FILTER (WHERE key = {lit(k)}) AS {quote_ident('metrics.' + k)}")
        if bare[k] == 1 and k not in taken:
            aliases.append(f"{quote_ident('metrics.' + k)} AS {quote_ident(k)}")
            names.append(k)
    p_sel = ", ".join(
        ["run_id", *p_cols, "string_agg(key || '=' || value_text, ' ') AS params_text"]
    )
    m_sel = ", ".join(["run_id", *m_cols])
    alias_sel = (", " + ", ".join(aliases)) if aliases else ""
    sql = f"""
        WITH p AS (SELECT {p_sel} FROM params GROUP BY run_id),
             m AS (SELECT {m_sel} FROM metric_latest GROUP BY run_id),
             wide0 AS (
                SELECT r.* EXCLUDE (spool_offset, points_offset, updated_at, git_diff, source),
                       epoch(r.ended_at) - epoch(r.started_at) AS duration,
                       p.* EXCLUDE (run_id), m.* EXCLUDE (run_id)
                FROM runs r LEFT JOIN p USING (run_id) LEFT JOIN m USING (run_id))
        SELECT *{alias_sel} FROM wide0
    """
    return sql, names


def _filters(
    q: RunQuery, where: str | None = None, run_id_col: str = "run_id"
) -> tuple[str, list[Any]]:
    """The WHERE of a run query; ``where`` is the filter as ``filters.compile_where`` wrote it;
    ``run_id_col`` names the run's id where a join makes ``run_id`` ambiguous."""
    conds, args = ["TRUE"], []
    if q.kind:
        conds.append("kind = ?")
        args.append(q.kind)
    if q.parent_id:
        conds.append("parent_id = ?")
        args.append(q.parent_id)
    if q.sweep:
        # Notebook runs carry the sweep's tag; cell runs name their notebook run.
        conds.append(
            "(parent_id IN (SELECT t.run_id FROM tags t WHERE t.key = 'sweep' AND t.value = ?) "
            "OR (kind = 'notebook' AND list_contains("
            "(SELECT list(t.run_id) FROM tags t WHERE t.key = 'sweep' AND t.value = ?), "
            f"{run_id_col}))"
            ")"
        )
        args += [q.sweep, q.sweep]
    if q.status:
        conds.append("status = ?")
        args.append(q.status)
    if q.notebook_path:
        conds.append("notebook_path = ?")
        args.append(q.notebook_path)
    if q.text:
        conds.append(
            "concat_ws(' ', run_id, name, notebook_path, cell_id, status, params_text) ILIKE ?"
        )
        args.append("%" + q.text.replace("\\", "\\\\").replace("%", "\\%") + "%")
    if where:
        conds.append(where)
    return " AND ".join(conds), args


def _sort_target(sort: str, params: list[str], metrics: list[str]) -> tuple[str, str]:
    """``("base" | "param" | "metric", name)`` for a sort column a user named."""
    if sort in SORTABLE:
        return "base", sort
    if sort.startswith("params.") and sort[7:] in params:
        return "param", sort[7:]
    if sort.startswith("metrics.") and sort[8:] in metrics:
        return "metric", sort[8:]
    if sort in params and sort not in metrics:
        return "param", sort
    if sort in metrics and sort not in params:
        return "metric", sort
    if sort in metrics:
        raise QueryError(f"cannot sort by {sort!r}: {filters.both_param_and_metric(sort)}")
    raise QueryError(
        f"cannot sort by {sort!r}: use one of {', '.join(sorted(SORTABLE))}, "
        "params.NAME or metrics.NAME"
    )


def _sorts_by_own_column(sort: str, params: list[str], metrics: list[str]) -> bool:
    """Whether ``sort`` names a run column, a parameter or a metric (not a leaf of a
    dict parameter, a column of the wide table only)."""
    try:
        _sort_target(sort, params, metrics)
    except QueryError:
        return False
    return True


def _order(q: RunQuery, params: list[str], metrics: list[str]) -> str:
    kind, name = _sort_target(q.sort, params, metrics)
    if kind == "base":
        col = name
    elif kind == "param":
        col = quote_ident("params." + name)
    else:
        col = _nan_last(quote_ident("metrics." + name))
    direction = "DESC" if q.descending else "ASC"
    return f"{col} {direction} NULLS LAST, started_at DESC, run_id"


def _page_narrow(
    con: duckdb.DuckDBPyConnection,
    q: RunQuery,
    numeric_params: dict[str, bool],
    metrics: list[str],
) -> tuple[list[str], int]:
    """A page without filters on params or metrics: no pivot of every run.

    Sorting 10,000 runs by one metric joins that metric alone (a few ms) where
    the wide view would pivot every parameter and metric of every run first.
    """
    cond, args = _filters(q, run_id_col="r.run_id")
    kind, name = _sort_target(q.sort, list(numeric_params), metrics)
    join = ""
    join_args: list[Any] = []
    if kind == "base":
        col = "epoch(r.ended_at) - epoch(r.started_at)" if name == "duration" else f"r.{name}"
    elif kind == "param":
        join = "LEFT JOIN params s ON s.run_id = r.run_id AND s.key = ?"
        col = "s.value_num" if numeric_params[name] else "s.value_text"
        join_args = [name]
    else:
        join = "LEFT JOIN metric_latest s ON s.run_id = r.run_id AND s.key = ?"
        col = _nan_last("s.value")
        join_args = [name]
    direction = "DESC" if q.descending else "ASC"
    page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
    rows = con.execute(
        f"SELECT r.run_id FROM runs r {join} WHERE {cond} "
        f"ORDER BY {col} {direction} NULLS LAST, r.started_at DESC, r.run_id {page}",
        [*join_args, *args],
    ).fetchall()
    total = con.execute(f"SELECT count(*) FROM runs r WHERE {cond}", args).fetchone()
    return [r[0] for r in rows], int(total[0]) if total else 0


def page_ids(
    path: str, con: duckdb.DuckDBPyConnection, q: RunQuery, strict: bool = False
) -> tuple[list[str], int, list[str], list[str]]:
    """The ids of one page of runs matching ``q``, the total, the param and metric keys."""
    counts = _counts(con)
    param_kinds, metrics = _keys(path, con, counts)
    params = [k for k, _ in param_kinds]
    if q.where is None and q.text is None and _sorts_by_own_column(q.sort, params, metrics):
        ids, total = _page_narrow(con, q, dict(param_kinds), metrics)
        return ids, total, params, metrics
    leaves = nested.leaves(path, con, set(params), counts[0])
    wide, names = _wide_sql(param_kinds, metrics, leaves=leaves)
    where = filters.compile_where(q.where, names, strict=strict) if q.where else None
    cond, args = _filters(q, where)
    order = _order(q, params + [leaf.name for leaf in leaves], metrics)
    page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
    sql = (
        f"WITH wide AS ({wide}) SELECT run_id, count(*) OVER () FROM wide "
        f"WHERE {cond} ORDER BY {order} {page}"
    )
    rows = _run_filter(con, sql, args, q.where).fetchall()
    if rows:
        total = int(rows[0][1])
    else:
        count = f"WITH wide AS ({wide}) SELECT count(*) FROM wide WHERE {cond}"
        total = int(_run_filter(con, count, args, q.where).fetchone()[0])  # type: ignore[index]
    return [r[0] for r in rows], total, params, metrics


def list_runs(
    path: str, con: duckdb.DuckDBPyConnection, q: RunQuery, *, strict: bool = False
) -> RunPage:
    """One page of runs matching ``q`` (full records), and the total count.

    ``strict``: the filter is held to the allow-list for filters from the network.
    """
    ids, total, params, metrics = page_ids(path, con, q, strict)
    runs = reads.load(con, ids, with_env=False)
    return RunPage(runs=runs, total=total, param_keys=params, metric_keys=metrics)


def runs_frame(path: str, con: duckdb.DuckDBPyConnection, q: RunQuery) -> Any:
    """The wide table (one row per run) as a pandas DataFrame."""
    counts = _counts(con)
    param_kinds, metrics = _keys(path, con, counts)
    params = [k for k, _ in param_kinds]
    integers = _integer_params(path, con, counts[0])
    leaves = nested.leaves(path, con, set(params), counts[0])
    wide, names = _wide_sql(param_kinds, metrics, integers, leaves)
    where = filters.compile_where(q.where, names, strict=False) if q.where else None
    cond, args = _filters(q, where)
    order = _order(q, params + [leaf.name for leaf in leaves], metrics)
    page = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
    keep = [
        "run_id", "name", "status", "kind", "started_at", "ended_at", "duration",
        "notebook_path", "cell_id", "execution_count", "parent_id", "rerun_of", "rerun_verdict", "error",
        *(quote_ident("params." + k) for k in params),
        *(quote_ident("params." + leaf.name) for leaf in leaves),
        *(quote_ident("metrics." + k) for k in metrics),
    ]  # fmt: skip
    sql = (
        f"WITH wide AS ({wide}) SELECT {', '.join(keep)} FROM wide "
        f"WHERE {cond} ORDER BY {order} {page}"
    )
    frame = _run_filter(con, sql, args, q.where).df()
    whole = sorted(integers & set(params)) + [leaf.name for leaf in leaves if leaf.kind == "int"]
    for k in whole:  # nullable whether or not a run lacks it
        frame["params." + k] = frame["params." + k].astype("Int64")
    return frame


def _run_filter(
    con: duckdb.DuckDBPyConnection, sql: str, args: list[Any], where: str | None
) -> duckdb.DuckDBPyConnection:
    try:
        return con.execute(sql, args)
    except duckdb.InterruptException:
        raise  # the time limit's: time_limit says so
    except duckdb.Error as exc:
        if is_damage(exc):
            raise  # the connection says the file is damaged, in one line
        raise QueryError(f"bad filter {where!r}: {filters.explain(_first_line(exc))}") from exc


@contextmanager
def time_limit(con: duckdb.DuckDBPyConnection, seconds: float | None = None) -> Iterator[None]:
    """Interrupt what ``con`` runs once ``seconds`` (default ``$NBTRACK_QUERY_TIMEOUT``,
    else 5) have passed; the interrupted query becomes ``QueryTimeoutError``.

    A filter can be made expensive; it must never hold the store for long.
    """
    if seconds is None:
        seconds = settings.query_timeout()
    guard = threading.Lock()
    running = [True]

    def interrupt() -> None:
        with guard:
            if running[0]:
                con.interrupt()

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        raise QueryTimeoutError(
            f"the query ran longer than {seconds:g} s and was stopped: make the filter "
            f"simpler ({settings.QUERY_TIMEOUT.name} sets the limit)"
        ) from None
    finally:
        with guard:
            running[0] = False
        timer.cancel()


def run_sql(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a user's query as written."""
    try:
        if (cur := con.execute(query)) is None:  # only ";" or comments: nothing ran
            raise QueryError("the query holds no SQL statement: write one, e.g. SELECT * FROM runs")
        cols = [d[0] for d in cur.description] if cur.description else []
        rows = cur.fetchall() if cur.description else []
    except duckdb.Error as exc:
        if is_damage(exc):
            raise  # the connection says the file is damaged, in one line
        raise QueryError(f"SQL error: {_first_line(exc)}") from exc
    return cols, rows


def _nan_last(col: str) -> str:
    # DuckDB orders NaN above every number; a NaN metric belongs with the missing ones.
    return f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


READ_ONLY_STATEMENTS = frozenset(
    {
        duckdb.StatementType.SELECT,
        duckdb.StatementType.EXPLAIN,
        duckdb.StatementType.PRAGMA,
        duckdb.StatementType.CALL,
    }
)


def _statement_types(sql: str) -> list[duckdb.StatementType]:
    try:
        return [s.type for s in duckdb.extract_statements(sql)]
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {_first_line(exc)}") from exc


def check_read_only(sql: str) -> None:
    """Refuse statements that change something (the connection is read-only as well)."""
    for kind in _statement_types(sql):
        if kind not in READ_ONLY_STATEMENTS:
            raise QueryError(
                f"{kind.name} statements may change the store or write files, and the "
                "store is opened read-only: writing needs `nbtrack sql --write` "
                "(or `%track sql --write`), which backs the store up first"
            )


def check_writable(sql: str) -> None:
    """Even with write access, never install or load a DuckDB extension."""
    if duckdb.StatementType.LOAD in _statement_types(sql):
        raise QueryError("installing or loading DuckDB extensions is not allowed")


def check_single_select(sql: str) -> None:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {_first_line(exc)}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError("only a single SELECT statement is allowed here")
