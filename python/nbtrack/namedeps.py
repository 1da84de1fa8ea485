"""Which names each name a cell binds was made from, statement by statement.

A cell that makes ``raw`` in one statement and ``train`` from ``raw`` and ``frac`` in
another made ``raw`` without ``frac``: when ``frac`` changes later, ``train`` is stale,
``raw`` is not. The whole cell's reads would say both are (lineage.py's staleness was
per cell). Each top-level statement's loads are what the names it binds (or changes
through ``x[...] = ``/``x.a = ``) were made from, through the names the cell made
before it, transitively; a function or class the statement defines is made from the
names its body reads.

Static and per top-level statement: inside one ``for``/``if``/``with`` block every
name bound is made from everything the block reads.
"""

from __future__ import annotations

import ast
import functools

from .astwalk import kids, parsed
from .exprfacts import AT_CALLS, at_names, base_name

_OWN_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _names(stmt: ast.stmt) -> tuple[set[str], set[str], set[str]]:
    """``(names loaded, names bound, names changed in place)`` by one top-level statement;
    the locals of a function, class, lambda or comprehension in it are not the cell's,
    their free loads are."""
    loads: set[str] = set()
    binds: set[str] = set()
    changes: set[str] = set()
    own: set[str] = set()  # comprehension variables: theirs, not the namespace's
    stack: list[tuple[ast.AST, bool]] = [(stmt, True)]  # (node, in the cell's own scope)
    while stack:
        node, top = stack.pop()
        inner = top
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loads.add(node.id)
            elif top:
                binds.add(node.id)
        elif isinstance(node, (ast.Subscript, ast.Attribute)):
            if top and not isinstance(node.ctx, ast.Load):  # x[...] = v, x.a = v change x
                base = base_name(node)
                if base is not None:
                    changes.add(base)
        elif isinstance(node, ast.Call):
            f = node.func  # df.query("p > @limit") reads limit, as dataflow.py has it
            if isinstance(f, ast.Attribute) and f.attr in AT_CALLS:
                loads.update(at_names(node))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if top:
                binds.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler):
            if top and node.name:
                binds.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if top and not isinstance(node, ast.Lambda):
                binds.add(node.name)
            loads |= _free(node)  # (its defaults and decorators: the stack's, below)
            a = node.args
            outside = [*a.defaults, *a.kw_defaults, *getattr(node, "decorator_list", ())]
            stack.extend((child, False) for child in outside if child is not None)
            continue
        elif isinstance(node, ast.ClassDef):
            if top:
                binds.add(node.name)
            inner = False
        elif isinstance(node, _OWN_SCOPES):
            inner = False
            for gen in getattr(node, "generators", ()):
                own.update(n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name))
        stack.extend((child, inner) for child in kids(node))
    return loads - own, binds, changes


def _free(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """The names a function's body reads from outside it: not its parameters nor the
    names it binds (a ``global`` one excepted). The sixteenth trial's ``def make_opt(lr)``
    was made from the notebook's ``lr``, stale when it changed, though it never read it."""
    a = fn.args
    own = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x}
    loads: set[str] = set()
    declared: set[str] = set()
    body = fn.body if isinstance(fn.body, list) else [fn.body]
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else own).add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)  # (a nested function's or lambda's)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            own.update((x.asname or x.name).partition(".")[0] for x in node.names)
        elif isinstance(node, ast.Global):
            declared.update(node.names)
    return loads - (own - declared)


@functools.lru_cache(maxsize=256)
def made_from(source: str) -> dict[str, frozenset[str]] | None:
    """For each name the cell's top-level code binds or changes, the names it was made
    from: of the namespace as the cell found it, and those the cell made before it (``lr
    = 0.1; opt = make(lr)`` makes opt from lr: ``lr = 0.5`` in another cell then makes opt
    stale, which the seventh trial saw read with no word); None when it does not parse.
    The same dict is returned for the same source: read it, never change it."""
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError, RecursionError):
        return None
    made: dict[str, frozenset[str]] = {}
    for stmt in tree.body:
        loads, binds, changes = _names(stmt)
        came: set[str] = set()
        for n in loads:  # a name the cell made: itself (as the cell left it) and its sources
            came |= made.get(n, frozenset()) | {n}
        for n in binds:
            made[n] = frozenset(came)  # x = x + 1: came holds what x was made from
        for n in changes - binds:  # x["a"] = y: the object x was, and now y too
            made[n] = frozenset(came | made.get(n, frozenset({n})))
    return made
