"""Metric gates: a small boolean expression over a run's metrics, for CI exit codes.

``acc >= 0.9 and loss < 0.2`` holds or not for a run; with a baseline run,
``delta(acc) >= -0.01`` gates on how far a metric moved. The text is parsed with
Python's ``ast`` and only an allow-list of nodes is interpreted (never ``eval``):

- metric names: identifiers (``acc``), dotted names (``SVC.training_score``), or any
  name between backticks (```system/peak_rss_mb` < 4000``);
- numbers, ``+ - * /``, unary minus, ``abs(x)``, ``min(a, b)``, ``max(a, b)``;
- comparisons (chains too: ``0.8 < acc <= 1``), ``and``, ``or``, ``not``;
- against a baseline run: ``delta(m)`` = value in the run minus value in the baseline,
  ``rdelta(m)`` = that delta divided by ``|baseline|``, ``base(m)`` = the baseline value.

A comparison with NaN is false, so a NaN metric fails the gate.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .exceptions import UsageError
from .models import Run, json_float
from .numformat import format_number

_BACKTICK = re.compile(r"`([^`]+)`")
_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_ARITH: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
}
_BASELINE_FUNCS = ("delta", "rdelta", "base")
# ``drift.columns``, ``drift.max_psi``...: the drift of the run's inputs since it read
# them (driftreport.input_drift), computed only for a gate that names one.
DRIFT_PREFIX = "drift."
_PLAIN_FUNCS = {"abs": 1, "min": 2, "max": 2}


class GateSyntaxError(UsageError):
    """A gate expression that does not parse or uses something gates do not allow."""


class GateMetricError(UsageError):
    """A gate names a metric the run (or its baseline) does not have."""


@dataclass(frozen=True)
class Gate:
    """A parsed gate expression; ``names`` maps placeholder identifiers to metric names."""

    text: str
    tree: ast.Expression
    names: dict[str, str]

    @property
    def needs_baseline(self) -> bool:
        return any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in _BASELINE_FUNCS
            for n in ast.walk(self.tree)
        )

    def metrics(self) -> list[str]:
        """Every metric name the expression reads, in order of appearance."""
        seen: dict[str, None] = {}
        _collect(self.tree.body, self.names, seen)
        return list(seen)


@dataclass
class GateResult:
    """The verdict of one gate on one run: truthy when the gate passed."""

    expression: str
    run_id: str
    passed: bool
    against: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # the top-level clauses that were false
    model: str | None = None  # the model version gated through its run, e.g. churn/3

    def __bool__(self) -> bool:
        return self.passed

    def line(self) -> str:
        """The one-line verdict a CI log shows."""
        shown = ", ".join(f"{k}={_num(v)}" for k, v in self.values.items())
        if self.against:
            shown += f"; against {self.against[:8]}: " + ", ".join(
                f"{k}={_num(v)}" for k, v in self.baseline.items()
            )
        head = f"{'PASS' if self.passed else 'FAIL'} run {self.run_id[:8]}"
        if self.model:
            head = f"{'PASS' if self.passed else 'FAIL'} model {self.model} (run {self.run_id[:8]})"
        if self.passed:
            return f"{head}: {self.expression} ({shown})"
        return f"{head}: not {'; not '.join(self.failed) or self.expression} ({shown})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "run_id": self.run_id,
            "against": self.against,
            "passed": self.passed,
            "values": {k: json_float(v) for k, v in self.values.items()},
            "baseline": {k: json_float(v) for k, v in self.baseline.items()},
            "failed": list(self.failed),
            "model": self.model,
        }


def _num(v: float) -> str:
    return format_number(v)


def parse(text: str) -> Gate:
    """Parse a gate expression (raises ``GateSyntaxError`` with what is wrong).

    >>> parse("acc >= 0.9 and `system/peak_rss_mb` < 4000").metrics()
    ['acc', 'system/peak_rss_mb']
    """
    if not isinstance(text, str) or not text.strip():
        raise GateSyntaxError("an empty gate expression")
    names: dict[str, str] = {}

    def placeholder(m: re.Match[str]) -> str:
        ident = f"__m{len(names)}"
        names[ident] = m.group(1)
        return ident

    code = _BACKTICK.sub(placeholder, text.strip())
    if "`" in code:
        raise GateSyntaxError(f"unbalanced backtick in {text!r}")
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        raise GateSyntaxError(f"cannot parse {text!r}: {exc.msg}") from None
    _check(tree.body, names)
    if not isinstance(tree.body, (ast.Compare, ast.BoolOp)) and not (
        isinstance(tree.body, ast.UnaryOp) and isinstance(tree.body.op, ast.Not)
    ):
        raise GateSyntaxError(f"{text!r} is not a condition (compare a metric, e.g. acc >= 0.9)")
    return Gate(text.strip(), tree, names)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _metric_name(node: ast.AST, names: dict[str, str]) -> str | None:
    dotted = _dotted(node)
    if dotted is None:
        return None
    return names.get(dotted, dotted)


def _check(node: ast.AST, names: dict[str, str]) -> None:
    """Refuse every node outside the allow-list."""
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
        _check(node.operand, names)
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        for v in [node.left, *node.comparators]:
            _check(v, names)
    elif (isinstance(node, ast.Constant) and type(node.value) in (int, float)) or (
        isinstance(node, (ast.Name, ast.Attribute)) and _dotted(node) is not None
    ):
        pass  # a number or a metric name
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fname = node.func.id
        if fname in _BASELINE_FUNCS:
            if len(node.args) != 1 or _metric_name(node.args[0], names) is None:
                raise GateSyntaxError(f"{fname}() takes one metric name, e.g. {fname}(acc)")
        elif fname in _PLAIN_FUNCS:
            if len(node.args) != _PLAIN_FUNCS[fname]:
                raise GateSyntaxError(f"{fname}() takes {_PLAIN_FUNCS[fname]} argument(s)")
            for a in node.args:
                _check(a, names)
        else:
            allowed = ", ".join([*_BASELINE_FUNCS, *_PLAIN_FUNCS])
            raise GateSyntaxError(f"unknown function {fname}(); gates know {allowed}")
    else:
        shown = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
        raise GateSyntaxError(f"{shown!r} is not allowed in a gate")


def _collect(node: ast.AST, names: dict[str, str], seen: dict[str, None]) -> None:
    if isinstance(node, ast.Call):
        for a in node.args:
            _collect(a, names, seen)
        return
    name = _metric_name(node, names)
    if name is not None:
        seen[name] = None
        return
    for child in ast.iter_child_nodes(node):
        _collect(child, names, seen)


class _Evaluator:
    def __init__(self, gate: Gate, metrics: dict[str, float], base: dict[str, float] | None):
        self.gate, self.metrics, self.base = gate, metrics, base
        self.values: dict[str, float] = {}
        self.baseline: dict[str, float] = {}

    def metric(self, name: str) -> float:
        if name not in self.metrics:
            known = ", ".join(sorted(self.metrics)[:12]) or "none"
            raise GateMetricError(f"the run has no metric {name!r} (it has: {known})")
        self.values[name] = self.metrics[name]
        return self.metrics[name]

    def base_metric(self, name: str) -> float:
        if self.base is None:
            raise GateSyntaxError("delta(), rdelta() and base() need a baseline run (--against)")
        if name not in self.base:
            raise GateMetricError(f"the baseline run has no metric {name!r}")
        self.baseline[name] = self.base[name]
        return self.base[name]

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.BoolOp):
            results = [bool(self.value(v)) for v in node.values]  # every clause, for the verdict
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            v = self.value(node.operand)
            if isinstance(node.op, ast.Not):
                return not v
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            return _ARITH[type(node.op)](
                float(self.value(node.left)), float(self.value(node.right))
            )
        if isinstance(node, ast.Compare):
            left = float(self.value(node.left))
            ok = True
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = float(self.value(comp))
                ok = ok and _COMPARE[type(op)](left, right)
                left = right
            return ok
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, (int, float))  # checked by the parser
            return float(node.value)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            fname = node.func.id
            if fname in _BASELINE_FUNCS:
                name = _metric_name(node.args[0], self.gate.names)
                assert name is not None
                now, then = self.metric(name), self.base_metric(name)
                if fname == "base":
                    return then
                d = now - then
                if fname == "delta":
                    return d
                return (
                    d / abs(then) if then else (math.nan if d == 0 else math.copysign(math.inf, d))
                )
            args = [float(self.value(a)) for a in node.args]
            return {
                "abs": lambda: abs(args[0]),
                "min": lambda: min(args),
                "max": lambda: max(args),
            }[fname]()
        name = _metric_name(node, self.gate.names)
        assert name is not None
        return self.metric(name)


def evaluate(
    gate: Gate,
    metrics: dict[str, float],
    *,
    run_id: str,
    baseline: dict[str, float] | None = None,
    against: str | None = None,
) -> GateResult:
    """Apply ``gate`` to a run's ``metrics`` (and a baseline's, for ``delta()``)."""
    ev = _Evaluator(gate, metrics, baseline)
    body = gate.tree.body
    clauses = (
        body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    )
    failed = []
    for clause in clauses:
        if not ev.value(clause):
            failed.append(_unplaceholder(ast.unparse(clause), gate.names))
    return GateResult(
        expression=gate.text,
        run_id=run_id,
        passed=not failed,
        against=against,
        values=ev.values,
        baseline=ev.baseline,
        failed=failed,
    )


def _unplaceholder(text: str, names: dict[str, str]) -> str:
    for ident, name in names.items():
        text = re.sub(rf"\b{re.escape(ident)}\b", f"`{name}`", text)
    return text


def run_metrics(family: list[Run]) -> dict[str, float]:
    """The metrics a gate sees for a run: its own, then its cell runs' (a notebook run)."""
    out: dict[str, float] = {}
    for r in family[1:]:
        out.update(r.metrics)
    out.update(family[0].metrics)
    return out
