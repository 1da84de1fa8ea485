"""A ``-m`` variable as metrics: a number, a series, a dict of them, as a run logs them.

Split from ``values.py`` (what a cell reads); both decide what a kernel value is to a run.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
import sys
from collections.abc import Iterable
from typing import Any

from .astwalk import bound_before, surely_bound
from .validation import narrow_float
from .values import MAX_DEPTH, MAX_SERIES, numpy_scalar, type_name


def metric_values(
    name: str, value: Any
) -> tuple[dict[str, float], dict[str, list[float]], str | None]:
    """A ``-m`` variable as metrics: ``(scalars, series by name, why not a metric)``.

    A number is one metric; a list/tuple/1-d array of numbers is a series; a dict is
    flattened (``report.f1``, nested with dots; a leaf that is a list of numbers is a
    series: ``cross_validate``'s ``{'test_score': array([...])}``), its other leaves
    named in the third item.

    >>> metric_values("report", {"f1": 0.8, "macro": {"recall": 0.5}, "label": "a"})
    ({'report.f1': 0.8, 'report.macro.recall': 0.5}, {}, 'report.label (a str)')
    >>> metric_values("losses", [0.5, 0.25])
    ({}, {'losses': [0.5, 0.25]}, None)
    >>> metric_values("cv", {"test_score": [0.9, 0.8]})
    ({}, {'cv.test_score': [0.9, 0.8]}, None)
    >>> metric_values("name", "svc")[2]
    'a str'
    """
    value = _labelled(_scalar(value))
    if _is_number(value):
        return {name: _as_float(value)}, {}, None
    if isinstance(value, dict):
        flat: dict[str, float] = {}
        series: dict[str, list[float]] = {}
        skipped: list[str] = []
        _flatten(name, value, flat, series, 0, skipped)
        if not flat and not series:
            return {}, {}, "a dict without numbers"
        more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        return flat, series, (", ".join(skipped[:3]) + more) if skipped else None
    points, why = _series(value)
    return {}, ({name: points} if points is not None else {}), why


def _labelled(value: Any) -> Any:
    """A pandas Series as the metrics it holds: by label (``df.mean()``, ``{'acc': 0.9}``),
    or, numbered 0, 1, … (``pd.Series(cross_val_score(...))``), as its array."""
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(value, pd.Series):
        return value
    if isinstance(value.index, pd.RangeIndex) and value.index.start == 0 and value.index.step == 1:
        return value.to_numpy()
    return {str(k): v for k, v in value.items()}


def _series(value: Any) -> tuple[list[float] | None, str | None]:
    """A list/tuple/1-d array of numbers (0-d tensors too) as a series, or why not."""
    value = _labelled(value)
    np = sys.modules.get("numpy")
    if np is not None and _tensor(value, np):  # torch.stack(losses): as its array
        with contextlib.suppress(Exception):  # one that cannot leave its device: no metric
            value = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    if np is not None and isinstance(value, np.ndarray):
        if value.ndim != 1 or value.dtype.kind not in "biuf":
            return None, f"an array of shape {value.shape} and dtype {value.dtype}"
        narrow = value.dtype.kind == "f" and value.dtype.itemsize < 8 and len(value) <= MAX_SERIES
        value = list(value) if narrow else value.tolist()  # float32: each as written
    if isinstance(value, (list, tuple)):
        if not value:
            return None, "an empty list"
        if len(value) > MAX_SERIES:
            return None, f"a list longer than {MAX_SERIES:,d} points"
        if not all(_is_number(v) for v in value):
            value = [_scalar(v) for v in value]  # a list of 0-d tensors (losses.append(loss))
        if all(_is_number(v) for v in value):
            return [_as_float(v) for v in value], None
        return None, "a list with items that are not numbers"
    return None, f"a {type_name(value)}"


class MetricVars:
    """The ``-m`` variables as the cell found them: one the cell neither bound nor changed
    holds a value from before it (``-m acc`` on a cell that never set ``acc``)."""

    def __init__(self, names: Iterable[str], ns: dict[str, Any], source: str = "") -> None:
        self._before = {n: (ns[n], _snapshot(ns[n])) for n in names if n in ns}
        self._source = source

    def why_not(
        self, name: str, ns: dict[str, Any], bound: bool, finished: bool, line: int | None = None
    ) -> str | None:
        """Why ``name`` is not recorded after the cell, or None. A cell that finished ran
        the assignments on all its paths, whatever object they gave: ``acc =
        results["acc"]`` run again binds the very float the name held (the twelfth trial
        lost such a metric on every run after the first). ``line``: where a failed cell
        stopped, in its code."""
        if name not in ns:
            return f"no variable {name!r} after the cell"
        if finished and name in surely_bound(self._source):
            return None
        if line is not None and not finished and not bound_before(self._source, name, line):
            return "not recorded: the cell stopped before it set it"  # (`n = 10` before too)
        if self.unchanged(name, ns[name], bound):
            # A cell that raised stopped before it: "did not change it" reads as a cell
            # that ran through without setting it (the fourteenth trial).
            if not finished:
                return "not recorded: the cell stopped before it set it"
            return "not recorded: the cell did not change it"
        return None

    def unchanged(self, name: str, value: Any, bound: bool) -> bool:
        """Whether ``name`` still holds, untouched, the object it held when the cell began.
        ``bound``: the cell's code assigns it somewhere; then only a value no assignment
        could give again (a float, a list, a dict, an array: a new object each time) says
        the assignment did not run (``if False: acc = 0.1``); small ints and strings are
        shared objects, so for them it counts as a change."""
        before = self._before.get(name)
        if before is None or value is not before[0] or before[1] is _UNKNOWN:
            return False
        if bound and isinstance(value, (int, str, bytes)):
            return False
        try:
            np = sys.modules.get("numpy")
            if np is not None and isinstance(value, np.ndarray):
                return bool(np.array_equal(before[1], value))
            return bool(before[1] == value)
        except Exception:  # an odd __eq__: say changed, and record it
            return False


_UNKNOWN = object()


def _snapshot(value: Any) -> Any:
    """A copy to compare with after the cell (lists, dicts and arrays change in place)."""
    if _is_number(value):
        return value
    try:
        if isinstance(value, (list, tuple, dict)) and len(value) <= MAX_SERIES:
            return copy.deepcopy(value)
        np = sys.modules.get("numpy")
        if np is not None and isinstance(value, np.ndarray) and value.size <= MAX_SERIES:
            return value.copy()
    except Exception:  # noqa: S110 - a value that cannot be copied: never "unchanged"
        pass
    return _UNKNOWN


def _flatten(
    prefix: str,
    d: dict[Any, Any],
    out: dict[str, float],
    series: dict[str, list[float]],
    depth: int,
    skipped: list[str],
) -> None:
    for k, v in d.items():
        key = f"{prefix}.{k}"
        v = _scalar(v)
        if _is_number(v):
            out[key] = _as_float(v)
        elif isinstance(v, dict) and depth < MAX_DEPTH:
            _flatten(key, v, out, series, depth + 1, skipped)
        elif isinstance(v, dict):
            skipped.append(f"{key} (a deeper dict)")
        else:
            points, why = _series(v)
            if points is not None:
                series[key] = points
            else:
                skipped.append(f"{key} ({why})")


def _scalar(v: Any) -> Any:
    """A 0-d tensor (PyTorch, JAX, TensorFlow: ``loss`` after ``loss.backward()``) as its
    Python number, as ``log_metric`` takes it; anything else as it is."""
    if getattr(v, "ndim", None) == 0 and not numpy_scalar(v) and callable(getattr(v, "item", None)):
        try:
            item = v.item()
        except Exception:  # a tensor that cannot leave its device, say: not a metric
            return v
        return item if _is_number(item) else v
    return v


def _tensor(v: Any, np: Any) -> bool:
    """A 1-d tensor of another library (PyTorch, JAX, TensorFlow), not numpy's own."""
    return getattr(v, "ndim", None) == 1 and not isinstance(v, np.ndarray) and hasattr(v, "dtype")


def _as_float(v: Any) -> float:
    narrow = narrow_float(v)  # np.float32(0.9) as 0.9, as a parameter is
    return float(v) if narrow is None else narrow


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Real):
        return True
    dec = sys.modules.get("decimal")  # a Decimal is a number, not a Real (-m total)
    if dec is not None and isinstance(v, dec.Decimal):
        return True
    return numpy_scalar(v) and getattr(getattr(v, "dtype", None), "kind", "") in "iuf"


def stopped_at(error: BaseException | None, ns: dict[str, Any]) -> int | None:
    """The line of the cell's own code where ``error`` stopped it (its last frame run in
    the namespace at top level), or None."""
    tb, line = error.__traceback__ if error is not None else None, None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals is ns and frame.f_code.co_name == "<module>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
