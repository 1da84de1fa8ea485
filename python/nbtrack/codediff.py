"""What changed in the notebook code a cell calls, between the session code of two runs.

A cell that calls ``score(3)`` gives another result when ``score`` was defined anew in
an earlier cell, though its own source is the same. Each run keeps the code its session
ran (sessioncode.py); here the last top-level ``def``/``class`` of every name in each
session is found, and the names the cell reaches are followed: the names its code reads,
then the names those definitions read, transitively. A definition that differs between
the two runs (or exists in one only) is shown as a unified diff under its name.

Static, like the rest of the dataflow: a function reached through ``globals()[...]`` or
assigned from an expression (``score = make_scorer()``) is not followed.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .dataflow import analyze
from .exceptions import PipelineError
from .sessioncode import read_code

if TYPE_CHECKING:
    from .cache import Cache
    from .models import Run

#: Cell magics whose body is Python (their first line is dropped before parsing).
_PYTHON_CELL_MAGICS = ("%%track", "%%time", "%%timeit", "%%capture", "%%prun")
#: Definitions followed per diff, at most.
FOLLOW_LIMIT = 200


def python_of(cell: str) -> str | None:
    """A cell's raw source as Python: ``%%track`` and the like dropped, ``%line`` and
    ``!shell`` lines made ``pass``; None for a cell in another language (``%%bash``)."""
    lines = cell.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if not lines[0].lstrip().startswith(_PYTHON_CELL_MAGICS):
            return None
        lines[0] = ""
    out = []
    for line in lines:
        body = line.lstrip()
        if body.startswith(("%", "!")):
            line = line[: len(line) - len(body)] + "pass"
        out.append(line)
    return "\n".join(out)


def definitions(cells: Iterable[str]) -> dict[str, str]:
    """The source of the last top-level function or class of each name, over ``cells``
    in the order they ran (a cell that does not parse is left out)."""
    found: dict[str, str] = {}
    for cell in cells:
        code = python_of(cell)
        if code is None:
            continue
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found[node.name] = ast.get_source_segment(code, node) or ""
    return found


def _reads(code: str | None) -> tuple[str, ...]:
    if code is None:
        return ()
    flow = analyze(code)
    return () if flow.error else flow.reads


def changed_definitions(
    cell_a: str, cells_a: list[str], cell_b: str, cells_b: list[str]
) -> list[tuple[str, str, str]]:
    """``(name, source in a, source in b)`` of each definition reached from the two runs'
    cells (``cell_a``, ``cell_b``) whose source differs between the sessions ``cells_a``
    and ``cells_b`` ("" where a session has none)."""
    defs_a, defs_b = definitions(cells_a), definitions(cells_b)
    todo = [*_reads(python_of(cell_a)), *_reads(python_of(cell_b))]
    seen: dict[str, None] = {}
    while todo and len(seen) < FOLLOW_LIMIT:
        name = todo.pop(0)
        if name in seen or (name not in defs_a and name not in defs_b):
            continue
        seen[name] = None
        for defs in (defs_a, defs_b):  # (what it reads when called: a cell naming it)
            code = defs.get(name)
            todo.extend(_reads(None if code is None else f"{code}\n{name}"))
    return [
        (name, defs_a.get(name, ""), defs_b.get(name, ""))
        for name in sorted(seen)
        if defs_a.get(name, "") != defs_b.get(name, "")
    ]


def diff_definitions(changed: list[tuple[str, str, str]], label_a: str, label_b: str) -> str:
    """The unified diff of each changed definition, headed by its name."""
    out = []
    for name, a, b in changed:
        lines = difflib.unified_diff(
            a.splitlines(keepends=True),
            b.splitlines(keepends=True),
            fromfile=f"{label_a}: {name}",
            tofile=f"{label_b}: {name}",
        )
        out.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(out)


def session_diff(cache: Cache, a: Run, b: Run) -> str:
    """The notebook functions and classes the cells of runs ``a`` and ``b`` reach whose
    definitions differ between their sessions, as unified diffs ("" when the session code
    is the same, or a session's code is not in ``cache``)."""
    if not a.code_hash or not b.code_hash or a.code_hash == b.code_hash:
        return ""
    try:
        cells_a = [c.source for c in read_code(cache, a.code_hash)]
        cells_b = [c.source for c in read_code(cache, b.code_hash)]
    except PipelineError:
        return ""  # e.g. runs pulled without their blobs: the cells' own diff stands
    changed = changed_definitions(a.source or "", cells_a, b.source or "", cells_b)
    return diff_definitions(changed, f"run {a.run_id[:8]}", f"run {b.run_id[:8]}")
