"""``nbtrack models ...`` (and ``nbtrack register``): the registry verbs, a thin door.

Also behind ``%track models ...`` / ``%track register ...`` in a notebook.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..client import Client
from ..exceptions import UsageError
from ..registry.core import Registry
from ..registry.lineage import Lineage, ModelDiff
from ..registry.values import ModelVersion
from .output import emit_json, emit_table, format_cell, metrics_text
from .parser import Parser, open_client

CODE_LINES = 12  # lines of the producing cell's code shown by ``models show``


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _schema_text(schema: list[dict[str, Any]] | None) -> str:
    if not schema:
        return "-"
    parts = []
    for col in schema:
        if col.get("type") == "tensor":
            spec = col.get("tensor-spec", {})
            parts.append(f"tensor {spec.get('dtype')} {spec.get('shape')}")
        else:
            parts.append(f"{col.get('name', '')} {col.get('type')}".strip())
    return ", ".join(parts)


def lineage_lines(lin: Lineage) -> list[str]:
    """``models show``: a version's whole story on one screen."""
    v, run = lin.version, lin.run
    aliases = f"   aliases: {', '.join(v.aliases)}" if v.aliases else ""
    fmt = v.flavor_meta.get("format")
    lines = [
        f"model {v.name} version {v.version}  ({v.uri}){aliases}",
        f"  flavor      {v.flavor}{f' ({fmt})' if fmt else ''}   {_size(v.size)}   {v.hash}",
        f"  created     {v.created_at:%Y-%m-%d %H:%M:%S}"
        + ("   ARCHIVED" if v.archived else "")
        + (f"   source {v.source_path}" if v.source_path else ""),
    ]
    if v.description:
        lines.append(f"  description {v.description}")
    if v.tags:
        lines.append("  tags        " + " ".join(f"{k}={x}" for k, x in v.tags.items()))
    if v.signature:
        lines.append(f"  inputs      {_schema_text(v.signature.get('inputs'))}")
        lines.append(f"  outputs     {_schema_text(v.signature.get('outputs'))}")
    env = v.env
    lines.append(
        f"  environment python {env.get('python', '?')}; " + ", ".join(env.get("requirements", []))
    )
    if run is None:
        lines.append(f"  run         {v.run_id or '-'} (not in this store)")
    else:
        where = run.notebook_path or "-"
        cell = run.cell_id[:8] if run.cell_id else "-"
        count = f" [In {run.execution_count}]" if run.execution_count else ""
        git = (run.git_commit or "-")[:10] + (" (dirty)" if run.git_dirty else "")
        head = " ".join(p for p in (run.short_id, run.name, run.status) if p)
        lines.append(f"  run         {head} - notebook {where}, cell {cell}{count}, git {git}")
        if run.params:
            lines.append(
                "  params      " + " ".join(f"{k}={format_cell(x)}" for k, x in run.params.items())
            )
        if run.metrics:
            lines.append("  metrics     " + metrics_text(run.metrics))
        for d in run.inputs:
            lines.append(f"  data read   {d.path}  {d.hash}  {_size(d.size)}")
    for u in lin.upstream:
        pad = "  " * u.depth
        lines.append(
            f"  upstream  {pad}{u.path} <- run {u.run.short_id} {u.run.name or ''} "
            f"({u.run.notebook_path or '-'})".rstrip()
        )
    if run is not None and run.source:
        code = run.source.rstrip().splitlines()
        lines.append("  code:")
        lines += [f"    {line}" for line in code[:CODE_LINES]]
        if len(code) > CODE_LINES:
            lines.append(
                f"    ... ({len(code) - CODE_LINES} more lines: nbtrack show {run.short_id})"
            )
    for r in lin.readers:
        metrics = metrics_text(r.metrics)
        lines.append(
            f"  read by     run {r.short_id} {r.name or ''} ({r.notebook_path or '-'}) {metrics}".rstrip()
        )
    for m in lin.history:
        frm = "-" if m.from_version is None else m.from_version
        to = "removed" if m.to_version is None else m.to_version
        lines.append(
            f"  alias       {m.at:%Y-%m-%d %H:%M:%S} {m.alias}: {frm} -> {to} by {m.user}@{m.host}"
        )
    return lines


def diff_lines(d: ModelDiff) -> list[str]:
    lines = [f"models diff {d.a.name}/{d.a.version} -> {d.b.name}/{d.b.version}"]
    for what, a, b in d.changes:
        lines.append(f"  {what}: {format_cell(a)} -> {format_cell(b)}")
    if d.run_diff is not None and d.run_diff:
        from .runs import diff_table

        lines.append(f"  producing runs {d.run_diff.a[:8]} -> {d.run_diff.b[:8]}:")
        for row in diff_table(d.run_diff).rows:
            lines.append("    " + "  ".join(format_cell(c) for c in row).rstrip())
    if not d:
        lines.append("  no differences")
    return lines


def versions_rows(versions: list[ModelVersion]) -> list[list[Any]]:
    return [
        [
            v.version,
            v.flavor,
            ",".join(v.aliases),
            (v.run_id or "")[:8],
            _size(v.size),
            f"{v.created_at:%Y-%m-%d %H:%M:%S}" if v.created_at else None,
            "yes" if v.archived else "",
            v.description,
        ]
        for v in versions
    ]


VERSION_COLUMNS = [
    "version",
    "flavor",
    "aliases",
    "run",
    "size",
    "created",
    "archived",
    "description",
]
MODEL_COLUMNS = ["name", "versions", "latest", "flavor", "aliases", "updated", "description"]


def do(client: Client, args: argparse.Namespace) -> tuple[str, Any]:
    """Run one verb; returns ``(kind, result)`` for the CLI or a notebook to render."""
    reg = Registry(client)
    verb = args.verb
    if verb == "ls":
        if args.name:
            return "versions", reg.versions(args.name)
        return "models", reg.models()
    if verb == "show":
        return "lineage", reg.lineage(args.ref)
    if verb == "register":
        return "version", reg.register_file(args.run, args.path, args.name, flavor=args.flavor)
    if verb == "alias":
        return "move", reg.set_alias(args.name, args.version, args.alias)
    if verb == "rm-alias":
        return "move", reg.remove_alias(args.name, args.alias)
    if verb == "tag":
        tags = {}
        for item in args.tags:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"a tag is KEY=VALUE, not {item!r}")
            tags[key] = value
        return "object", reg.tag(args.ref, tags)
    if verb == "describe":
        return "object", reg.describe(args.ref, " ".join(args.text))
    if verb == "archive":
        return "version", reg.archive(args.ref, not args.undo)
    if verb == "diff":
        return "diff", reg.diff(args.a, args.b)
    if verb == "export":
        return "path", reg.export(args.ref, args.dest, args.format)
    raise UsageError(f"unknown models verb {verb!r}")


def cmd_models(args: argparse.Namespace) -> int:
    kind, result = do(open_client(args), args)
    if args.json:
        if isinstance(result, list):
            emit_json([r.to_dict() for r in result])
        elif kind == "path":
            emit_json({"path": str(result)})
        else:
            emit_json(result.to_dict())
        return 0
    out = sys.stdout
    if kind == "models":
        emit_table(
            MODEL_COLUMNS,
            [
                [m.name, m.versions, m.latest_version, m.latest_flavor,
                 ",".join(f"{a}={v}" for a, v in m.aliases.items()),
                 f"{m.updated_at:%Y-%m-%d %H:%M:%S}" if m.updated_at else None, m.description]
                for m in result
            ],
        )  # fmt: skip
    elif kind == "versions":
        emit_table(VERSION_COLUMNS, versions_rows(result))
    elif kind == "lineage":
        out.write("\n".join(lineage_lines(result)) + "\n")
    elif kind == "diff":
        out.write("\n".join(diff_lines(result)) + "\n")
    elif kind == "version":
        v = result
        state = " (archived)" if v.archived else ""
        out.write(f"{v.uri} ({v.flavor}, {_size(v.size)}, run {(v.run_id or '-')[:8]}){state}\n")
    elif kind == "move":
        to = "removed" if result.to_version is None else f"-> version {result.to_version}"
        frm = "" if result.from_version is None else f" (was version {result.from_version})"
        out.write(f"{result.name}@{result.alias} {to}{frm}\n")
    elif kind == "path":
        out.write(f"wrote {result}\n")
    else:
        out.write(f"{result.name}: updated\n")
    return 0


def _add_verbs(models: Any) -> None:
    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = models.add_parser(name, help=help)
        p.add_argument("--json", action="store_true", help="machine-readable JSON")
        p.set_defaults(func=cmd_models, verb=name)
        return p

    p = verb("ls", "registered models (or the versions of one)")
    p.add_argument("name", nargs="?", help="list this model's versions")
    p = verb("show", "a version with its lineage: run, data, upstream runs, readers, aliases")
    p.add_argument("ref", help="NAME, NAME/VERSION, NAME@ALIAS or models:/...")
    add_register(models, verb)
    p = verb("alias", "point an alias (champion, challenger...) at a version")
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("alias")
    p = verb("rm-alias", "remove an alias (the removal is kept in its history)")
    p.add_argument("name")
    p.add_argument("alias")
    p = verb("tag", "tag a version (NAME/VERSION, NAME@ALIAS) or a model (NAME)")
    p.add_argument("ref")
    p.add_argument("tags", nargs="+", metavar="KEY=VALUE")
    p = verb("describe", "describe a version or a model")
    p.add_argument("ref")
    p.add_argument("text", nargs="+")
    p = verb("archive", "archive a version (kept, but no longer the newest)")
    p.add_argument("ref")
    p.add_argument("--undo", action="store_true", help="unarchive")
    p = verb("diff", "two versions: run diff of their producing runs, signature and size")
    p.add_argument("a")
    p.add_argument("b")
    p = verb("export", "write a version in MLflow's model format")
    p.add_argument("ref")
    p.add_argument("dest", metavar="DIR")
    p.add_argument("--format", default="mlflow", choices=["mlflow"])


def add_register(sub: Any, verb: Any = None) -> None:
    if verb is None:
        p = sub.add_parser("register", help="make a model version from a file a run wrote")
        p.add_argument("--json", action="store_true", help="machine-readable JSON")
        p.set_defaults(func=cmd_models, verb="register")
    else:
        p = verb("register", "make a model version from a file a run wrote")
    p.add_argument("run", help="run id, unique prefix, or 'last'")
    p.add_argument("path", help="the file as the run recorded it, e.g. models/svc.joblib")
    p.add_argument("--name", required=True, help="the registered model's name")
    p.add_argument("--flavor", help="the flavor, when the file does not tell")


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="the model registry: versions, aliases, lineage, export")
    models = p.add_subparsers(dest="verb", metavar="VERB", parser_class=type(p))
    models.required = True
    _add_verbs(models)
    add_register(sub)


# ---------------------------------------------------------------- %track models in a notebook
class TextView:
    """Lines a notebook shows as preformatted text."""

    def __init__(self, lines: list[str], obj: Any) -> None:
        self.lines = lines
        self.obj = obj

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape("\n".join(self.lines)) + "</pre>"

    def __repr__(self) -> str:
        return "\n".join(self.lines)


def notebook_verb(words: list[str], start: str | None = None) -> Any:
    """``%track models VERB ...`` / ``%track register ...``: results a notebook renders."""
    parser = Parser(prog="%track")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    register(sub)
    args = parser.parse_args(words)
    kind, result = do(Client.open(os.path.dirname(start) if start else None), args)
    import pandas as pd

    if kind == "models":
        return pd.DataFrame([m.to_dict() for m in result])
    if kind == "versions":
        return pd.DataFrame(versions_rows(result), columns=VERSION_COLUMNS)
    if kind == "lineage":
        return TextView(lineage_lines(result), result)
    if kind == "diff":
        return TextView(diff_lines(result), result)
    return result
