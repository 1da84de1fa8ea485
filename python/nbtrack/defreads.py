"""Which of the function bodies a cell defines it may call, so which names they read count.

A cell that only defines ``def helper(a): return a * lr`` reads nothing: the body runs in a
later cell, which reads ``lr`` through the notebook's code (codeflow.py). The fifteenth
trial's definitions cell recorded ``lr`` as its parameter, and a stale ``lr`` as its input.
A body counts when the cell may run it: a lambda's or a decorated function's (a decorator
may call it), and those of the functions and classes the cell names outside their bodies
(``helper(2)``, ``df.apply(f)``, ``K()``), transitively through the bodies that count. A
cell that calls code from the namespace (``train()``, which may call the cell's
``loss_fn`` by name) or reads names unseen (``globals()``) counts them all.
"""

from __future__ import annotations

import ast

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def named_outside_bodies(tree: ast.Module) -> set[str]:
    """The names ``tree`` loads outside the bodies of the functions and classes it defines
    (their decorators, defaults and bases included)."""
    found: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        n = stack.pop()
        if isinstance(n, _DEFS):
            stack += [*n.decorator_list, n.args]
        elif isinstance(n, ast.ClassDef):
            stack += [*n.decorator_list, *n.bases, *n.keywords]
        else:
            if type(n) is ast.Name and type(n.ctx) is ast.Load:
                found.add(n.id)
            stack.extend(ast.iter_child_nodes(n))
    return found


def called_bodies(
    deferred: dict[str, set[str | None]], tree: ast.Module, calls_namespace: bool
) -> list[str]:
    """The names read by the bodies the cell may call, in the order first read.

    ``deferred`` maps each name a body reads to the bodies reading it: ``None`` for a
    lambda's or a decorated function's, else the top-level function or class defining it.
    """
    if calls_namespace or all(None in owners for owners in deferred.values()):
        return list(deferred)
    used = named_outside_bodies(tree)
    called: dict[str, None] = {}
    grew = True
    while grew:
        grew = False
        for name, owners in deferred.items():
            if name not in called and any(o is None or o in used for o in owners):
                called[name] = None
                used.add(name)
                grew = True
    return [n for n in deferred if n in called]
