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
from .models import Run
from .sysmetrics import is_system, system_summary

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
        if is_system(c.key):
            continue  # CPU and memory move every run; the system line shows them
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
    lines = [head, f"  params:  {_pairs(run.params)}", f"  metrics: {_pairs(_user(run))}"]
    system = system_summary(run.metrics)
    if system:
        lines.append(f"  system:  {system}")
    if run.data:
        files = [f"{_role(d.role)} {d.path}" for d in run.data[:MAX_ITEMS]]
        lines.append(f"  data:    {', '.join(files)}")
    lines.extend(_changes_text(outcome))
    lines.extend(f"  alert:   {a}" for a in outcome.alerts)
    lines.extend(f"  warning: {w}" for w in outcome.warnings)
    return "\n".join(lines)


def _user(run: Run) -> dict[str, Any]:
    """The metrics the cell logged (system metrics have their own line)."""
    return {k: v for k, v in run.metrics.items() if not is_system(k)}


def _changes_text(outcome: CellOutcome) -> list[str]:
    if outcome.previous is None:
        return [f"  {outcome.note or 'first run of this cell'}"]
    changes = change_lines(outcome.diff) if outcome.diff is not None else []
    prev = outcome.previous.short_id
    if not changes:
        return [f"  same as the previous run {prev}"]
    return [f"  since {prev}:"] + [f"    {line}" for line in changes[: MAX_ITEMS * 2]]


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
    parts.append(f"<br>params: {esc(_pairs(run.params))}<br>metrics: {esc(_pairs(_user(run)))}")
    system = system_summary(run.metrics)
    if system:
        parts.append(f"<br>system: {esc(system)}")
    if run.data:
        files = ", ".join(f"{_role(d.role)} {d.path}" for d in run.data[:MAX_ITEMS])
        parts.append(f"<br>data: {esc(files)}")
    for line in _changes_text(outcome):
        parts.append("<br>" + esc(line.strip()))
    for label, items in (("alert", outcome.alerts), ("warning", outcome.warnings)):
        for w in items:
            parts.append(
                f'<br><span style="color: var(--jp-warn-color1, #f57c00)">{label}: {esc(w)}</span>'
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


def summary_of(run: Run) -> str:
    """A one-line description of a run (used by %track show)."""
    return f"{run.short_id} {run.name or ''} {run.status} params: {_pairs(run.params)} metrics: {_pairs(_user(run))}"
