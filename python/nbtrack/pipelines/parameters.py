"""Parameters of a notebook execution: parsing ``-p`` values, grids, and the ``parameters`` cell.

Values given on the command line follow papermill's ``-p`` rules, extended with
literals so a sweep can pass lists and quoted strings:

=====================================  ==========================================
text                                   value
=====================================  ==========================================
``True`` / ``true``, ``False`` / ``false``  bool
``None`` / ``null``                    None
``3``, ``-2``, ``1_000``               int
``0.1``, ``1e-3``, ``inf``, ``nan``    float
``"3"``, ``'a b'``                     str (quotes removed: forces a string)
``[64, 32]``, ``{"a": 1}``, ``(1, 2)``  list / dict / tuple (a Python literal)
anything else (``adam``, ``a-b``)      str, as typed
=====================================  ==========================================

A value that starts like a literal (a quote, ``[``, ``{`` or ``(``) but does not
parse as one is a ``UsageError`` rather than a silent string.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nbformat

from ..exceptions import UsageError

_TRUE = {"True", "true"}
_FALSE = {"False", "false"}
_NONE = {"None", "null"}
_LITERAL_STARTS = ("'", '"', "[", "{", "(")


def parse_value(text: str) -> Any:
    """The Python value of one command-line parameter value.

    >>> parse_value("0.1"), parse_value("3"), parse_value("adam"), parse_value("[1, 2]")
    (0.1, 3, 'adam', [1, 2])
    """
    stripped = text.strip()
    if stripped in _TRUE:
        return True
    if stripped in _FALSE:
        return False
    if stripped in _NONE:
        return None
    if stripped.startswith(_LITERAL_STARTS):
        try:
            return ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise UsageError(
                f"malformed parameter value {text!r}: it starts like a Python literal but does "
                f"not parse as one ({type(exc).__name__}); quote it to pass a string"
            ) from None
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        return text


def check_name(name: str) -> str:
    """``name`` if it can be a notebook variable, else a ``UsageError``."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise UsageError(f"malformed parameter name {name!r}: not a Python identifier")
    return name


def parse_assignments(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``[["lr", "0.1"], ...]`` (from ``-p NAME VALUE``) as ``{"lr": 0.1}``; a repeated name wins last."""
    values: dict[str, Any] = {}
    for pair in pairs or ():
        if len(pair) != 2:
            raise UsageError(f"-p takes a NAME and one VALUE, got {' '.join(pair)!r}")
        values[check_name(pair[0])] = parse_value(pair[1])
    return values


def parse_axes(groups: Sequence[Sequence[str]] | None) -> dict[str, list[Any]]:
    """``[["lr", "0.1", "0.01"], ["depth", "3"]]`` (from ``-p NAME VALUE...``) as grid axes."""
    axes: dict[str, list[Any]] = {}
    for group in groups or ():
        if len(group) < 2:
            name = group[0] if group else ""
            raise UsageError(f"-p {name} needs at least one value (-p NAME VALUE [VALUE ...])")
        name = check_name(group[0])
        if name in axes:
            raise UsageError(f"parameter {name!r} given twice; list all its values after one -p")
        axes[name] = [parse_value(v) for v in group[1:]]
    return axes


def grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes, the last axis varying fastest (like nested loops)."""
    names = list(axes)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


def sample(points: Sequence[dict[str, Any]], k: int, seed: int | None) -> list[dict[str, Any]]:
    """``k`` distinct points of the grid, drawn without replacement (all of them if ``k`` is larger).

    The same seed gives the same sample; the points keep their grid order.
    """
    if k < 1:
        raise UsageError(f"--random must be at least 1, got {k}")
    if k >= len(points):
        return list(points)
    chosen = sorted(random.Random(seed).sample(range(len(points)), k))
    return [points[i] for i in chosen]


def same_value(a: Any, b: Any) -> bool:
    """Parameter equality where NaN equals NaN (a sweep may use ``nan`` as a value)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@dataclass(frozen=True)
class NotebookParameters:
    """What papermill sees in a notebook's ``parameters`` cell."""

    has_parameters_cell: bool
    names: tuple[str, ...]
    defaults: dict[str, str]

    def warnings_for(self, given: Sequence[str], notebook: str) -> list[str]:
        """Human warnings about ``given`` parameter names this notebook does not declare."""
        if not given:
            return []
        if not self.has_parameters_cell:
            return [
                f"{notebook} has no cell tagged 'parameters': papermill injects the parameters "
                "in a new cell at the top of the notebook, so any later assignment of "
                f"{', '.join(sorted(given))} in the notebook overrides the injected value"
            ]
        unknown = sorted(set(given) - set(self.names))
        if not unknown:
            return []
        known = ", ".join(self.names) or "none"
        return [
            f"{notebook}: parameter {name!r} is not assigned in the 'parameters' cell "
            f"(it declares: {known}); papermill injects it anyway"
            for name in unknown
        ]


def inspect_parameters(
    nb: nbformat.NotebookNode, kernel_name: str = "python3"
) -> NotebookParameters:
    """The parameters declared by the notebook's first cell tagged ``parameters``.

    ``nb`` is modified as papermill's own loader does (every cell gets a ``tags`` list).
    """
    # papermill's public inspect_notebook() takes a path; this is its inside, for a
    # notebook already in memory (a run's snapshot).
    from papermill.inspection import _infer_parameters

    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    if not any("parameters" in cell.metadata.tags for cell in nb.cells):
        return NotebookParameters(False, (), {})
    spec = nb.metadata.get("kernelspec", {})
    language = spec.get("language") or nb.metadata.get("language_info", {}).get("name") or "python"
    found = _infer_parameters(nb, name=spec.get("name") or kernel_name, language=language)
    return NotebookParameters(
        True,
        tuple(p.name for p in found),
        {p.name: p.default for p in found},
    )
