"""What differs between two runs: small value objects, falsy when nothing does."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .models import (
    WHOLE_FINGERPRINT,
    DataVersion,
    NamedInput,
    Run,
    json_float,
    json_value,
    raised_what,
)

SAME, CHANGED, ADDED, REMOVED = "same", "changed", "added", "removed"


def _equal(a: Any, b: Any) -> bool:
    if _is_num(a) and _is_num(b):
        return bool(a == b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and bool(a == b)


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _kind(in_a: bool, in_b: bool, equal: bool) -> str:
    if in_a and in_b:
        return SAME if equal else CHANGED
    return REMOVED if in_a else ADDED


@dataclass(frozen=True)
class Change:
    """One named value (a parameter, a metric, a package) in run A and run B."""

    key: str
    kind: str
    a: Any = None
    b: Any = None

    @property
    def delta(self) -> float | None:
        if _is_num(self.a) and _is_num(self.b):
            return float(self.b) - float(self.a)
        return None

    def __bool__(self) -> bool:
        return self.kind != SAME

    def leaves(self) -> list[Change]:
        """A changed dict by the keys that changed (``cfg.opt.wd``), else itself: a dict
        cut to a column's width or 60 characters hides a change past its first keys."""
        a, b = self.a, self.b
        if self.kind != CHANGED or not (isinstance(a, dict) and isinstance(b, dict)):
            return [self]
        out: list[Change] = []
        for k in {**a, **b}:
            sub = Change(f"{self.key}.{k}", _kind(k in a, k in b, _equal(a.get(k), b.get(k))),
                         a.get(k), b.get(k))  # fmt: skip
            if sub:
                out.extend(sub.leaves())
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "a": json_value(self.a),
            "b": json_value(self.b),
        }
        if self.delta is not None:
            d["delta"] = json_float(self.delta)
            if _is_num(self.a) and self.a != 0 and math.isfinite(float(self.a)):
                d["relative"] = json_float(self.delta / abs(float(self.a)))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Change:
        return cls(d["key"], d["kind"], d.get("a"), d.get("b"))


@dataclass(frozen=True)
class DataChange:
    """One path a run read or wrote, in run A and run B."""

    path: str
    role: str
    kind: str
    a: DataVersion | None
    b: DataVersion | None
    detail: dict[str, Any] | None = None  # inside-the-data comparison (tabular profiles)

    def label(self, b: str = "B") -> str:
        """The change in words, run B called ``b``: a path only run A read or wrote is one
        B did not read or write ("removed" would say the file is gone; a diff cannot know)."""
        verb = "written" if self.role == "output" else "read"
        if self.kind == REMOVED:
            return f"not {verb} by {b}"
        if self.kind == ADDED:
            return f"{verb} by {b} only"
        return self.kind

    @property
    def size_delta(self) -> int | None:
        if self.a and self.b and self.a.size is not None and self.b.size is not None:
            return self.b.size - self.a.size
        return None

    def __bool__(self) -> bool:
        return self.kind != SAME

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": self.role,
            "kind": self.kind,
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
            "size_delta": self.size_delta,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataChange:
        return cls(
            d["path"],
            d["role"],
            d["kind"],
            DataVersion.from_dict(d["a"]) if d.get("a") else None,
            DataVersion.from_dict(d["b"]) if d.get("b") else None,
            d.get("detail"),
        )


@dataclass(frozen=True)
class InputChange:
    """One value a run read from the kernel namespace (not a parameter), in run A and run B.

    Changed when its type, shape, fingerprint or producing run differ.
    """

    name: str
    kind: str
    a: NamedInput | None
    b: NamedInput | None

    def __bool__(self) -> bool:
        return self.kind != SAME

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputChange:
        return cls(
            d["name"],
            d["kind"],
            NamedInput.from_dict(d["a"]) if d.get("a") else None,
            NamedInput.from_dict(d["b"]) if d.get("b") else None,
        )


@dataclass
class RunDiff:
    """Parameters, metrics, data, code, environment and outcome of run B against run A."""

    a: str
    b: str
    params: list[Change] = field(default_factory=list)
    metrics: list[Change] = field(default_factory=list)
    data: list[DataChange] = field(default_factory=list)
    code: str = ""
    environment: list[Change] = field(default_factory=list)
    outcome: list[Change] = field(default_factory=list)
    include_same: bool = False
    inputs: list[InputChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            any(self.params) or any(self.metrics) or any(self.data) or self.code
            or any(self.environment) or any(self.outcome) or any(self.inputs)
        )  # fmt: skip

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """How many of each change kind per section, e.g. ``{"params": {"changed": 1}}``."""
        out: dict[str, dict[str, int]] = {}
        sections: dict[str, list[Any]] = {
            "params": self.params,
            "metrics": self.metrics,
            "data": self.data,
            "inputs": self.inputs,
            "environment": self.environment,
            "outcome": self.outcome,
        }
        for name, items in sections.items():
            counts: dict[str, int] = {}
            for item in items:
                counts[item.kind] = counts.get(item.kind, 0) + 1
            out[name] = counts
        out["code"] = {CHANGED: 1} if self.code else {}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "differs": bool(self),
            "include_same": self.include_same,
            "params": [c.to_dict() for c in self.params],
            "metrics": [c.to_dict() for c in self.metrics],
            "data": [c.to_dict() for c in self.data],
            "inputs": [c.to_dict() for c in self.inputs],
            "code": self.code,
            "environment": [c.to_dict() for c in self.environment],
            "outcome": [c.to_dict() for c in self.outcome],
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunDiff:
        return cls(
            a=d["a"],
            b=d["b"],
            params=[Change.from_dict(x) for x in d.get("params", [])],
            metrics=[Change.from_dict(x) for x in d.get("metrics", [])],
            data=[DataChange.from_dict(x) for x in d.get("data", [])],
            inputs=[InputChange.from_dict(x) for x in d.get("inputs", [])],
            code=d.get("code", ""),
            environment=[Change.from_dict(x) for x in d.get("environment", [])],
            outcome=[Change.from_dict(x) for x in d.get("outcome", [])],
            include_same=d.get("include_same", False),
        )


def diff_values(a: dict[str, Any], b: dict[str, Any], include_same: bool) -> list[Change]:
    out = []
    for key in sorted(set(a) | set(b)):
        kind = _kind(key in a, key in b, key in a and key in b and _equal(a[key], b[key]))
        if include_same or kind != SAME:
            out.append(Change(key, kind, a.get(key), b.get(key)))
    return out


def diff_data(
    a: list[DataVersion],
    b: list[DataVersion],
    include_same: bool,
    detail: Callable[[DataVersion, DataVersion], dict[str, Any] | None] | None = None,
) -> list[DataChange]:
    da = {(d.path, d.role): d for d in a}
    db = {(d.path, d.role): d for d in b}
    out = []
    for key in sorted(set(da) | set(db), key=lambda k: (k[1], k[0])):
        va, vb = da.get(key), db.get(key)
        kind = _kind(va is not None, vb is not None, bool(va and vb and va.hash == vb.hash))
        if not include_same and kind == SAME:
            continue
        extra = None
        if kind == CHANGED and detail is not None and va and vb:
            try:
                extra = detail(va, vb)
            except Exception as exc:  # a data diff that fails must not hide the rest
                extra = {"error": f"could not compare the contents: {exc}"}
        out.append(DataChange(key[0], key[1], kind, va, vb, extra))
    return out


def diff_inputs(a: Run, b: Run, include_same: bool) -> list[InputChange]:
    """Values read from the namespace that are not parameters (those are in ``params``)."""
    ia = {i.name: i for i in a.named_inputs if i.name not in a.params}
    ib = {i.name: i for i in b.named_inputs if i.name not in b.params}
    out = []
    one_session = a.session_id is not None and a.session_id == b.session_id
    for name in sorted(set(ia) | set(ib)):
        va, vb = ia.get(name), ib.get(name)
        same = bool(va and vb and _same_input(va, vb, one_session))
        kind = _kind(va is not None, vb is not None, same)
        if include_same or kind != SAME:
            out.append(InputChange(name, kind, va, vb))
    return out


def _same_input(a: NamedInput, b: NamedInput, one_session: bool) -> bool:
    """Whether two runs read the same value: the same content, when both fingerprints
    hash it whole (two sweep points whose data cells made equal arrays read the same
    data, though other runs made them); else the same fingerprint from the same
    producer (a sampled fingerprint, ``xxh64s:``, or none, does not prove the content).
    With no fingerprint and no producing run, only the same untracked cell execution of
    one kernel session is the same making: the twelfth trial's model holding a lambda,
    made again by an untracked cell, read the same."""
    if (a.type, a.shape, a.fingerprint) != (b.type, b.shape, b.fingerprint):
        return False
    if a.fingerprint is not None and a.fingerprint.startswith(WHOLE_FINGERPRINT):
        return True
    if a.producer_run_id != b.producer_run_id:
        return False
    if a.fingerprint is None and a.producer_run_id is None:
        return one_session and a.execution_count == b.execution_count
    return True


def diff_code(a: Run, b: Run) -> str:
    src_a, src_b = a.source or "", b.source or ""
    if src_a == src_b:
        return ""
    lines = difflib.unified_diff(
        src_a.splitlines(keepends=True),
        src_b.splitlines(keepends=True),
        fromfile=f"run {a.run_id[:8]}",
        tofile=f"run {b.run_id[:8]}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def diff_environment(a: Run, b: Run, include_same: bool) -> list[Change]:
    ea, eb = a.environment, b.environment
    if ea is None or eb is None:
        return []
    base = diff_values(
        {"python": ea.python, "platform": ea.platform},
        {"python": eb.python, "platform": eb.platform},
        include_same,
    )
    # Packages are many: only the ones that differ, even with include_same. Two runs
    # of one kernel have equal dicts, and comparing them whole is what keeps the
    # summary under each tracked cell cheap.
    packages = [] if ea.packages == eb.packages else diff_values(ea.packages, eb.packages, False)
    return base + [Change("package " + c.key, c.kind, c.a, c.b) for c in packages]


def with_cells(run: Run, children: Callable[[str], list[Run]]) -> Run:
    """A notebook run as a diff compares it: with the metrics its cell runs logged (a later
    cell wins a name logged twice, the notebook run's own last: the sweep table's rule) and
    the files they read and wrote (a later version of a path wins). Other runs as they are."""
    if run.kind != "notebook":
        return run
    metrics: dict[str, float] = {}
    data: dict[tuple[str, str], DataVersion] = {}
    for r in [*children(run.run_id), run]:  # oldest first
        metrics.update(r.metrics)
        data.update({(d.path, d.role): d for d in r.data})
    return replace(run, metrics=metrics, data=list(data.values()))


def diff_runs(
    a: Run,
    b: Run,
    *,
    include_same: bool = False,
    data_detail: Callable[[DataVersion, DataVersion], dict[str, Any] | None] | None = None,
    code_detail: Callable[[Run, Run], str] | None = None,
) -> RunDiff:
    """The diff of two runs; ``data_detail`` compares the inside of changed files,
    ``code_detail`` the notebook code the cells call (codediff.py)."""
    return RunDiff(
        a=a.run_id,
        b=b.run_id,
        params=diff_values(a.params, b.params, include_same),
        metrics=diff_values(a.metrics, b.metrics, include_same),
        data=diff_data(a.data, b.data, include_same, data_detail),
        inputs=diff_inputs(a, b, include_same),
        code=diff_code(a, b) + (code_detail(a, b) if code_detail is not None else ""),
        environment=diff_environment(a, b, include_same),
        outcome=diff_values(
            {"status": a.status, "error": raised_what(a.error)},
            {"status": b.status, "error": raised_what(b.error)},
            include_same,
        ),
        include_same=include_same,
    )
