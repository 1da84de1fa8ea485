"""How CLI verbs print: human tables by default, JSON or CSV for machines."""

from __future__ import annotations

import codecs
import csv
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ..models import NamedInput, json_value
from ..numformat import format_number
from ..rundiff import ADDED, REMOVED, Change
from ..shown import escaped
from ..sysmetrics import is_system

# The narrowest a column is cut to before columns are left out instead.
MIN_COLUMN = 10
# The widest a piped table pads a column to: a longer cell is written whole, past the
# column, rather than every other row being padded to its length.
PIPE_PAD = 200


def emit_json(obj: Any) -> None:
    """``obj`` as JSON on stdout: indented for a person at a terminal, compact for a pipe.

    ``json.dumps`` with ``indent=None`` runs CPython's C encoder; ``json.dump`` to a
    file never does (it iterates chunks in Python: 58 % of ``ls --json`` over 10,000
    runs). Values from ``to_dict`` are JSON-safe already, so the walk that turns NaN
    and infinities into strings runs only when the encoder refuses one.
    """
    indent = 2 if sys.stdout.isatty() else None
    try:
        text = json.dumps(obj, indent=indent, default=str, allow_nan=False)
    except ValueError:
        text = json.dumps(json_value(obj), indent=indent, default=str, allow_nan=False)
    sys.stdout.write(text + "\n")


def emit_json_text(chunks: list[str]) -> None:
    """JSON text made elsewhere (DuckDB), in chunks: as it is for a pipe, indented for a person."""
    if sys.stdout.isatty() or not _unicode_out():
        # json.dumps escapes what is not ASCII: a stdout that cannot write `λ` would
        # otherwise get `\\u03bb` from its error handler, and `😀` as invalid JSON
        chunks = [
            json.dumps(json.loads("".join(chunks)), indent=2 if sys.stdout.isatty() else None)
        ]
    for chunk in chunks:
        sys.stdout.write(chunk)
    sys.stdout.write("\n")


def _unicode_out() -> bool:
    """Whether stdout can write every character (UTF-8, or UTF-16/32)."""
    try:
        return codecs.lookup(sys.stdout.encoding or "ascii").name.startswith("utf")
    except LookupError:
        return False


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def param_cell(value: Any) -> Any:
    """A parameter as a human table shows it: ``None`` as None (a blank is a run without
    the parameter), and a text that would read as another value (``'[16, 4]'``,
    ``'0.1'``, ``'None'``, ``''``) in double quotes, so the list papermill's ``-y`` gives
    and the text its ``-p`` gives do not print alike.

    >>> param_cell(None), param_cell("[16, 4]"), param_cell("adam"), param_cell([16, 4])
    ('None', '"[16, 4]"', 'adam', [16, 4])
    """
    if value is None:
        return "None"
    if not isinstance(value, str):
        return value
    if value.strip() != value or value in ("", "None", "True", "False", "nan"):
        return json.dumps(value)
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return value if isinstance(parsed, str) else json.dumps(value)


def terminal_width() -> int | None:
    """The width tables fit: the terminal's, or ``$COLUMNS``; None (no limit) for a pipe."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return shutil.get_terminal_size().columns
    return None


def fit_widths(widths: list[int], total: int, gap: int = 2) -> tuple[list[int], int]:
    """Column widths that fit ``total`` characters, and how many columns fit at all.

    The widest columns give up characters first (one cap for all, as wide as the
    space allows); no column goes below ``MIN_COLUMN`` characters, so when even that
    does not fit, the columns on the right are left out.
    """
    shown = len(widths)
    floors = [min(w, MIN_COLUMN) for w in widths]
    while shown > 1 and sum(floors[:shown]) + gap * (shown - 1) > total:
        shown -= 1
    room = total - gap * (shown - 1)
    natural = widths[:shown]
    if sum(natural) <= room:
        return natural, shown
    low, high = 0, max(natural)
    while low < high:  # the largest cap that fits
        cap = (low + high + 1) // 2
        if sum(max(f, min(w, cap)) for w, f in zip(natural, floors, strict=False)) <= room:
            low = cap
        else:
            high = cap - 1
    return [max(f, min(w, low)) for w, f in zip(natural, floors, strict=False)], shown


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def emit_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    max_width: int = 40,
    width: int | None | Literal["terminal"] = "terminal",
    hint: str = "",
) -> None:
    """An aligned table fitted to ``width`` (default: the terminal's): every cell cut to
    ``max_width`` characters, then the widest columns cut further, cut text ending in an
    ellipsis; columns that do not fit even so are named on stderr. A pipe (no terminal,
    no ``$COLUMNS``) gets every character of every cell."""
    limit = terminal_width() if width == "terminal" else width
    cap = max_width if limit is not None else None  # a pipe gets every character
    cells = [[escaped(format_cell(v)) for v in row] for row in rows]
    if cap:
        cells = [[_cut(c, cap) for c in row] for row in cells]
    heads = [escaped(c) for c in columns]
    # A pipe pads to at most PIPE_PAD: one 10 MB parameter padded every row of its
    # column to 10 MB (`nbtrack diff` wrote 100 GB over four minutes).
    pad = PIPE_PAD if limit is None else None
    widths = [len(c) if pad is None or len(c) <= pad else 0 for c in heads]
    for row in cells:
        for i, c in enumerate(row):
            if pad is None or len(c) <= pad:
                widths[i] = max(widths[i], len(c))
    shown = len(heads)
    if limit is not None and heads:
        widths, shown = fit_widths(widths, limit)
    for row in [heads, *cells]:
        fitted = row if limit is None else [_cut(c, w) for c, w in zip(row, widths, strict=False)]
        line = "  ".join(c.ljust(w) for c, w in zip(fitted, widths, strict=False))
        sys.stdout.write(line.rstrip() + "\n")
    if shown < len(heads):
        left = heads[shown:]
        named = ", ".join(left[:6]) + (", …" if len(left) > 6 else "")
        sys.stderr.write(f"({len(left)} more column(s) did not fit the terminal: {named}{hint})\n")


def emit_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])


def _csv_value(v: Any) -> Any:
    """A cell as CSV text: a dict or list parameter as its JSON (what the store holds)."""
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return v


def metrics_text(metrics: dict[str, Any]) -> str:
    """A run's metrics in a few words (``acc=0.95 loss=0.1``), the system's (CPU, memory:
    ``system/…``) left out: they differ between any two runs and say little."""
    return " ".join(f"{k}={format_cell(v)}" for k, v in metrics.items() if not is_system(k))


def param_sides(c: Change) -> list[Any]:
    """Both sides of a parameter's change as shown: blank where a run lacks it."""
    return [
        None if c.kind == ADDED else param_cell(c.a),
        None if c.kind == REMOVED else param_cell(c.b),
    ]


def input_text(i: NamedInput) -> str:
    """A value a run read, in a few words: ``ndarray 3×4 xxh64:… from run 3f2a1b2c In[4]``."""
    parts = [i.type]
    if i.shape:
        parts.append(i.shape)
    parts.append(i.fingerprint or i.note or "not fingerprinted")
    if i.producer_run_id:
        parts.append(f"from run {i.producer_run_id[:8]}")
    if i.execution_count is not None:
        parts.append(f"In[{i.execution_count}]")
    if i.stale:
        parts.append(f"(stale: {i.reason})")
    return " ".join(parts)


def detail_lines(detail: dict[str, Any]) -> list[str]:
    """The short lines a data diff carries for people (rows, columns, statistics)."""
    summary = detail.get("summary")
    if isinstance(summary, list):
        return [str(line) for line in summary]
    return [str(detail["error"])] if detail.get("error") else []
