"""The compact summary under a tracked cell: run id, params, metrics, what changed.

Shown as an ipywidget (an HTML widget) with a plain-text fallback, so papermill
output, terminals and frontends without widgets still read it.
"""

from __future__ import annotations

import html
import math
from typing import Any

from .cellrun import CellOutcome
from .diff import CHANGED, RunDiff

MAX_ITEMS = 12


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _role(role: str) -> str:
    return "in" if role == "input" else "out"


def _pairs(values: dict[str, Any]) -> str:
    items = [f"{k}={_fmt(v)}" for k, v in list(values.items())[:MAX_ITEMS]]
    if len(values) > MAX_ITEMS:
        items.append(f"… {len(values) - MAX_ITEMS} more")
    return ", ".join(items) or "—"


def change_lines(d: RunDiff) -> list[str]:
    """One line per change since the previous run, in the order a reader checks them."""
    lines = []
    for c in d.params:
        if c.kind == CHANGED:
            lines.append(f"param {c.key}: {_fmt(c.a)} → {_fmt(c.b)}")
        else:
            lines.append(f"param {c.key}: {c.kind}")
    for c in d.metrics:
        if c.delta is not None and math.isfinite(c.delta):
            lines.append(f"metric {c.key}: {_fmt(c.a)} → {_fmt(c.b)} ({c.delta:+.4g})")
        elif c.kind == CHANGED:
            lines.append(f"metric {c.key}: {_fmt(c.a)} → {_fmt(c.b)}")
        else:
            lines.append(f"metric {c.key}: {c.kind}")
    for dc in d.data:
        extra = f" ({dc.size_delta:+,d} bytes)" if dc.size_delta else ""
        lines.append(f"{dc.role} {dc.path}: {dc.kind}{extra}")
    if d.code:
        lines.append("code changed")
    for c in d.outcome:
        if c.key == "status":
            lines.append(f"status: {c.a} → {c.b}")
    return lines


def as_text(outcome: CellOutcome) -> str:
    run = outcome.run
    head = f"nbtrack run {run.short_id}"
    if run.name:
        head += f" ({run.name})"
    head += f" · {run.status}"
    if run.duration is not None:
        head += f" · {run.duration:.2f} s"
    lines = [head, f"  params:  {_pairs(run.params)}", f"  metrics: {_pairs(run.metrics)}"]
    if run.data:
        files = [f"{_role(d.role)} {d.path}" for d in run.data[:MAX_ITEMS]]
        lines.append(f"  data:    {', '.join(files)}")
    lines.extend(_changes_text(outcome))
    lines.extend(f"  warning: {w}" for w in _warnings(outcome))
    return "\n".join(lines)


def _changes_text(outcome: CellOutcome) -> list[str]:
    if outcome.previous is None:
        return [f"  {outcome.note or 'first run of this cell'}"]
    changes = change_lines(outcome.diff) if outcome.diff is not None else []
    prev = outcome.previous.short_id
    if not changes:
        return [f"  same as the previous run {prev}"]
    return [f"  since {prev}:"] + [f"    {line}" for line in changes[: MAX_ITEMS * 2]]


def _warnings(outcome: CellOutcome) -> list[str]:
    """What the cell noticed, then what is recorded on the run (known by now)."""
    return [*outcome.warnings, *outcome.run.warnings]


def as_html(outcome: CellOutcome) -> str:
    run = outcome.run
    esc = html.escape
    status_color = {
        "finished": "var(--jp-success-color1, #388e3c)",
        "failed": "var(--jp-error-color1, #d32f2f)",
    }
    color = status_color.get(run.status, "var(--jp-warn-color1, #f57c00)")
    parts = [
        '<div class="nbtrack-summary" style="font-family: var(--jp-code-font-family, monospace); '
        "font-size: var(--jp-code-font-size, 12px); border-left: 3px solid "
        f'{color}; padding: 2px 8px; line-height: 1.5">',
        f'<b>nbtrack</b> run <code title="{esc(run.run_id)}" data-run-id="{esc(run.run_id)}">{esc(run.short_id)}</code>',
    ]
    if run.name:
        parts.append(f" ({esc(run.name)})")
    parts.append(f' · <span style="color:{color}">{esc(run.status)}</span>')
    if run.duration is not None:
        parts.append(f" · {run.duration:.2f} s")
    parts.append(f"<br>params: {esc(_pairs(run.params))}<br>metrics: {esc(_pairs(run.metrics))}")
    if run.data:
        files = ", ".join(f"{_role(d.role)} {d.path}" for d in run.data[:MAX_ITEMS])
        parts.append(f"<br>data: {esc(files)}")
    for line in _changes_text(outcome):
        parts.append("<br>" + esc(line.strip()))
    for w in _warnings(outcome):
        parts.append(
            f'<br><span style="color: var(--jp-warn-color1, #f57c00)">warning: {esc(w)}</span>'
        )
    parts.append("</div>")
    return "".join(parts)


def show(outcome: CellOutcome, shell: Any) -> None:
    """Display the summary: a widget where a widget frontend is there, else text."""
    from IPython.display import display

    text = as_text(outcome)
    kernel = getattr(shell, "kernel", None)
    if kernel is None:  # terminal IPython: no comms, no widgets
        display({"text/plain": text}, raw=True)
        return
    try:
        import ipywidgets as widgets

        widget = widgets.HTML(value=as_html(outcome))
        bundle = widget._repr_mimebundle_()
    except Exception:  # no ipywidgets, or a frontend that refused the comm
        bundle = {"text/html": as_html(outcome)}
    bundle = dict(bundle or {})
    bundle["text/plain"] = text
    if "text/html" not in bundle:
        bundle["text/html"] = as_html(outcome)
    display(bundle, raw=True)
