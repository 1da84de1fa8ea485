"""Kernel values as a run records them: parameter-like or not, described, fingerprinted.

A value a cell reads is *parameter-like* when it is small and plain (numbers, bools,
short strings, None, numpy scalars, enums, paths, dates and times (as ISO 8601 text),
and small lists/tuples/dicts of these, or config objects holding them: ``argparse.Namespace``, ``SimpleNamespace``, a
dataclass or attrs instance, recorded as the dict of their fields): its value is recorded. Anything else (DataFrames, arrays, models) is recorded
by its type, shape and a cheap content fingerprint, computed within a time budget.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import numbers
import os
import sys
import time
import types
from dataclasses import dataclass
from typing import Any

import xxhash

from .models import SAMPLED_FINGERPRINT, WHOLE_FINGERPRINT
from .modstamps import library_file
from .picklehash import GiveUp, hash_pickle

MAX_STRING = 1000  # characters of a string parameter
MAX_ITEMS = 50  # items of a list/tuple/dict parameter (a dict of settings: MAX_FIELDS)
MAX_FIELDS = 256  # fields of a config object (HuggingFace's TrainingArguments has ~120)
MAX_DEPTH = 3
SAMPLE_BYTES = 2 << 20  # an array/frame larger than this is fingerprinted from a sample
FINGERPRINT_BUDGET = 0.05  # seconds; past it the fingerprint is given up (with a note)
MAX_SERIES = 1_000_000  # points of a -m series

_NOT_INPUTS = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
               types.MethodType, type(functools.lru_cache(len)))  # fmt: skip
_ABSENT = object()
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
    return isinstance(value, _NOT_INPUTS) or _library_own(name, value)


def _library_own(name: str, value: Any) -> bool:
    """``from numpy import s_``, ``from ipywidgets import interact``: an installed
    library's own object under its own name is code, as its functions are (the fifteenth
    trial's runs read "s_ (IndexExpression)"). Looked up in the modules of its class, up
    to the package, without their ``__getattr__`` (which may import or warn)."""
    module = getattr(type(value), "__module__", None)
    if not isinstance(module, str) or module in ("builtins", "__main__"):
        return False
    while module:
        found = getattr(sys.modules.get(module), "__dict__", {}).get(name, _ABSENT)
        if found is value:
            path = getattr(sys.modules[module], "__file__", None)
            return isinstance(path, str) and library_file(path)
        module = module.rpartition(".")[0]
    return False


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
    if isinstance(value, datetime.timedelta):  # its length: lookback = timedelta(days=3)
        return True, str(value)
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
    if isinstance(value, dict):  # a settings dict (text keys) is as wide as a config object
        wide = depth == 0 and all(isinstance(k, str) for k in value)
        return _plain_dict(value, depth, MAX_FIELDS if wide else MAX_ITEMS)
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


def closure_settings(fn: Any) -> dict[str, Any] | None:
    """The parameter-like values a closure holds (``make_objective(2.0)``'s ``a``), by
    the names its code gives them, or None.

    >>> closure_settings((lambda a: lambda x: a * x)(2.0))
    {'a': 2.0}
    """
    if issubclass(type(fn), functools.partial):
        return _partial_settings(fn)
    names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
    out = {}
    for name, cell in zip(names, getattr(fn, "__closure__", None) or (), strict=False):
        try:
            ok, plain = param_value(cell.cell_contents, 1)
        except Exception:  # an empty cell; a value whose comparison raises
            continue
        if ok:
            out[name] = plain
    return out or None


def holds_settings(fn: Any) -> bool:
    """Whether ``fn`` holds values it was made with: a closure, or a ``functools.partial``."""
    kind = type(fn)  # (not the object's own attributes: a hostile __getattr__ raises)
    if issubclass(kind, functools.partial):
        return True
    if not issubclass(kind, (types.FunctionType, types.MethodType)) or not fn.__closure__:
        return False
    # A library's own wrapper (scikit-learn's `validate_params` around every metric) holds
    # the library's settings, not values the notebook made it with.
    return not library_file(fn.__code__.co_filename)


def _partial_settings(fn: functools.partial[Any]) -> dict[str, Any] | None:
    """The parameter-like arguments a partial holds, by the names its function gives them
    (``partial(math.pow, 3)`` holds ``x=3``; by position, ``0``, when it has no signature):
    the trial's ``partial(step, lr=0.9)`` was a named input, its ``lr`` recorded nowhere.

    >>> _partial_settings(functools.partial(round, ndigits=2))
    {'ndigits': 2}
    """
    import inspect

    try:
        given = dict(inspect.signature(fn.func).bind_partial(*fn.args, **fn.keywords).arguments)
    except (TypeError, ValueError):  # no signature, or one the partial does not fit
        given = {**{str(i): a for i, a in enumerate(fn.args)}, **fn.keywords}
    out = {}
    for name, value in given.items():
        try:
            ok, plain = param_value(value, 1)
        except Exception:  # a value whose comparison raises
            continue
        if ok:
            out[name] = plain
    return out or None


def declared_config(value: Any) -> bool:
    """Whether ``value`` is a config object by its type's say: a namespace, a dataclass
    or attrs instance, a named tuple, with fields; not any object of a notebook class
    (``AverageMeter()``, ``Trainer()``: state, whose fields a config's look like)."""
    if not config_fields(value) or isinstance(value, type):
        return False
    cls = type(value)
    plain = cls.__module__ == "__main__" and not isinstance(value, tuple)
    return not plain or dataclasses.is_dataclass(value) or _attrs_fields(cls) is not None


def written_value(value: Any) -> bool:
    """Whether ``value`` is a setting a constructor of literals writes: a date, a path, a
    Decimal, a numpy scalar (``date(2024, 1, 1)``, ``Path("data")``); not a builtin
    number or text, which a call of literals computes (``round(2.5)``), nor a container."""
    if type(value) in (bool, int, float, str, bytes) or value is None:
        return False
    if isinstance(value, (list, tuple, dict, set)) or config_fields(value) is not None:
        return False
    return param_value(value)[0]


def _dtype_or_device(value: Any) -> bool:
    """A dtype or device is a setting (``TrainingArguments``-like configs hold them)."""
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, (torch.dtype, torch.device)):
        return True
    return np is not None and isinstance(value, np.dtype)


def config_fields(value: Any) -> dict[str, Any] | None:
    """The fields of a config object, or None for anything else.

    ``argparse.Namespace`` and ``types.SimpleNamespace`` (``args.lr``) and dataclass
    and attrs instances (``conf.seed``) and named tuples (``Cfg(lr=0.2)``) are how notebooks copied
    from scripts hold their settings; a class the notebook defines (Kaggle's ``class CFG:
    lr = 1e-3``, read as ``CFG.lr``) gives its parameter-like class attributes, inherited
    ones too, if it has any; an instance of one (``hp = HP()``, ``Trainer(lr=0.1)``)
    those and its own attributes.

    >>> config_fields(types.SimpleNamespace(lr=0.1, epochs=5))
    {'lr': 0.1, 'epochs': 5}
    """
    argparse = sys.modules.get("argparse")
    if isinstance(value, types.SimpleNamespace) or (
        argparse is not None and isinstance(value, argparse.Namespace)
    ):
        return dict(vars(value))
    names = getattr(type(value), "_fields", None)  # a NamedTuple: its fields by name, not
    if isinstance(value, tuple) and isinstance(names, tuple):  # [0.2, 3] (the trial)
        return dict(zip(names, value, strict=False))
    if isinstance(value, type):  # (a dataclass's class attributes: defaults, not settings;
        # an Enum's members: the choices, of which the member read is the setting)
        plain = value.__module__ == "__main__" and not dataclasses.is_dataclass(value)
        plain = plain and not issubclass(value, enum.Enum) and not _attrs_fields(value)
        return _class_settings(value) if plain else None
    cls = type(value)
    names = _attrs_fields(cls) or (  # attrs' classes (slotted: no __dict__ to read) too
        [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else None
    )
    if names:
        try:
            return {n: getattr(value, n) for n in names}
        except AttributeError:  # a slot never set: not a plain config
            return None
    if cls.__module__ == "__main__" and isinstance(getattr(value, "__dict__", None), dict):
        fields = {**(_class_settings(cls) or {}), **vars(value)}
        return fields or None
    return None


def _attrs_fields(cls: type) -> list[str] | None:
    """The field names of a class made by ``attrs`` (``@attrs.define``), else None."""
    fields = getattr(cls, "__attrs_attrs__", None)
    if not isinstance(fields, tuple):
        return None
    return [name for f in fields if isinstance(name := getattr(f, "name", None), str)] or None


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
    if isinstance(value, types.GeneratorType):  # no pickle: where it stands, as a range's
        frame = value.gi_frame  # (its place in its code and its plain locals; None: spent)
        here = frame and (frame.f_lasti, [(k, v) for k, v in frame.f_locals.items() if _plain(v)])
        h.update(repr(here).encode())
        return _done(h, False)
    # Anything else (a model, a dict of arrays, a tensor): its pickle, streamed into the
    # hash and given up past the byte limit or the deadline (picklehash.py).
    try:
        sampled = hash_pickle(value, h, deadline, SAMPLE_BYTES)
    except GiveUp as exc:
        return None, f"not fingerprinted: {exc}"
    except Exception as exc:
        return None, f"not fingerprinted: cannot pickle ({type(exc).__name__})"
    return _done(h, sampled)


def _plain(value: Any) -> bool:
    try:
        return param_value(value)[0]
    except Exception:  # a value whose __eq__/__len__ raises is not plain
        return False


def _done(h: Any, sampled: bool) -> tuple[str | None, str | None]:
    return (SAMPLED_FINGERPRINT if sampled else WHOLE_FINGERPRINT) + h.hexdigest(), None
