"""Verbs that read runs: ls, show, diff, sql (also behind ``%track`` in a notebook)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..client import Client
from ..exceptions import UsageError
from ..models import WARNING_TAG_PREFIX, Run, RunQuery
from ..rundiff import RunDiff
from ..sysmetrics import is_system
from .columns import Column, default_order, select, value_columns
from .output import (
    detail_lines,
    emit_csv,
    emit_json,
    emit_json_text,
    emit_table,
    format_cell,
    input_text,
    metrics_text,
    param_cell,
    param_sides,
)
from .parser import Parser, at_least, open_client

BASE_COLUMNS = ["run", "name", "status", "started", "duration", "notebook", "cell"]


@dataclass
class Table:
    """What a verb shows: columns and rows, printable as text, JSON, CSV or a DataFrame."""

    columns: list[str]
    rows: list[list[Any]]

    def frame(self) -> Any:
        """A column of whole numbers and gaps is ``Int64`` (1 and <NA>, not 1.0 and NaN),
        as in ``nbtrack.runs()``."""
        import pandas as pd

        frame = pd.DataFrame(self.rows, columns=self.columns)
        for i, col in enumerate(self.columns):
            values = [r[i] for r in self.rows if r[i] is not None]
            if values and all(type(v) is int for v in values) and frame[col].dtype.kind == "f":
                frame[col] = frame[col].astype("Int64")
        return frame


# ---------------------------------------------------------------- building results
def runs_table(
    page_runs: Sequence[Run],
    param_keys: list[str],
    metric_keys: list[str],
    spec: str | None = None,
    machine: bool = False,
) -> Table:
    """The runs as a table: ``spec`` (``--columns``) chooses the columns, else the
    default order (columns.py); system metrics only when ``spec`` names them.
    ``machine`` (CSV): the run's fields, then every ``params.x`` and ``metrics.x``
    in name order, whatever the values."""
    base_rows = []
    for r in page_runs:
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else None
        duration = None if r.duration is None else round(r.duration, 3)
        cell = (
            r.cell_id[:8]
            if r.cell_id
            else (f"[{r.execution_count}]" if r.execution_count else None)
        )
        base_rows.append([r.short_id, r.name, r.status, started, duration, r.notebook_path, cell])
    base = [
        Column(name, name, tuple(row[i] for row in base_rows))
        for i, name in enumerate(BASE_COLUMNS)
    ]
    values = value_columns(param_keys, metric_keys, [(r.params, r.metrics) for r in page_runs])
    if spec is not None:  # "" (a "$COLS" never set) names no column: not the default
        chosen = select(spec, [*base, *values])
    elif machine:
        chosen = [
            *base,
            *(Column(c.qualified, c.qualified, c.values) for c in values if not c.leaf),
        ]
    else:
        # System metrics (system/cpu_percent, ...) are in every run: the table leaves
        # them to `show`, `diff`, --json and --columns rather than add a column each.
        shown = [c for c in values if not c.qualified.startswith("metrics.system/")]
        chosen = default_order(base, shown)
    if not machine:  # a text that reads as a list or a number, quoted (param_cell)
        chosen = [
            replace(c, values=tuple(v if v is None else param_cell(v) for v in c.values))
            if c.qualified.startswith("params.")
            else c
            for c in chosen
        ]
    rows = [list(row) for row in zip(*(c.values for c in chosen), strict=True)]
    return Table([c.header for c in chosen], rows)


def ls_query(args: argparse.Namespace, client: Client | None = None) -> RunQuery:
    """The query of ``ls``; ``--parent`` is resolved to a run or a sweep by ``client``."""
    parent = sweep = None
    kind = None if args.kind == "all" else args.kind
    if getattr(args, "parent", None):
        assert client is not None
        parent, sweep = client.resolve_parent(args.parent)
    return RunQuery(
        where=args.where,
        text=args.text,
        sort=args.sort,
        descending=not args.ascending,
        limit=args.limit,
        kind=kind,
        status=args.status,
        parent_id=parent,
        sweep=sweep,
    )


def do_ls(client: Client, args: argparse.Namespace) -> tuple[Table, Any]:
    page = client.list_runs(ls_query(args, client))
    spec = getattr(args, "columns", None)
    machine = bool(getattr(args, "csv", False))
    return runs_table(page.runs, page.param_keys, page.metric_keys, spec, machine), page


def show_table(run: Run) -> Table:
    rows: list[list[Any]] = [
        ["id", run.run_id],
        ["kind", run.kind],
        ["name", run.name],
        ["status", run.status],
        ["error", run.error],
        ["started", run.started_at.isoformat() if run.started_at else None],
        ["duration (s)", run.duration],
        ["parent", run.parent_id],
        ["rerun of", run.rerun_of],
        ["notebook", run.notebook_path],
        ["cell id", run.cell_id],
        ["execution count", run.execution_count],
        ["code matches saved notebook", run.code_matches_notebook],
        ["git commit", run.git_commit],
        ["git dirty", run.git_dirty],
    ]
    # What `rerun` uses and says, shown only when recorded (runs older than schema 7 lack it).
    optional = [
        ["rerun verdict", run.rerun_verdict],
        ["kernel", run.kernel_name],
        ["interpreter", run.executable],
        ["working folder", run.cwd],
        ["session code", run.code_hash],
    ]
    rows += [row for row in optional if row[1] is not None]
    if run.environment:
        rows.append(["python", run.environment.python])
        rows.append(["platform", run.environment.platform])
        rows.append(["packages", len(run.environment.packages)])
    # Beside each value: where it came from (papermill, default, upstream...), if stale.
    stale = {i.name: f"stale: {i.reason}" for i in run.named_inputs if i.stale}
    for k, v in run.params.items():
        notes = "; ".join(n for n in (run.param_sources.get(k), stale.get(k)) if n)
        rows.append([f"param {k}", f"{param_cell(v)} ({notes})" if notes else param_cell(v)])
    rows += [[f"metric {k}", v] for k, v in run.metrics.items()]
    rows += [
        [f"{d.role} {d.path}", f"{d.hash} {d.size} bytes{'' if d.cached else ' (not cached)'}"]
        for d in run.data
    ]
    rows += [
        [f"read {i.name}", input_text(i)] for i in run.named_inputs if i.name not in run.params
    ]
    rows += [[f"tag {k}", v] for k, v in run.tags.items() if not k.startswith(WARNING_TAG_PREFIX)]
    rows += [["warning", w] for w in run.warnings]
    return Table(["field", "value"], [r for r in rows if r[1] is not None])


def diff_table(d: RunDiff) -> Table:
    rows: list[list[Any]] = []
    for c in d.params:
        rows.append(["param", c.key, c.kind, *param_sides(c), c.delta])
        if c.leaves() != [c]:  # a dict: which of its keys changed, under it
            rows += [
                ["", leaf.key, leaf.kind, *param_sides(leaf), leaf.delta] for leaf in c.leaves()
            ]
    for c in d.metrics:
        if is_system(c.key) and not d.include_same:
            continue  # CPU and memory differ between any two runs: with --all
        rows.append(
            [
                "system" if is_system(c.key) else "metric",
                c.key,
                c.kind,
                c.a,
                c.b,
                c.delta,
            ]
        )
    for dc in d.data:
        a = f"{dc.a.hash} ({dc.a.size} B)" if dc.a else None
        b = f"{dc.b.hash} ({dc.b.size} B)" if dc.b else None
        rows.append([dc.role, dc.path, dc.label(), a, b, dc.size_delta])
        detail = dc.detail or {}
        for line in detail_lines(detail):
            rows.append(["", "", "", line, None, None])
    for ic in d.inputs:
        a = input_text(ic.a) if ic.a else None
        b = input_text(ic.b) if ic.b else None
        rows.append(["read", ic.name, ic.kind, a, b, None])
    for c in d.environment:
        rows.append(["env", c.key, c.kind, c.a, c.b, None])
    for c in d.outcome:
        rows.append(["outcome", c.key, c.kind, c.a, c.b, None])
    return Table(["section", "name", "change", "a", "b", "delta"], rows)


# ---------------------------------------------------------------- the CLI verbs
def _print(table: Table, args: argparse.Namespace, obj: Any = None, hint: str = "") -> None:
    if getattr(args, "json", False):
        emit_json(
            obj
            if obj is not None
            else [dict(zip(table.columns, r, strict=True)) for r in table.rows]
        )
    elif getattr(args, "csv", False):
        emit_csv(table.columns, table.rows)
    else:
        emit_table(table.columns, table.rows, hint=hint)


def cmd_ls(args: argparse.Namespace) -> int:
    if args.json:
        # Built by DuckDB: 10,000 runs in a fraction of a second (docs/design.md).
        client = open_client(args)
        emit_json_text(client.list_runs_json(ls_query(args, client)))
        return 0
    table, page = do_ls(open_client(args), args)
    _print(table, args, hint="; choose with --columns")
    if not args.csv and page.total > len(page.runs):
        sys.stderr.write(f"({len(page.runs)} of {page.total} runs; --limit to see more)\n")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    client = open_client(args)
    run = client.get_run(args.run)
    if args.json:
        emit_json(run.to_dict())
        return 0
    emit_table(["field", "value"], show_table(run).rows, max_width=100)
    if run.source:
        sys.stdout.write("\ncode:\n" + run.source.rstrip() + "\n")
    cells = client.children(run.run_id) if run.kind == "notebook" else []
    if cells:  # a notebook run's results are its cell runs' (a sweep table prints its id)
        sys.stdout.write(f"\ncell runs (nbtrack ls --parent {run.run_id[:8]}):\n")
        rows = [
            [c.run_id[:8], c.name, c.status, metrics_text(c.metrics)]
            for c in sorted(cells, key=lambda c: c.started_at.timestamp() if c.started_at else 0.0)
        ]
        emit_table(["run", "name", "status", "metrics"], rows, max_width=100)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    d = open_client(args).diff(args.a, args.b, all=args.all)
    if args.json:
        emit_json(d.to_dict())
        return 0
    sys.stdout.write(f"diff {d.a[:8]} → {d.b[:8]}\n")
    table = diff_table(d)
    if table.rows:
        emit_table(table.columns, table.rows, max_width=60)
    if d.code:
        sys.stdout.write("\ncode:\n" + d.code)
    system = sum(is_system(c.key) for c in d.metrics)
    if system and not d.include_same:
        sys.stdout.write(f"({system} system metrics (CPU, memory) differ too: --all shows them)\n")
    if not d:
        sys.stdout.write("no differences\n")
    return 0


def run_sql(client: Client, args: argparse.Namespace) -> tuple[list[str], list[Any]]:
    """``sql``: read-only, or with ``--write`` after a backup (whose path goes to stderr)."""
    query = " ".join(args.query)
    if not args.write:
        return client.sql(query)
    cols, rows, backup = client.sql_write(query)
    sys.stderr.write(f"nbtrack: backed up the store to {backup} before writing\n")
    return cols, rows


def cmd_sql(args: argparse.Namespace) -> int:
    cols, rows = run_sql(open_client(args), args)
    if args.json:
        emit_json([dict(zip(cols, r, strict=True)) for r in rows])
    elif args.csv:
        emit_csv(cols, rows)
    else:
        emit_table(cols, rows, max_width=60)
    return 0


def _add_format(p: argparse.ArgumentParser, csv: bool = False) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON")
    if csv:
        p.add_argument("--csv", action="store_true", help="CSV")


def register(sub: Any) -> None:
    p = sub.add_parser("ls", help="list runs, newest first")
    p.add_argument(
        "--where",
        metavar="COND",
        help='SQL condition over params/metrics, e.g. "lr < 0.1 and acc > 0.9"',
    )
    p.add_argument(
        "--text", metavar="TEXT", help="only runs whose id, name, notebook or params contain TEXT"
    )
    p.add_argument(
        "--sort",
        default="started_at",
        metavar="COLUMN",
        help="started_at, duration, name, status, params.NAME, metrics.NAME",
    )
    p.add_argument("--ascending", action="store_true", help="smallest first")
    p.add_argument(
        "--limit", type=at_least(0), default=50, help="at most this many runs (default 50)"
    )
    p.add_argument(
        "--kind",
        choices=["cell", "notebook", "all"],
        default="cell",
        help="cell runs (default), notebook runs, or all",
    )
    p.add_argument("--status", choices=["running", "finished", "failed", "crashed"])
    p.add_argument(
        "--parent",
        metavar="ID",
        help="only the runs under ID: the cell runs of a notebook run, or those of a sweep "
        "(its id, as `nbtrack sweep` prints it)",
    )
    p.add_argument(
        "--columns",
        metavar="LIST",
        help="columns to show, in order: names or globs, comma-separated "
        "(run,name,params.*,metrics.acc)",
    )
    _add_format(p, csv=True)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", help="everything recorded about one run")
    p.add_argument("run", help="run id, unique prefix, or 'last'")
    _add_format(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", help="what differs between two runs")
    p.add_argument("a", help="run id, unique prefix, or 'last'")
    p.add_argument("b", help="run id, unique prefix, or 'last'")
    p.add_argument("--all", action="store_true", help="show what is the same too")
    _add_format(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("sql", help="run a read-only SQL query on the store (see docs/schema.md)")
    p.add_argument("query", nargs="+", help="the query")
    p.add_argument(
        "--write",
        action="store_true",
        help="allow statements that change the store (a backup is made first)",
    )
    _add_format(p, csv=True)
    p.set_defaults(func=cmd_sql)


# ---------------------------------------------------------------- %track in a notebook
def notebook_verb(words: list[str], start: str | None = None) -> Any:
    """``%track VERB ...``: the CLI's parser, results as objects a notebook renders."""
    if not words:
        raise UsageError(
            "usage: %track ls | show RUN | diff A B | sql QUERY | check EXPR | drift PATH "
            "| autolog [off] | models ..."
        )
    from . import monitoring

    parser = Parser(prog="%track")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    register(sub)
    monitoring.register(sub)
    args = parser.parse_args(words)
    client = Client.open(os.path.dirname(start) if start else None)
    if args.command in ("check", "drift"):
        return monitoring.notebook_result(client, args)
    if args.command == "ls":
        return do_ls(client, args)[0].frame()
    if args.command == "show":
        return RunView(client.get_run(args.run))
    if args.command == "diff":
        return DiffView(client.diff(args.a, args.b, all=args.all))
    cols, rows = run_sql(client, args)
    return Table(cols, [list(r) for r in rows]).frame()


class RunView:
    """A run as a notebook shows it (HTML table, text elsewhere)."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def _repr_html_(self) -> str:
        html = show_table(self.run).frame().to_html(index=False)
        if self.run.source:
            import html as h

            html += f"<pre>{h.escape(self.run.source)}</pre>"
        return html

    def __repr__(self) -> str:
        rows = show_table(self.run).rows
        return "\n".join(f"{k}: {format_cell(v)}" for k, v in rows)


class DiffView:
    """A diff as a notebook shows it."""

    def __init__(self, diff: RunDiff) -> None:
        self.diff = diff

    def _repr_html_(self) -> str:
        import html as h

        head = f"<b>diff {self.diff.a[:8]} → {self.diff.b[:8]}</b>"
        if not self.diff:
            return head + "<p>no differences</p>"
        body = diff_table(self.diff).frame().to_html(index=False, na_rep="")
        if self.diff.code:
            body += f"<pre>{h.escape(self.diff.code)}</pre>"
        return head + body

    def __repr__(self) -> str:
        t = diff_table(self.diff)
        lines = [f"diff {self.diff.a[:8]} → {self.diff.b[:8]}"]
        lines += ["  ".join(format_cell(v) for v in row) for row in t.rows]
        if self.diff.code:
            lines.append(self.diff.code)
        if not self.diff:
            lines.append("no differences")
        return "\n".join(lines)
