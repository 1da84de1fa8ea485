"""Run filters (``where``): parsed by DuckDB, checked against an allow-list, re-rendered.

A filter is never pasted into SQL text. DuckDB's own parser (``json_serialize_sql``)
turns ``SELECT 1 WHERE <filter>`` into its parse tree; anything that changes the
statement around the condition (a ``)`` that closes it early, ``LIMIT``, ``UNION``,
a second statement) is refused, then the condition's tree is walked against an
allow-list and written back out by ``render``: identifiers quoted and literals
escaped here, every operation parenthesised. What the walk does not know is refused.

Two allow-lists: ``strict`` (filters that arrive over HTTP) names columns, literals,
comparisons, AND/OR/NOT, arithmetic, IN/BETWEEN/LIKE/IS NULL, CASE, CAST to plain
types and a short list of scalar functions; the local one (CLI, Python API) also
accepts any scalar function by name. Neither accepts a subquery, a table, a
parameter, a window or a lambda. Why DuckDB's parser and not sqlglot or a
hand-written one: docs/design.md.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Collection
from functools import lru_cache
from typing import Any

import duckdb

from ..duckdb_config import connect_duckdb
from ..exceptions import QueryError
from .tables import quote_ident

MAX_LENGTH = 4000  # characters in a filter
_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_DEPTH = 64  # nesting of its expression tree

COMPARISONS = {
    "COMPARE_EQUAL": "=",
    "COMPARE_NOTEQUAL": "<>",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
    "COMPARE_DISTINCT_FROM": "IS DISTINCT FROM",
    "COMPARE_NOT_DISTINCT_FROM": "IS NOT DISTINCT FROM",
}
BINARY_OPERATORS = {
    "+": "+", "-": "-", "*": "*", "/": "/", "//": "//", "%": "%", "^": "^", "||": "||",
    "~~": "LIKE", "!~~": "NOT LIKE", "~~*": "ILIKE", "!~~*": "NOT ILIKE",
}  # fmt: skip
UNARY_OPERATORS = {"-", "+"}
STRICT_FUNCTIONS = frozenset(
    {
        "abs", "ceil", "floor", "round", "sqrt", "ln", "log10", "exp", "greatest", "least",
        "isnan", "isinf", "lower", "upper", "length", "trim", "starts_with", "contains",
        "nullif", "epoch",
    }
)  # fmt: skip
CAST_TYPES = frozenset(
    {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP"}
)
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_INTEGER = re.compile(r"[0-9][0-9_]*\Z")
_NUMERIC = re.compile(r"(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?\Z")
_REFUSED = {
    "SUBQUERY": "a subquery",
    "STAR": "*",
    "WINDOW": "a window function",
    "PARAMETER": "a query parameter",
    "LAMBDA": "a lambda",
    "COLLATE": "COLLATE",
    "POSITIONAL_REFERENCE": "a positional reference",
}

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None
_parser_pid = 0
_frame: dict[str, Any] | None = None  # "SELECT 1 WHERE TRUE" less its WHERE


def _strip(node: Any) -> Any:
    """A parse tree without source positions (compared and walked without them)."""
    if isinstance(node, dict):
        return {
            k: _strip(v)
            for k, v in node.items()
            if k not in ("query_location", "query_location_length")
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@lru_cache(maxsize=512)
def _serialize(sql: str) -> str:
    # One in-memory connection per process, with no file access: parsing touches no data.
    global _parser, _parser_pid
    with _parser_lock:
        if _parser is None or _parser_pid != os.getpid():  # never use one across a fork
            _parser = connect_duckdb(config={"enable_external_access": False})
            _parser_pid = os.getpid()
        row = _parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    return str(row[0]) if row else "{}"


def parse(text: str) -> dict[str, Any]:
    """The parse tree of a filter's condition, or ``QueryError`` saying why not."""
    global _frame
    if len(text) > MAX_LENGTH:
        raise QueryError(f"a filter may be at most {MAX_LENGTH} characters long")
    if not text.isascii() and _SURROGATE.search(text):  # DuckDB's error, else
        raise QueryError(f"bad filter {text!r}: it is not valid Unicode text (a lone surrogate)")
    tree = json.loads(_serialize("SELECT 1 WHERE " + text))
    if tree.get("error"):
        message = str(tree.get("error_message", "cannot parse it"))
        if "Only SELECT statements" in message:  # a second statement after the condition
            message = "a filter is one condition, not statements"
        raise QueryError(f"bad filter {text!r}: {message}")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise QueryError(f"bad filter {text!r}: a filter is one condition, not statements")
    node = _strip(statements[0].get("node") or {})
    condition = node.pop("where_clause", None)
    if _frame is None:
        base = json.loads(_serialize("SELECT 1 WHERE TRUE"))["statements"][0]["node"]
        base = _strip(base)
        base.pop("where_clause", None)
        _frame = base
    if condition is None or node != _frame:
        raise QueryError(
            f"bad filter {text!r}: a filter is one condition (no LIMIT, ORDER BY, UNION "
            "or unbalanced parentheses)"
        )
    return dict(condition)


def compile_where(text: str, columns: Collection[str], *, strict: bool) -> str:
    """The filter as SQL written by us from its checked parse tree.

    ``columns``: the names a filter may use; ``strict``: the HTTP allow-list.
    """
    try:
        try:
            tree = parse(text)
        except QueryError:
            # A parameter named like an SQL keyword (order, group, desc): DuckDB's parser
            # refuses it bare, where the user wrote a name the runs hold.
            quoted = _quote_names(text, columns)
            if quoted == text:
                raise
            try:
                tree = parse(quoted)
            except QueryError as again:  # its error, of the filter as the user wrote it
                message = str(again).replace(repr(quoted), repr(text), 1)
                raise QueryError(message) from None
        return _Renderer(text, columns, strict).render(tree, 0)
    except RecursionError:
        raise QueryError(f"bad filter {text!r}: nested too deeply") from None


def explain(message: str) -> str:
    """DuckDB's error about a filter, with what to write instead where it is not plain."""
    if "Cannot compare values of type VARCHAR" in message:  # a sweep's 0.1 0.5 auto
        message += (
            " (a parameter that holds text in some runs, as 'auto' beside numbers, is a "
            "text column: compare it as a number with TRY_CAST(name AS DOUBLE), which is "
            "NULL for the text)"
        )
    return message


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z_][A-Za-z0-9_.]*|.", re.S)


def _quote_names(text: str, columns: Collection[str]) -> str:
    """``text`` with each bare word that names a column double-quoted (not a dotted name,
    a string, a quoted name or a call): ``order > 1`` → ``"order" > 1``."""
    names = {c.lower() for c in columns}
    names |= {c.split(".", 1)[1].lower() for c in columns if c.startswith(("params.", "metrics."))}
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        call = text[match.end() :].lstrip().startswith("(")
        if "." not in token and token.lower() in names and not call:
            token = f'"{token}"'
        out.append(token)
    return "".join(out)


def both_param_and_metric(name: str) -> str:
    """What to say of a bare ``name`` that is a parameter and a metric: which to write.

    >>> both_param_and_metric("test_acc")
    'test_acc is both a parameter and a metric: write params.test_acc or metrics.test_acc'
    """
    return f"{name} is both a parameter and a metric: write params.{name} or metrics.{name}"


class _Renderer:
    def __init__(self, text: str, columns: Collection[str], strict: bool) -> None:
        self.text = text
        self.columns = set(columns)
        self.folded: dict[str, list[str]] = {}
        for name in self.columns:
            self.folded.setdefault(name.lower(), []).append(name)
        self.strict = strict

    def refuse(self, what: str) -> QueryError:
        return QueryError(f"bad filter {self.text!r}: {what} is not allowed in a filter")

    def render(self, node: dict[str, Any], depth: int) -> str:
        if depth > MAX_DEPTH:
            raise QueryError(f"bad filter {self.text!r}: nested too deeply")
        cls = node.get("class")
        method = getattr(self, f"_{str(cls).lower()}", None)
        if method is None:
            raise self.refuse(_REFUSED.get(str(cls), f"{str(cls).lower()} ({node.get('type')})"))
        out: str = method(node, depth + 1)
        return out

    def _all(self, nodes: list[dict[str, Any]], depth: int) -> list[str]:
        return [self.render(n, depth) for n in nodes]

    def _column_ref(self, node: dict[str, Any], depth: int) -> str:
        # params.lr, cfg.lr and params.cfg.opt.m written without quotes: one name
        name = ".".join(str(p) for p in node.get("column_names", []))
        if name not in self.columns:
            matches = self.folded.get(name.lower(), [])
            for param in [] if matches else self.folded.get(f"params.{name.lower()}", []):
                if f"metrics.{param[7:]}" in self.columns:  # no bare name: it is both
                    detail = both_param_and_metric(param[7:])
                    raise QueryError(f"bad filter {self.text!r}: {detail}")
            if len(matches) != 1:
                raise QueryError(
                    f"bad filter {self.text!r}: unknown column {name!r} (a filter names run "
                    "columns such as status or duration, params.NAME, metrics.NAME, or a "
                    "parameter or metric by its bare name)"
                )
            name = matches[0]
        return quote_ident(name)

    def _constant(self, node: dict[str, Any], depth: int) -> str:
        literal = node.get("literal") or {}
        kind, text = literal.get("kind"), str(literal.get("text", ""))
        if kind == "NULL_LITERAL":
            return "NULL"
        if kind == "BOOLEAN" and text.lower() in ("true", "false"):
            return text.upper()
        if kind == "STRING":
            return "'" + text.replace("'", "''") + "'"
        number = text[1:] if text.startswith("-") else text
        if (kind == "INTEGER" and _INTEGER.match(number)) or (
            kind == "NUMERIC" and number and _NUMERIC.match(number)
        ):
            return f"({text})"
        raise self.refuse(f"the literal {text!r}")

    def _comparison(self, node: dict[str, Any], depth: int) -> str:
        op = COMPARISONS.get(str(node.get("type")))
        if op is None:
            raise self.refuse(str(node.get("type")))
        left, right = self.render(node["left"], depth), self.render(node["right"], depth)
        return f"({left} {op} {right})"

    def _conjunction(self, node: dict[str, Any], depth: int) -> str:
        joiner = {"CONJUNCTION_AND": " AND ", "CONJUNCTION_OR": " OR "}.get(str(node.get("type")))
        if joiner is None:
            raise self.refuse(str(node.get("type")))
        return "(" + joiner.join(self._all(node["children"], depth)) + ")"

    def _operator(self, node: dict[str, Any], depth: int) -> str:
        kind = node.get("type")
        args = self._all(node.get("children", []), depth)
        if kind == "OPERATOR_NOT" and len(args) == 1:
            return f"(NOT {args[0]})"
        if kind == "OPERATOR_IS_NULL" and len(args) == 1:
            return f"({args[0]} IS NULL)"
        if kind == "OPERATOR_IS_NOT_NULL" and len(args) == 1:
            return f"({args[0]} IS NOT NULL)"
        if kind in ("COMPARE_IN", "COMPARE_NOT_IN") and len(args) >= 2:
            neg = " NOT" if kind == "COMPARE_NOT_IN" else ""
            return f"({args[0]}{neg} IN ({', '.join(args[1:])}))"
        if kind == "OPERATOR_COALESCE" and args:
            return f"coalesce({', '.join(args)})"
        raise self.refuse(str(kind))

    def _between(self, node: dict[str, Any], depth: int) -> str:
        value, low, high = (self.render(node[k], depth) for k in ("input", "lower", "upper"))
        return f"({value} BETWEEN {low} AND {high})"

    def _function(self, node: dict[str, Any], depth: int) -> str:
        name = str(node.get("function_name", ""))
        plain = (
            node.get("filter") is None
            and not node.get("distinct")
            and not (node.get("order_bys") or {}).get("orders")
            and not node.get("schema")
            and not node.get("catalog")
            and not node.get("export_state")
            and all(not a.get("name") for a in node.get("arguments", []))
        )
        if not plain:
            raise self.refuse(f"this call of {name}")
        args = [self.render(a["expression"], depth) for a in node.get("arguments", [])]
        if node.get("is_operator"):
            if len(args) == 2 and name in BINARY_OPERATORS:
                return f"({args[0]} {BINARY_OPERATORS[name]} {args[1]})"
            if len(args) == 1 and name in UNARY_OPERATORS:
                return f"({name}{args[0]})"
            raise self.refuse(f"the operator {name}")
        if not _NAME.match(name) or (self.strict and name not in STRICT_FUNCTIONS):
            allowed = ", ".join(sorted(STRICT_FUNCTIONS))
            raise self.refuse(f"the function {name} (allowed: {allowed})")
        return f"{name}({', '.join(args)})"

    def _cast(self, node: dict[str, Any], depth: int) -> str:
        target = node.get("type_expr") or {}
        type_name = str(target.get("type_name", "")).upper()
        if type_name not in CAST_TYPES or target.get("children") or target.get("schema"):
            raise self.refuse(f"a cast to {type_name or 'this type'}")
        verb = "TRY_CAST" if node.get("try_cast") else "CAST"
        return f"{verb}({self.render(node['child'], depth)} AS {type_name})"

    def _case(self, node: dict[str, Any], depth: int) -> str:
        parts = ["CASE"]
        for check in node.get("case_checks", []):
            when = self.render(check["when_expr"], depth)
            then = self.render(check["then_expr"], depth)
            parts.append(f"WHEN {when} THEN {then}")
        parts.append(f"ELSE {self.render(node['else_expr'], depth)} END")
        return "(" + " ".join(parts) + ")"
