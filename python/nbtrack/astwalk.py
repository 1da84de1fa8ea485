"""Fast traversals of a cell's syntax tree, for its dataflow (dataflow.py), and the
tree itself, parsed once for all who read a cell (``parsed``).

``ast.iter_child_nodes`` and ``ast.walk`` look up every node's fields each time and
visit contexts and operators too; the dataflow of a 300-line cell must take under
2 ms, so the fields of each node type are looked up once and the rest is skipped.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "kind"})
_fields: dict[type, tuple[str, ...]] = {}
_fields_backwards: dict[type, tuple[str, ...]] = {}


@functools.lru_cache(maxsize=64)
def parsed(source: str) -> ast.Module:
    """``ast.parse(source)``, once per source: a tracked cell's dataflow, its literal
    parameters and what each name was made from all read the same tree (one parse of
    a 300-line cell is ~6 ms; it was done three times). Shared: read it, never change
    it. Raises what ``ast.parse`` raises (not remembered)."""
    return ast.parse(source)


def kids(node: ast.AST) -> list[Any]:
    """Child nodes in field order, without contexts and operators (``ast`` is slower)."""
    t = type(node)
    names = _fields.get(t)
    if names is None:
        names = _fields[t] = tuple(f for f in t._fields if f not in _SKIP_FIELDS)
    out: list[Any] = []
    for f in names:
        v = getattr(node, f, None)
        if type(v) is list:
            out.extend(x for x in v if isinstance(x, ast.AST))
        elif isinstance(v, ast.AST):
            out.append(v)
    return out


def fields_backwards(t: type[ast.AST]) -> tuple[str, ...]:
    """The fields of node type ``t`` that may hold nodes, last first: a stack-based
    traversal pushes them in this order to pop them in source order."""
    names = _fields_backwards.get(t)
    if names is None:
        names = _fields_backwards[t] = tuple(
            f for f in reversed(t._fields) if f not in _SKIP_FIELDS
        )
    return names


def walk(node: ast.AST) -> list[Any]:
    """Every node under ``node`` in source order (pre-order), cheaper than ``ast.walk``."""
    stack: list[Any] = [node]
    out: list[Any] = []
    pop, push, extend, keep = stack.pop, stack.append, stack.extend, out.append
    backwards = _fields_backwards
    while stack:
        n = pop()
        t = type(n)
        if t is ast.Name:
            keep(n)
            continue
        if t is ast.Constant or not isinstance(n, ast.AST):
            continue  # None keys of a dict, names of a global statement
        keep(n)
        if t is ast.Attribute:
            push(n.value)  # type: ignore[attr-defined]
            continue
        for f in backwards.get(t) or fields_backwards(t):  # last first: popped in source order
            v = getattr(n, f, None)
            if type(v) is list:
                extend(reversed(v))
            elif v is not None:
                push(v)
    return out


@functools.lru_cache(maxsize=64)
def surely_bound(source: str) -> frozenset[str]:
    """Names an assignment binds on every path through the cell's top-level code that
    reaches its end: one outside any ``if``/``try``/``match``/loop (a ``with`` body, a
    ``finally`` always runs). A cell that finished did assign them, whatever object they
    hold now (``acc = results["acc"]`` gives back the float the name held before)."""
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return frozenset()
    out: set[str] = set()
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Assign, ast.AugAssign)) or (
            isinstance(node, ast.AnnAssign) and node.value is not None
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                out.update(
                    n.id
                    for n in ast.walk(t)
                    if isinstance(n, ast.Name) and type(n.ctx) is ast.Store
                )
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            stack.extend(node.body)
        else:  # (a try's, a try-star's)
            stack.extend(getattr(node, "finalbody", ()))
    return frozenset(out)


def bound_before(source: str, name: str, line: int) -> bool:
    """Whether the cell may have bound ``name`` before it stopped at ``line``: a top-level
    statement before the one that raised binds it, or that one does and is a block (a
    loop's earlier turns). ``n = next(it)`` raising bound nothing, whatever ``n`` holds."""
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return True
    for node in tree.body:
        binds = any(
            isinstance(n, ast.Name) and type(n.ctx) is not ast.Load and n.id == name
            for n in ast.walk(node)
        )
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            simple = isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr))
            return binds and not simple
        if binds:
            return True
    return True  # (not a line of the cell: not known)
