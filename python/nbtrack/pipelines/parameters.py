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
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import UsageError

if TYPE_CHECKING:
    from ..models import Run

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


@dataclass(frozen=True)
class NotebookParameters:
    """What papermill sees in a notebook's ``parameters`` cell."""

    has_parameters_cell: bool
    names: tuple[str, ...]
    defaults: dict[str, str]
    tagged: str | None = None  # the type of a tagged cell that is no code (markdown, raw)

    def warnings_for(self, given: Sequence[str], notebook: str) -> list[str]:
        """Human warnings about ``given`` parameter names this notebook does not declare."""
        if not given:
            return []
        if not self.has_parameters_cell:
            where = (
                f"{notebook}'s cell tagged 'parameters' is a {self.tagged} cell: papermill "
                "injects the parameters in a new cell after it"
                if self.tagged
                else f"{notebook} has no cell tagged 'parameters': papermill injects the "
                "parameters in a new cell at the top of the notebook"
            )
            return [
                f"{where}, so any later assignment of {', '.join(sorted(given))} in the "
                "notebook overrides the injected value"
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


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


_ASSIGNED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]*)?=(?!=)\s*(.*?)\s*(?:#.*)?$")


def _assignments(source: str) -> dict[str, str]:
    """Top-level ``name = value`` (and ``name: type = value``) of a parameters cell, in order.

    Parsed as Python; a cell that does not parse (an IPython magic line, say) is read
    line by line instead, as papermill's own Python translator does.
    """
    found: dict[str, str] = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        for line in source.splitlines():
            match = _ASSIGNED.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        value = getattr(node, "value", None)
        text = ast.get_source_segment(source, value) if value is not None else None
        for target in targets:
            names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
            for name in names:
                if isinstance(name, ast.Name):
                    found[name.id] = text if len(names) == 1 and text is not None else ""
    return found


def read_notebook(text: str, name: str) -> dict[str, Any]:
    """The notebook document in ``text`` (a ``UsageError`` naming ``name`` if it is not one)."""
    import json

    try:
        nb = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not a notebook (not JSON: {exc})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UsageError(f"{name} is not a notebook (no list of cells)")
    return nb


def inspect_parameters(nb: Mapping[str, Any]) -> NotebookParameters:
    """The parameters declared by the notebook's first cell tagged ``parameters`` (papermill
    injects after it, whatever its type: a markdown one declares none).

    ``nb`` is the notebook document (a dict, as ``json.load`` gives it). The cell is read
    as papermill's Python translator reads it, without importing papermill: a sweep's
    own process then never pays for papermill (its workers do).
    """
    for cell in nb.get("cells", []):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "parameters" not in tags:
            continue
        if cell.get("cell_type") != "code":
            return NotebookParameters(False, (), {}, str(cell.get("cell_type")))
        declared = _assignments(_source(cell))
        return NotebookParameters(True, tuple(declared), declared)
    return NotebookParameters(False, (), {})


def unread_overrides(overrides: Mapping[str, Any], cells: Sequence[Run]) -> list[str]:
    """The ``-p`` values a re-run's cells read another value of, one line per cell and
    name: a cell after the injected one set the name again (a session that ran
    ``lr = 0.5`` after ``lr = 0.1``), so the override changed nothing the verdict judged."""
    found: dict[str, None] = {}
    for cell in cells:
        for name, value in overrides.items():
            if name in cell.params and cell.params[name] != value:
                source = cell.param_sources.get(name, "?")
                found[
                    f"-p {name} {_text(value)} did not reach cell {cell.name}: it read "
                    f"{name}={_text(cell.params[name])} ({source}), set after the override"
                ] = None
    return list(found)


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
