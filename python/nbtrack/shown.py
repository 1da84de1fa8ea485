"""Recorded text as a person sees it: control characters as escapes, long names cut.

A run name, a parameter or metric key, a tag: anyone's text, through a kernel or a
bundle. Raw, a control character broke a table's rows, cleared the screen, set the
terminal's title, or (a carriage return) wrote over a cell's summary; a 1 MB key filled
the summary under the cell. The CLI's tables and that summary show it alike.
"""

from __future__ import annotations

CONTROL_ESCAPES = {c: repr(chr(c))[1:-1] for c in (*range(32), *range(127, 160))}


def escaped(text: str) -> str:
    """``text`` with every control character as its escape (``\\x1b``, ``\\r``)."""
    return text.translate(CONTROL_ESCAPES)


def shown_name(text: str, limit: int = 60) -> str:
    """A name escaped, and cut to ``limit`` characters ending in an ellipsis."""
    text = escaped(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
