"""The compact summary under a tracked cell: run id, params, metrics, what changed.

Shown as HTML with a plain-text twin, so papermill output, terminals and
frontends without HTML still read it.
"""

from __future__ import annotations

import html
import math
import sys
from typing import Any

from .cellrun import CellOutcome
from .models import Run
from .numformat import format_number
from .rundiff import ADDED, CHANGED, REMOVED, DataChange, RunDiff
from .shown import escaped, shown_name
from .sysmetrics import is_system, system_summary

MAX_ITEMS = 12


def _fmt(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_number(value)
    return shown_name(repr(value) if isinstance(value, str) else str(value))


def _role(role: str) -> str:
    return "in" if role == "input" else "out"


def _pairs(values: dict[str, Any]) -> str:
    return _listed([f"{shown_name(k)}={_fmt(v)}" for k, v in values.items()])


def _listed(items: list[str]) -> str:
    """The first ``MAX_ITEMS`` items, and how many more there are."""
    if len(items) > MAX_ITEMS:
        items = [*items[:MAX_ITEMS], f"… {len(items) - MAX_ITEMS} more"]
    return ", ".join(items) or "—"


def _origin(run: Run | None, key: str) -> str:
    """Where a parameter came from, when it is not the cell's own literal."""
    source = run.param_sources.get(key) if run is not None else None
    return f" ({source})" if source and source != "auto" else ""


def _param_pairs(run: Run) -> str:
    pairs = run.params.items()
    return _listed([f"{shown_name(k)}={_fmt(v)}{_origin(run, k)}" for k, v in pairs])


def _files(run: Run) -> str:
    """The files the run read and wrote: a cell writing 2,000 shards says how many."""
    return _listed([f"{_role(d.role)} {escaped(d.path)}" for d in run.data])


def _reads(run: Run) -> str:
    """Values the cell read that are not parameters: ``X_train (ndarray 3×4, run 3f2a1b2c)``."""
    items = []
    for i in run.named_inputs:
        if i.name in run.params:
            continue
        where = [i.type.rpartition(".")[2]]
        if i.shape:
            where.append(i.shape)
        if i.producer_run_id:
            where.append(f"run {i.producer_run_id[:8]}")
        elif i.execution_count is not None:
            where.append(f"In[{i.execution_count}]")
        items.append(f"{i.name} ({', '.join(where)})")
    return _listed(items) if items else ""


def change_lines(d: RunDiff, run: Run | None = None) -> list[str]:
    """One line per change since the previous run, in the order a reader checks them."""
    lines = []
    for c in d.params:
        if c.kind == CHANGED:
            origin = _origin(run, c.key)
            for leaf in c.leaves():
                was = _fmt(leaf.a) if leaf.kind != ADDED else "—"
                now = _fmt(leaf.b) if leaf.kind != REMOVED else "—"
                lines.append(f"param {shown_name(leaf.key)}: {was} → {now}{origin}")
        else:
            lines.append(f"param {shown_name(c.key)}: {c.kind}")
    for ic in d.inputs:
        b = ic.b
        made = f" (made by run {b.producer_run_id[:8]})" if b and b.producer_run_id else ""
        lines.append(f"read {ic.name}: {ic.kind}{made}")
    for c in d.metrics:
        if is_system(c.key):
            continue  # CPU and memory move every run; the system line shows them
        key = shown_name(c.key)
        if c.delta is not None and math.isfinite(c.delta):
            sign = "+" if c.delta >= 0 else ""
            lines.append(f"metric {key}: {_fmt(c.a)} → {_fmt(c.b)} ({sign}{_fmt(c.delta)})")
        elif c.kind == CHANGED:
            lines.append(f"metric {key}: {_fmt(c.a)} → {_fmt(c.b)}")
        else:
            lines.append(f"metric {key}: {c.kind}")
    renamed = _renamed(d.data[:MAX_ITEMS])
    moved = {(role, was) for (role, _), was in renamed.items()}
    for dc in d.data[:MAX_ITEMS]:
        extra = f" ({dc.size_delta:+,d} bytes)" if dc.size_delta else ""
        before = renamed.get((dc.role, dc.path)) if dc.kind == ADDED else None
        if before is not None:
            lines.append(
                f"{dc.role} {escaped(before)} → {escaped(dc.path)}: the same bytes, renamed"
            )
        elif dc.kind != REMOVED or (dc.role, dc.path) not in moved:
            lines.append(f"{dc.role} {escaped(dc.path)}: {dc.label('this run')}{extra}")
    if len(d.data) > MAX_ITEMS:  # (a cell writing 2,000 shards: the code change still shows)
        lines.append(f"… {len(d.data) - MAX_ITEMS} more files changed")
    if d.code:
        lines.append("code changed")
    for c in d.outcome:
        if c.key == "status":
            lines.append(f"status: {c.a} → {c.b}")
    return lines


def _renamed(data: list[DataChange]) -> dict[tuple[str, str], str]:
    """``(role, path)`` only this run read or wrote that holds the bytes of a path only
    the previous run did (a data file renamed and its path parameter updated), with that
    path: one move, not a file dropped and an unrelated one added."""
    gone: dict[tuple[str, str | None], str] = {
        (c.role, c.a.hash): c.path for c in data if c.kind == REMOVED and c.a and c.a.hash
    }
    return {
        (c.role, c.path): gone[(c.role, c.b.hash)]
        for c in data
        if c.kind == ADDED and c.b and c.b.kind == "file" and (c.role, c.b.hash) in gone
    }


def as_text(outcome: CellOutcome) -> str:
    run = outcome.run
    head = f"nbtrack run {run.short_id}"
    if run.name:
        head += f" ({shown_name(run.name)})"
    head += f" · {run.status}"
    if run.duration is not None:
        head += f" · {run.duration:.2f} s"
    lines = [head, f"  params:  {_param_pairs(run)}", f"  metrics: {_pairs(_user(run))}"]
    system = system_summary(run.metrics)
    if system:
        lines.append(f"  system:  {system}")
    reads = _reads(run)
    if reads:
        lines.append(f"  reads:   {reads}")
    if run.data:
        lines.append(f"  data:    {_files(run)}")
    lines.extend(_changes_text(outcome))
    lines.extend(f"  alert:   {a}" for a in outcome.alerts)
    lines.extend(f"  warning: {w}" for w in _warnings(outcome))
    return "\n".join(lines)


def _user(run: Run) -> dict[str, Any]:
    """The metrics the cell logged (system metrics have their own line)."""
    return {k: v for k, v in run.metrics.items() if not is_system(k)}


def _changes_text(outcome: CellOutcome) -> list[str]:
    if outcome.previous is None:
        return [f"  {outcome.note or 'first run of this cell'}"]
    changes = change_lines(outcome.diff, outcome.run) if outcome.diff is not None else []
    prev = outcome.previous.short_id
    if not changes:
        return [f"  same as the previous run {prev}"]
    if len(changes) > MAX_ITEMS * 2:
        changes = [*changes[: MAX_ITEMS * 2 - 1], f"… {len(changes) - MAX_ITEMS * 2 + 1} more"]
    return [f"  since {prev}:"] + [f"    {line}" for line in changes]


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
        parts.append(f" ({esc(shown_name(run.name))})")
    parts.append(f' · <span style="color:{color}">{esc(run.status)}</span>')
    if run.duration is not None:
        parts.append(f" · {run.duration:.2f} s")
    parts.append(f"<br>params: {esc(_param_pairs(run))}<br>metrics: {esc(_pairs(_user(run)))}")
    system = system_summary(run.metrics)
    if system:
        parts.append(f"<br>system: {esc(system)}")
    reads = _reads(run)
    if reads:
        parts.append(f"<br>reads: {esc(reads)}")
    if run.data:
        parts.append(f"<br>data: {esc(_files(run))}")
    for line in _changes_text(outcome):
        parts.append("<br>" + esc(line.strip()))
    for label, items in (("alert", outcome.alerts), ("warning", _warnings(outcome))):
        for w in items:
            parts.append(
                f'<br><span style="color: var(--jp-warn-color1, #f57c00)">{label}: {esc(w)}</span>'
            )
    parts.append("</div>")
    return "".join(parts)


def show(outcome: CellOutcome, shell: Any) -> None:
    """Display the summary: HTML where the frontend renders it, else text.

    A plain display, not an ipywidget: a widget opens two comms per cell (the
    HTML widget and its layout), which cost ~9 ms of the kernel's time under
    every tracked cell, and its output is gone once the kernel is.
    """
    from IPython.display import display

    bundle = {"text/plain": as_text(outcome)}
    if getattr(shell, "kernel", None) is not None:  # terminal IPython shows only text
        bundle["text/html"] = as_html(outcome)
    pub = getattr(shell, "display_pub", None)
    if pub is None or not hasattr(pub, "_flush_streams") or not _streams_idle():
        display(bundle, raw=True)
        return
    # ipykernel flushes stdout and stderr before any display message, each a round
    # trip to its IOPub thread even with nothing to send. With nothing written since
    # their last flush, the summary cannot overtake any output: those trips are skipped.
    pub._flush_streams = _no_flush  # this one call: an attribute shadowing the method
    try:
        display(bundle, raw=True)
    finally:
        del pub._flush_streams


def _streams_idle() -> bool:
    """Whether ipykernel's stdout and stderr hold nothing written since their last flush."""
    for stream in (sys.stdout, sys.stderr):
        pending = getattr(stream, "_flush_pending", None)
        if pending is None or pending or getattr(stream, "_subprocess_flush_pending", False):
            return False  # not ipykernel's stream, or output waiting to go out
    return True


def _no_flush() -> None:
    return None
