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


def handed(call: ast.Call) -> list[str]:
    """The bare names a call is given: ``f(opts)``, ``f(cfg=opts)``, not ``f(**opts)``.

    The dataflow walk (``dataflow._Walker``) asks at each call of the cell's top-level
    code, and keeps apart the calls inside loops: one pass over the cell, not two.

    >>> handed(ast.parse("f(a, 1, b=c, **d)").body[0].value)
    ['a', 'c']
    """
    names = []
    for a in call.args:  # (asked of every call of a cell: loops, not comprehensions)
        if type(a) is ast.Name:
            names.append(a.id)
    for k in call.keywords:
        if k.arg is not None and type(k.value) is ast.Name:
            names.append(k.value.id)
    return names
