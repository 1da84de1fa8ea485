"""The names a cell hands to calls as they are, outside loops (``tweak(opts, 0.9)``).

A function given a dict or a config object may change it (``d["lr"] = lr``), and the
cell then goes on with what it left: such a parameter the cell read is recorded as the
cell left it, as one it changes itself (``opts["lr"] = 0.9``). Only bare names count
(``f(opts)``, ``f(cfg=opts)``; ``f(**opts)`` hands over a copy), only in the cell's own
top-level code (a function or lambda it defines runs later; a comprehension's names are
its own), and not in a loop: a container a loop hands on (``record(history, loss)``)
holds what the loop left, as ``history.append(loss)`` does (dataflow.py).
"""

from __future__ import annotations

import ast

from .astwalk import kids

_LATER = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_OWN_SCOPE = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def passed_names(tree: ast.Module) -> frozenset[str]:
    """Names passed by name to a call in the cell's top-level code, outside loops."""
    out: set[str] = set()
    in_loops: set[str] = set()
    stack: list[tuple[ast.AST, bool]] = [(n, False) for n in tree.body]
    while stack:
        node, looped = stack.pop()
        if isinstance(node, (*_LATER, *_OWN_SCOPE)):
            continue
        if isinstance(node, ast.Call):
            args = [*node.args, *(k.value for k in node.keywords if k.arg is not None)]
            names = {a.id for a in args if isinstance(a, ast.Name)}
            (in_loops if looped else out).update(names)
        looped = looped or isinstance(node, _LOOPS)
        stack.extend((k, looped) for k in kids(node))
    return frozenset(out - in_loops)
