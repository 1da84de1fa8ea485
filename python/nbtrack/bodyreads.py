"""The names a function or lambda body reads when it is called, in one pass over it.

A cell that defines ``def f(): return lr * scale`` reads ``lr`` and ``scale`` when it
calls ``f`` (dataflow.py counts them as read, unless the cell binds them itself). The
body's free names are those it loads and never binds locally (arguments, assignments,
imports, nested definitions, ``except ... as e``), and those it declares ``global`` or
``nonlocal``. A walk and a second loop over the nodes it found made a third of the
dataflow of a 300-line cell (issue 15): the nodes are classified as they are popped.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter

from .astwalk import fields_backwards
from .exprfacts import AT_CALLS, at_names

DYNAMIC_CALLS = frozenset({"globals", "locals", "vars", "exec", "eval", "__import__"})
_DEFINITIONS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})
# Fields that hold names or numbers, never nodes: not pushed only to be dropped.
_NO_NODES = frozenset(
    {"name", "asname", "arg", "attr", "module", "level", "conversion", "is_async"}
)
_getters: dict[type, Callable[[ast.AST], object]] = {}


@dataclass
class BodyReads:
    """``free``: names read when called, in source order. ``globals``: the names it
    declares ``global`` (it binds them in the module). ``dynamic``: it calls
    ``globals()``, ``exec`` and the like (names read unseen)."""

    free: list[str]
    globals: list[str]
    dynamic: bool


_BINDERS = frozenset(
    {ast.Global, ast.Nonlocal, *_DEFINITIONS, ast.Import, ast.ImportFrom, ast.ExceptHandler}
)


def _bound(n: ast.AST, fn: ast.AST) -> list[str]:
    """The names node ``n`` of ``fn``'s body binds in it (``fn`` binds its own outside)."""
    t = type(n)
    if t in _DEFINITIONS:
        return [n.name] if n is not fn else []  # type: ignore[attr-defined]
    if t is ast.Import or t is ast.ImportFrom:
        return [(a.asname or a.name).partition(".")[0] for a in n.names]  # type: ignore[attr-defined]
    if t is ast.ExceptHandler and n.name:  # type: ignore[attr-defined]
        return [n.name]  # type: ignore[attr-defined]
    return []


def _child_fields(t: type) -> list[str]:
    """The fields of node type ``t`` that may hold nodes, last first."""
    if t is ast.Global or t is ast.Nonlocal:
        return []  # names of a global statement
    return [f for f in fields_backwards(t) if f not in _NO_NODES]


def _getter(t: type) -> Callable[[ast.AST], object]:
    """The child fields of node type ``t``, last first, in one call (``getattr`` per
    field made half the time of the pass): a tuple, or the value of the only one."""
    names = _child_fields(t)
    get = attrgetter(*names) if names else lambda n: ()
    _getters[t] = get
    return get


def body_reads(fn: ast.AST) -> BodyReads:
    """What ``fn`` (a ``def`` or ``lambda``) reads from the module when called.

    >>> body_reads(ast.parse("def f(a):\\n    global n\\n    n = a * k").body[0]).free
    ['n', 'k']
    """
    local: set[str] = set()
    declared: set[str] = set()
    globals_: list[str] = []
    loads: dict[str, None] = {}
    dynamic = False
    name_t, attr_t, const_t, call_t, kw_t, arg_t, binop_t, sub_t, load_t = (
        ast.Name, ast.Attribute, ast.Constant, ast.Call, ast.keyword, ast.arg, ast.BinOp,
        ast.Subscript, ast.Load,
    )  # fmt: skip
    stack: list[object] = [fn]
    pop, push, extend, getters = stack.pop, stack.append, stack.extend, _getters
    while stack:  # children pushed last first: popped in source order
        n = pop()
        t = type(n)
        if t is name_t:
            if type(n.ctx) is load_t:  # type: ignore[attr-defined]
                loads[n.id] = None  # type: ignore[attr-defined]
            else:
                local.add(n.id)  # type: ignore[attr-defined]
        elif t is attr_t or t is kw_t:
            push(n.value)  # type: ignore[attr-defined]
        elif t is call_t:
            f = n.func  # type: ignore[attr-defined]
            if type(f) is name_t and f.id in DYNAMIC_CALLS:
                dynamic = True
            elif type(f) is attr_t and f.attr in AT_CALLS:
                loads.update(dict.fromkeys(at_names(n)))  # type: ignore[arg-type]
            extend(reversed(n.keywords))  # type: ignore[attr-defined]
            extend(reversed(n.args))  # type: ignore[attr-defined]
            push(f)
        elif t is const_t:
            continue
        elif t is arg_t:
            local.add(n.arg)  # type: ignore[attr-defined]
            if n.annotation is not None:  # type: ignore[attr-defined]
                push(n.annotation)  # type: ignore[attr-defined]
        elif t is binop_t:
            push(n.right)  # type: ignore[attr-defined]
            push(n.left)  # type: ignore[attr-defined]
        elif t is sub_t:
            push(n.slice)  # type: ignore[attr-defined]
            push(n.value)  # type: ignore[attr-defined]
        elif not isinstance(n, ast.AST):
            continue  # None keys of a dict, names of a global statement
        else:
            if t in _BINDERS:
                local.update(_bound(n, fn))
                if t is ast.Global or t is ast.Nonlocal:
                    declared.update(n.names)  # type: ignore[attr-defined]
                    if t is ast.Global:
                        globals_ += n.names  # type: ignore[attr-defined]
            try:
                children = (getters.get(t) or _getter(t))(n)
            except AttributeError:  # a node made by hand, without all its fields
                children = tuple(getattr(n, f, None) for f in _child_fields(t))
            if type(children) is not tuple:  # the one field of a node (Return: value)
                children = (children,)
            for v in children:
                if type(v) is list:
                    if v:  # (most lists of a function's arguments are empty)
                        extend(reversed(v))
                elif v is not None:
                    push(v)
    free = [name for name in loads if name in declared or name not in local]
    return BodyReads(free, globals_, dynamic)
