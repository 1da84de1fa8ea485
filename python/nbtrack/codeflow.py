"""What code the notebook defined earlier reads: followed through its compiled code.

A cell that calls ``train()``, defined in an earlier cell as ``def train(): return
SVC(gamma=gamma)``, reads ``gamma``. Functions whose globals are the kernel
namespace, classes defined in it, their instances and methods are followed
transitively through ``LOAD_GLOBAL``/``STORE_GLOBAL`` of every nested code object
(cached per code object), up to a bound.
"""

from __future__ import annotations

import builtins
import dis
import functools
import types
from collections.abc import Iterable, Mapping
from typing import Any

from .exprfacts import AT_CALLS, text_names

BUILTINS = frozenset(dir(builtins))
FOLLOW_LIMIT = 200  # notebook functions/classes followed per cell, at most
_CODE_CACHE_LIMIT = 4096
_WRAP_DEPTH = 8  # decorators stacked on one function, at most
_REGISTRY_LIMIT = 32  # functions in a dict/list/tuple of code, at most

_code_names: dict[types.CodeType, tuple[frozenset[str], frozenset[str]]] = {}


def code_globals(code: types.CodeType) -> tuple[frozenset[str], frozenset[str]]:
    """``(globals read, globals bound)`` by a compiled function, nested code included."""
    found = _code_names.get(code)
    if found is not None:
        return found
    loads: set[str] = set()
    stores: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        for ins in dis.get_instructions(c):
            op = ins.opname
            if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                loads.add(str(ins.argval))
            elif op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                stores.add(str(ins.argval))
        if AT_CALLS.intersection(c.co_names):  # df.query("x > @limit") reads limit
            loads.update(n for k in c.co_consts if isinstance(k, str) for n in text_names(k))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    if len(_code_names) >= _CODE_CACHE_LIMIT:
        _code_names.clear()
    found = _code_names[code] = (frozenset(loads), frozenset(stores))
    return found


def _functions_of(obj: Any, ns: Mapping[str, Any], depth: int = 0) -> list[types.FunctionType]:
    """The notebook-defined functions behind ``obj``: itself, its methods, its class's,
    and the function a decorator wraps (``@functools.wraps``' ``__wrapped__``,
    ``lru_cache``, a wrapper's closure): ``@timed def train(): return gamma`` runs
    ``train``, whose ``gamma`` the seventh trial saw recorded not at all."""
    if depth > _WRAP_DEPTH:
        return []
    if type(obj) in (dict, list, tuple):
        return _registry(obj, ns, depth)
    wrapped = _wrapped(obj, ns, depth)
    if isinstance(obj, types.FunctionType):
        return [obj, *wrapped] if obj.__globals__ is ns else wrapped
    if isinstance(obj, types.MethodType):
        return _functions_of(obj.__func__, ns, depth + 1)
    if isinstance(obj, functools.partial):  # partial(step, g=1.0) runs step
        return _functions_of(obj.func, ns, depth + 1)
    if wrapped:
        return wrapped
    cls = obj if isinstance(obj, type) else type(obj)
    if getattr(cls, "__module__", None) != ns.get("__name__", "__main__"):
        return []
    out: list[types.FunctionType] = []
    for klass in cls.__mro__:
        if getattr(klass, "__module__", None) != ns.get("__name__", "__main__"):
            continue
        for member in vars(klass).values():
            inner = getattr(member, "__func__", None) or getattr(member, "fget", None) or member
            if isinstance(inner, types.FunctionType) and inner.__globals__ is ns:
                out.append(inner)
    return out


def _registry(obj: Any, ns: Mapping[str, Any], depth: int) -> list[types.FunctionType]:
    """The functions of a dict, list or tuple that holds only notebook code (``acts =
    {"relu": relu, "id": lambda x: x * gain}``), else none: a registry of code, whose
    functions read their globals when called (the eighteenth trial's ``acts`` was "stale"
    once ``gain`` changed, and ``gain`` no parameter, though the cell used the new one)."""
    if not 0 < len(obj) <= _REGISTRY_LIMIT:  # (a big container is data)
        return []
    items = list(obj.values() if isinstance(obj, dict) else obj)
    out: list[types.FunctionType] = []
    for item in items:
        found = _functions_of(item, ns, depth + 1) if callable(item) else []
        # (a partial or a closure holds what it was made with: a value, stale as one)
        held = isinstance(item, functools.partial) or getattr(item, "__closure__", None)
        if not found or isinstance(item, type) or held:
            return []
        out += found
    return out


def _wrapped(obj: Any, ns: Mapping[str, Any], depth: int) -> list[types.FunctionType]:
    """Notebook functions a wrapper holds: its ``__wrapped__`` (read from its own
    ``__dict__``, never through a hostile ``__getattr__``) and, for a function, the
    functions in its closure (a decorator's ``fn``)."""
    held: list[Any] = []
    try:
        own = vars(obj)
    except Exception:  # no __dict__, or one that raises
        own = {}
    if isinstance(own, dict) and "__wrapped__" in own:
        held.append(own["__wrapped__"])
    elif isinstance(own, dict) and _library_callable(obj, ns):  # np.vectorize(f).pyfunc
        held += [v for v in own.values() if isinstance(v, types.FunctionType)]
    if isinstance(obj, types.FunctionType) and obj.__closure__:
        for cell in obj.__closure__:
            try:
                inner = cell.cell_contents
            except ValueError:  # an empty cell: the name is not bound yet
                continue
            if callable(inner) and inner is not obj:
                held.append(inner)
    return [fn for inner in held for fn in _functions_of(inner, ns, depth + 1)]


def _library_callable(obj: Any, ns: Mapping[str, Any]) -> bool:
    kind = type(obj)
    if issubclass(kind, (types.FunctionType, type)) or not callable(obj):
        return False
    return getattr(kind, "__module__", None) != ns.get("__name__", "__main__")


def wraps_notebook_code(obj: Any, ns: Mapping[str, Any]) -> bool:
    """A library's callable that wraps a notebook function (``np.vectorize(f)``, joblib's
    ``@memory.cache``), or a registry of notebook functions: code, as the function is, not
    a value the notebook made (the sixteenth trial's "reads: vec (vectorize)", stale once
    a global of ``f`` changed)."""
    if type(obj) in (dict, list, tuple):
        return bool(_registry(obj, ns, 0))
    return _library_callable(obj, ns) and bool(_wrapped(obj, ns, 0))


def notebook_reads(
    names: Iterable[str], ns: Mapping[str, Any], limit: int = FOLLOW_LIMIT
) -> tuple[dict[str, str], frozenset[str]]:
    """Globals read (and bound) through notebook-defined code that ``names`` reach.

    Returns ``({name: the function it is read through}, names bound with global)``.
    Follows functions whose globals are ``ns``, classes and instances of classes
    defined in ``ns``, transitively, up to ``limit`` functions.

    >>> ns = {"__name__": "__main__", "gamma": 0.1}
    >>> exec("def train():\\n    return gamma * 2", ns)
    >>> notebook_reads(["train"], ns)[0]
    {'gamma': 'train'}
    """
    via: dict[str, str] = {}
    bound: set[str] = set()
    seen: set[int] = set()
    queue = [n for n in names]
    visited = 0
    while queue and visited < limit:
        name = queue.pop()
        obj = ns.get(name)
        if obj is None:
            continue
        for fn in _functions_of(obj, ns):
            if id(fn.__code__) in seen:
                continue
            seen.add(id(fn.__code__))
            visited += 1
            loads, stores = code_globals(fn.__code__)
            bound.update(stores)
            for g in loads:
                if g in ns and g not in via and g not in BUILTINS:
                    via[g] = fn.__qualname__
                    queue.append(g)
    return via, frozenset(bound)
