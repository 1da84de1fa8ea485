"""Did a re-execution reproduce its original? The verdict, and exactly what moved if not.

A rerun *reproduced* when, for every cell run of the original, the matching cell run of
the rerun ended the same way, logged the same metrics (within ``rtol``/``atol``; NaN
equals NaN), read the same input versions and wrote outputs with the same hashes.
Anything else is listed: metric deltas, output files that changed, inputs whose version
differs from the one recorded, cells that failed or did not run.

Cell runs are matched by cell id, else by name and code, in execution order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..models import DataVersion, Environment, Run, json_float
from ..numformat import format_number

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-12


def cell_label(run: Run) -> str:
    """How a verdict names a cell run: its name, else its cell id, else its short id."""
    return run.name or (f"cell {run.cell_id}" if run.cell_id else run.short_id)


def metrics_match(before: float, after: float, rtol: float, atol: float) -> bool:
    """Equal within tolerance; NaN matches NaN and an infinity matches only itself."""
    if math.isnan(before) or math.isnan(after):
        return math.isnan(before) and math.isnan(after)
    if math.isinf(before) or math.isinf(after):
        return before == after
    return math.isclose(before, after, rel_tol=rtol, abs_tol=atol)


@dataclass(frozen=True)
class MetricChange:
    """A metric that moved beyond tolerance, appeared or disappeared."""

    cell: str
    key: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def describe(self) -> str:
        if self.before is None:
            return f"metric {self.key} ({self.cell}): new, {_num(self.after)}"
        if self.after is None:
            return f"metric {self.key} ({self.cell}): {_num(self.before)}, not logged by the rerun"
        return (
            f"metric {self.key} ({self.cell}): {_num(self.before)} -> {_num(self.after)} "
            f"(delta {_num(self.delta, signed=True)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "key": self.key,
            "before": json_float(self.before),
            "after": json_float(self.after),
            "delta": json_float(self.delta),
        }


@dataclass(frozen=True)
class DataChange:
    """A file (or DataFrame) whose version differs between the original and the rerun."""

    cell: str
    path: str
    role: str
    before: str | None
    after: str | None

    @property
    def change(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "missing"
        return "changed"

    def describe(self) -> str:
        if self.role == "input":
            if self.change == "changed":
                return (
                    f"input {self.path} ({self.cell}) no longer matches its recorded version: "
                    f"{_short(self.before)} -> {_short(self.after)}"
                )
            if self.change == "missing":
                return f"input {self.path} ({self.cell}) was not read by the rerun"
            return f"input {self.path} ({self.cell}) is new: read only by the rerun"
        if self.change == "changed":
            return (
                f"output {self.path} ({self.cell}) changed: "
                f"{_short(self.before)} -> {_short(self.after)}"
            )
        if self.change == "missing":
            return f"output {self.path} ({self.cell}) was not written by the rerun"
        return f"output {self.path} ({self.cell}) is new: written only by the rerun"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell": self.cell,
            "path": self.path,
            "role": self.role,
            "change": self.change,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class OutcomeChange:
    """A cell that ended differently, or did not run at all, in the rerun."""

    cell: str
    before: str
    after: str | None
    error: str | None = None

    def describe(self) -> str:
        if self.after is None:
            text = f"{self.cell}: did not run in the rerun (it {self.before} in the original)"
            return f"{text}; the rerun failed: {self.error}" if self.error else text
        text = f"{self.cell}: {self.before} -> {self.after}"
        return f"{text} ({self.error})" if self.error else text

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "before": self.before, "after": self.after, "error": self.error}


@dataclass
class Verdict:
    """The comparison of an original run with its rerun."""

    original: str
    rerun: str
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    metrics: list[MetricChange] = field(default_factory=list)
    outputs: list[DataChange] = field(default_factory=list)
    inputs: list[DataChange] = field(default_factory=list)
    outcomes: list[OutcomeChange] = field(default_factory=list)
    cells_compared: int = 0
    metrics_compared: int = 0
    outputs_compared: int = 0
    environment: list[str] = field(default_factory=list)
    """How the re-run's environment differs from the original's ("six 1.17.0 instead of 1.16.0")."""
    strict_env: bool = False
    """When true, any environment difference means not reproduced."""

    @property
    def reproduced(self) -> bool:
        moved = self.metrics or self.outputs or self.inputs or self.outcomes
        return not (moved or (self.strict_env and self.environment))

    @property
    def word(self) -> str:
        """The verdict in one word, as runs carry it (``rerun_verdict``)."""
        return "reproduced" if self.reproduced else "not reproduced"

    def __bool__(self) -> bool:
        return self.reproduced

    def lines(self) -> list[str]:
        """The verdict in words: one headline, then one line per thing that moved."""
        if self.reproduced:
            under = f", under {_listed(self.environment)}" if self.environment else ""
            return [
                f"reproduced{under}: {self.cells_compared} cell run(s), "
                f"{self.metrics_compared} metric(s) within rtol={_num(self.rtol)} atol={_num(self.atol)}, "
                f"{self.outputs_compared} output(s) with the same hash"
            ]
        moved: list[OutcomeChange | MetricChange | DataChange] = [
            *self.outcomes,
            *self.metrics,
            *self.outputs,
            *self.inputs,
        ]
        env = [f"  environment: {e}" for e in self.environment]
        return ["not reproduced:"] + [f"  {m.describe()}" for m in moved] + env

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "rerun": self.rerun,
            "reproduced": self.reproduced,
            "rtol": self.rtol,
            "atol": self.atol,
            "cells_compared": self.cells_compared,
            "metrics_compared": self.metrics_compared,
            "outputs_compared": self.outputs_compared,
            "metrics": [m.to_dict() for m in self.metrics],
            "outputs": [d.to_dict() for d in self.outputs],
            "inputs": [d.to_dict() for d in self.inputs],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "environment": list(self.environment),
            "strict_env": self.strict_env,
            "verdict": self.word,
        }


def _listed(changes: list[str], most: int = 3) -> str:
    shown = ", ".join(changes[:most])
    return f"{shown} and {len(changes) - most} more" if len(changes) > most else shown


def environment_changes(before: Environment | None, after: Environment | None) -> list[str]:
    """How ``after`` differs from ``before``: Python, then packages, in words."""
    if before is None or after is None or before.env_id == after.env_id:
        return []
    out = []
    if before.python != after.python:
        out.append(f"Python {after.python} instead of {before.python}")
    was, now = before.packages, after.packages
    for name in sorted(set(was) | set(now)):
        if name not in now:
            out.append(f"{name} missing ({was[name]} originally)")
        elif name not in was:
            out.append(f"{name} {now[name]} added")
        elif was[name] != now[name]:
            out.append(f"{name} {now[name]} instead of {was[name]}")
    return out


def _num(value: float | None, signed: bool = False) -> str:
    """A number as the CLI and the panel show it (numformat); ``signed`` adds ``+`` to a rise."""
    if value is None:
        return "-"
    text = format_number(value)
    return f"+{text}" if signed and value > 0 else text


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    algo, _, hexd = digest.partition(":")
    return f"{algo}:{hexd[:12]}" if hexd else digest[:16]


_MATCH_KEYS = (
    lambda run: run.cell_id,
    lambda run: (run.name, run.source) if run.source else None,
    lambda run: run.name,
)


def match_cells(original: Sequence[Run], rerun: Sequence[Run]) -> list[tuple[Run, Run | None]]:
    """Pairs (original cell run, its counterpart in the rerun or None), in original order.

    Matched by cell id, then (for runs without a shared id) by name and code, then by
    name alone. A cell executed several times pairs its n-th execution with the rerun's n-th.
    """
    todo = sorted(original, key=_start_order)
    pool = sorted(rerun, key=_start_order)
    pairs: dict[str, Run] = {}
    for key in _MATCH_KEYS:
        waiting: dict[Any, list[Run]] = defaultdict(list)
        for run in pool:
            if key(run) is not None:
                waiting[key(run)].append(run)
        for run in todo:
            k = key(run)
            if run.run_id in pairs or k is None or not waiting.get(k):
                continue
            match = waiting[k].pop(0)
            pairs[run.run_id] = match
            pool.remove(match)
    return [(run, pairs.get(run.run_id)) for run in todo]


def _start_order(run: Run) -> tuple[float, int]:
    started = run.started_at.timestamp() if run.started_at else 0.0
    return (started, run.execution_count or 0)


def _versions(run: Run, role: str) -> dict[str, DataVersion]:
    return {d.path: d for d in run.data if d.role == role}


def _environment_of(run: Run, cells: Sequence[Run]) -> Environment | None:
    """The kernel's environment: a cell run's (a notebook run records the launcher's)."""
    for cell in cells:
        if cell.environment is not None:
            return cell.environment
    return run.environment


def compare_runs(before: Run, after: Run, verdict: Verdict, label: str | None = None) -> None:
    """Add to ``verdict`` what moved between two runs of the same cell (or notebook)."""
    cell = label or cell_label(before)
    verdict.cells_compared += 1
    if before.status != after.status:
        verdict.outcomes.append(OutcomeChange(cell, before.status, after.status, after.error))
    _compare_measures(before, after, verdict, cell)


def _compare_measures(before: Run, after: Run, verdict: Verdict, cell: str) -> None:
    for key in sorted(set(before.metrics) | set(after.metrics)):
        if key.startswith("system/"):
            continue  # CPU time and memory differ on every execution: not a result
        a, b = before.metrics.get(key), after.metrics.get(key)
        if a is not None and b is not None:
            verdict.metrics_compared += 1
            if metrics_match(a, b, verdict.rtol, verdict.atol):
                continue
        verdict.metrics.append(MetricChange(cell, key, a, b))
    for role, bucket in (("output", verdict.outputs), ("input", verdict.inputs)):
        was, now = _versions(before, role), _versions(after, role)
        for path in sorted(set(was) | set(now)):
            a_hash = was[path].hash if path in was else None
            b_hash = now[path].hash if path in now else None
            if path in was and path in now and a_hash == b_hash:
                if role == "output":
                    verdict.outputs_compared += 1
                continue
            bucket.append(DataChange(cell, path, role, a_hash, b_hash))


def judge(
    original: Run,
    original_cells: Sequence[Run],
    rerun: Run,
    rerun_cells: Sequence[Run],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    strict_env: bool = False,
) -> Verdict:
    """The verdict of ``rerun`` (a notebook run) against ``original``.

    ``original`` is a cell run (``original_cells`` is then ``[original]``) or a notebook
    run with its cell runs; ``rerun_cells`` are the cell runs of the rerun.
    """
    verdict = Verdict(original.run_id, rerun.run_id, rtol, atol, strict_env=strict_env)
    verdict.environment = environment_changes(
        _environment_of(original, original_cells), _environment_of(rerun, rerun_cells)
    )
    if original.kind == "notebook":
        if original.status != rerun.status:
            verdict.outcomes.append(
                OutcomeChange("notebook", original.status, rerun.status, rerun.error)
            )
        # What the notebook run logged itself (cells log to their own runs, usually).
        _compare_measures(original, rerun, verdict, "notebook")
    for before, after in match_cells(original_cells, rerun_cells):
        if after is None:
            why = rerun.error if rerun.status != "finished" else None
            verdict.outcomes.append(OutcomeChange(cell_label(before), before.status, None, why))
            continue
        compare_runs(before, after, verdict)
    return verdict
