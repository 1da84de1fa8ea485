"""Kernel values as a run records them: parameter-like or not, described, fingerprinted.

A value a cell reads is *parameter-like* when it is small and plain (numbers, bools,
short strings, None, numpy scalars, enums, paths, dates and times (as ISO 8601 text),
and small lists/tuples/dicts of these, or config objects holding them: ``argparse.Namespace``, ``SimpleNamespace``, a
dataclass instance, recorded as the dict of their fields): its value is recorded. Anything else (DataFrames, arrays, models) is recorded
by its type, shape and a cheap content fingerprint, computed within a time budget.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import functools
import numbers
import os
import sys
import time
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import xxhash

from .models import SAMPLED_FINGERPRINT, WHOLE_FINGERPRINT
from .picklehash import GiveUp, hash_pickle
from .validation import narrow_float

MAX_STRING = 1000  # characters of a string parameter
MAX_ITEMS = 50  # items of a list/tuple/dict parameter
MAX_FIELDS = 256  # fields of a config object (HuggingFace's TrainingArguments has ~120)
MAX_DEPTH = 3
SAMPLE_BYTES = 2 << 20  # an array/frame larger than this is fingerprinted from a sample
FINGERPRINT_BUDGET = 0.05  # seconds; past it the fingerprint is given up (with a note)
MAX_SERIES = 1_000_000  # points of a -m series

_NOT_INPUTS = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
               types.MethodType, type(functools.lru_cache(len)))  # fmt: skip
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "_", "__", "___",
                            "_ih", "_oh", "_dh", "_i", "_ii", "_iii", "_exit_code"})  # fmt: skip


def is_ignored(name: str, value: Any) -> bool:
    """Names that are not inputs: IPython's own, modules, functions, classes."""
    if name in _IPYTHON_NAMES or name.startswith("__"):
        return True
    if name[0] == "_" and (name[1:].isdigit() or name[1:2] == "i" and name[2:].isdigit()):
        return True  # _12, _i12: IPython's output/input history
    if isinstance(value, type):  # a notebook's `class CFG: lr = 1e-3` is its settings
        return config_fields(value) is None
    return isinstance(value, _NOT_INPUTS)


def param_value(value: Any, depth: int = 0) -> tuple[bool, Any]:
    """``(True, plain value)`` for a parameter-like value, else ``(False, None)``.

    >>> param_value(3), param_value("adam"), param_value([64, 32])
    ((True, 3), (True, 'adam'), (True, [64, 32]))
    >>> param_value(list(range(1000)))
    (False, None)
    """
    if value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, enum.Enum):
        return True, str(value)
    if isinstance(value, numbers.Real) or numpy_scalar(value):
        return _number(value)
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        return _exact_number(value)  # a Decimal
    if isinstance(value, str):
        return (True, value) if len(value) <= MAX_STRING else (False, None)
    if isinstance(value, os.PathLike):
        return True, os.fspath(value)
    if isinstance(value, (datetime.date, datetime.time)):  # a datetime is a date too
        return True, value.isoformat()  # a training window: start = date(2024, 1, 1)
    if _dtype_or_device(value):  # torch.float16, torch.device("cuda"), np.dtype("f4")
        return True, str(value)
    if depth >= MAX_DEPTH:
        return False, None
    fields = config_fields(value)
    if fields is not None:  # a config object is the dict of its fields, as W&B's config takes it
        return _plain_dict(fields, depth, MAX_FIELDS)
    if isinstance(value, (list, tuple)) and len(value) <= MAX_ITEMS:
        out = []
        for v in value:
            ok, plain = param_value(v, depth + 1)
            if not ok:
                return False, None
            out.append(plain)
        return True, out if isinstance(value, list) else tuple(out)
    if isinstance(value, dict):
        return _plain_dict(value, depth, MAX_ITEMS)
    return False, None


def _plain_dict(value: dict[Any, Any], depth: int, limit: int) -> tuple[bool, Any]:
    if len(value) > limit:
        return False, None
    d = {}
    for k, v in value.items():
        ok, plain = param_value(v, depth + 1)
        if not ok or not isinstance(k, (str, int, float, bool)):
            return False, None
        d[str(k)] = plain
    return True, d


def _dtype_or_device(value: Any) -> bool:
    """A dtype or device is a setting (``TrainingArguments``-like configs hold them)."""
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, (torch.dtype, torch.device)):
        return True
    return np is not None and isinstance(value, np.dtype)


def config_fields(value: Any) -> dict[str, Any] | None:
    """The fields of a config object, or None for anything else.

    ``argparse.Namespace`` and ``types.SimpleNamespace`` (``args.lr``) and dataclass
    instances (``conf.seed``) are how notebooks copied from scripts hold their settings;
    a class the notebook defines (Kaggle's ``class CFG: lr = 1e-3``, read as ``CFG.lr``)
    gives its parameter-like class attributes, inherited ones too, if it has any; an
    instance of one (``hp = HP()``, ``Trainer(lr=0.1)``) those and its own attributes.

    >>> config_fields(types.SimpleNamespace(lr=0.1, epochs=5))
    {'lr': 0.1, 'epochs': 5}
    """
    argparse = sys.modules.get("argparse")
    if isinstance(value, types.SimpleNamespace) or (
        argparse is not None and isinstance(value, argparse.Namespace)
    ):
        return dict(vars(value))
    if isinstance(value, type):  # (a dataclass's class attributes: defaults, not settings)
        plain = value.__module__ == "__main__" and not dataclasses.is_dataclass(value)
        return _class_settings(value) if plain else None
    if dataclasses.is_dataclass(value):
        try:
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        except AttributeError:  # a slot never set: not a plain config
            return None
    cls = type(value)
    if cls.__module__ == "__main__" and isinstance(getattr(value, "__dict__", None), dict):
        fields = {**(_class_settings(cls) or {}), **vars(value)}
        return fields or None
    return None


def _class_settings(cls: type) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        if base.__module__ != "__main__":
            continue
        for k, v in vars(base).items():
            if not k.startswith("_") and param_value(v, 1)[0]:
                out[k] = v
    return out or None


def numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0


def _number(value: Any) -> tuple[bool, Any]:
    try:
        item = value.item() if hasattr(value, "item") else value
    except (TypeError, ValueError):
        return False, None
    if isinstance(item, float) and getattr(value, "itemsize", 8) < 8:
        # float32/float16: the number written (0.1), not its exact value widened
        # (0.10000000149011612), which --where "lr = 0.1" and a diff with 0.1 missed.
        item = float(str(value))
    if isinstance(item, (bool, int, float)):
        return True, item
    return _exact_number(item)  # a Fraction


def _exact_number(value: Any) -> tuple[bool, Any]:
    """A ``Decimal`` or ``Fraction`` as the float that holds it exactly (Decimal("0.05"):
    0.05, Fraction(1, 2): 0.5), else as its text ("1/3"): JSON has no such numbers, and
    the eighth trial's ``RATE = Decimal("0.05")`` was an opaque named input."""
    try:
        f = float(value)
        exact = type(value)(repr(f)) == value
    except (TypeError, ValueError, ArithmeticError):
        return False, None
    return True, f if exact else str(value)


@dataclass(frozen=True)
class Description:
    """What a non-parameter value is: its type, shape and content fingerprint."""

    type: str
    shape: str | None
    fingerprint: str | None
    note: str | None = None  # why there is no fingerprint


def type_name(value: Any) -> str:
    t = type(value)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", "__main__") else f"{mod}.{t.__qualname__}"


def describe(value: Any, budget: float = FINGERPRINT_BUDGET) -> Description:
    """Type, shape and fingerprint of ``value``; never longer than about ``budget`` seconds."""
    shape = _shape(value)
    try:
        fp, note = _fingerprint(value, time.perf_counter() + budget)
    except Exception as exc:  # a value that refuses to be read is recorded by its type
        fp, note = None, f"not fingerprinted: {type(exc).__name__}"
    return Description(type_name(value), shape, fp, note)


def _shape(value: Any) -> str | None:
    try:
        shape = getattr(value, "shape", None)
        if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
            return "×".join(str(n) for n in shape) or "()"
        if isinstance(value, (list, tuple, dict, set, frozenset, str, bytes)):
            return str(len(value))
    except Exception:  # a property that raises: no shape
        return None
    return None


def _fingerprint(value: Any, deadline: float) -> tuple[str | None, str | None]:
    h = xxhash.xxh3_64()
    h.update(type_name(value).encode())
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if pd is not None and not hasattr(pd, "Series"):
        pd = None  # being imported by another thread (the ingestor's Arrow): not usable yet
    if pd is not None and isinstance(value, (pd.DataFrame, pd.Series)):
        h.update(repr(value.dtypes if isinstance(value, pd.DataFrame) else value.dtype).encode())
        h.update(repr(list(getattr(value, "columns", []))).encode())
        h.update(repr(value.shape).encode())
        frame = value
        rows = len(frame)
        step = max(1, rows * max(1, frame.shape[1] if frame.ndim == 2 else 1) * 8 // SAMPLE_BYTES)
        sample = frame.iloc[::step] if step > 1 else frame
        h.update(pd.util.hash_pandas_object(sample, index=True).to_numpy().tobytes())
        return _done(h, step > 1)
    if np is not None and isinstance(value, np.ndarray):
        h.update(f"{value.dtype}{value.shape}".encode())
        if value.dtype.hasobject:
            return None, "not fingerprinted: an array of Python objects"
        flat = value.reshape(-1)
        step = max(1, value.nbytes // SAMPLE_BYTES)
        h.update(np.ascontiguousarray(flat[::step]).view(np.uint8).data)
        return _done(h, step > 1)
    if isinstance(value, (bytes, bytearray, memoryview)):
        view = memoryview(value).cast("B")
        step = max(1, len(view) // SAMPLE_BYTES)
        h.update(bytes(view[::step]) if step > 1 else view)
        return _done(h, step > 1)
    # Anything else (a model, a dict of arrays, a tensor): its pickle, streamed into the
    # hash and given up past the byte limit or the deadline (picklehash.py).
    try:
        sampled = hash_pickle(value, h, deadline, SAMPLE_BYTES)
    except GiveUp as exc:
        return None, f"not fingerprinted: {exc}"
    except Exception as exc:
        return None, f"not fingerprinted: cannot pickle ({type(exc).__name__})"
    return _done(h, sampled)


def _done(h: Any, sampled: bool) -> tuple[str | None, str | None]:
    return (SAMPLED_FINGERPRINT if sampled else WHOLE_FINGERPRINT) + h.hexdigest(), None


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

    def __init__(self, names: Iterable[str], ns: dict[str, Any]) -> None:
        self._before = {n: (ns[n], _snapshot(ns[n])) for n in names if n in ns}

    def why_not(self, name: str, ns: dict[str, Any], bound: bool) -> str | None:
        """Why ``name`` is not recorded after the cell, or None."""
        if name not in ns:
            return f"no variable {name!r} after the cell"
        if self.unchanged(name, ns[name], bound):
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
