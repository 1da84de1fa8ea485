"""Plain values as comparable copies: a name rebound to an equal plain value is no change.

``lineage`` keeps a token per name it tracks; a config cell run again (``CONFIG = {...}``,
``G = [5]``, ``args = SimpleNamespace(...)``) binds equal values, and what was made from
them stays fresh.
"""

from __future__ import annotations

import datetime
import pathlib
from typing import Any

from .values import config_fields, numpy_scalar

# A plain container (lists, tuples, dicts, sets of scalars) up to these sizes is compared
# by value: `CONFIG = {...}` run again with an equal dict is no change.
TOKEN_ITEMS = 2_000  # items, all levels together
TOKEN_CHARS = 2_000  # characters of its strings
TOKEN_DEPTH = 4


# Immutable values compared by value: a config cell run again equal changes nothing
# (dates and paths too: a new user's fifth trial saw `start = date(2024, 1, 1)` run
# again make what was made from it stale; the eighth trial's `RATE = Decimal("0.05")`).
SCALARS = frozenset({int, float, str, bool, type(None), datetime.date, datetime.datetime,
                      datetime.time, datetime.timedelta, pathlib.PurePosixPath,
                      pathlib.PosixPath, pathlib.PureWindowsPath, pathlib.WindowsPath})  # fmt: skip
# By name: importing them would cost every kernel ~3 ms at `%load_ext`.
_NUMBERS = frozenset({("decimal", "Decimal"), ("fractions", "Fraction")})


def _scalar(t: type) -> bool:
    return t in SCALARS or (t.__module__, t.__qualname__) in _NUMBERS


_CONTAINERS = frozenset({list, tuple, dict, set, frozenset})


class _TooBig(Exception):
    pass


def token(obj: Any) -> Any:
    """A plain value as a comparable copy (``(type, value)``, nested for containers), or
    None for anything else or a container past the bounds (``TOKEN_*``)."""
    t = type(obj)
    if _scalar(t):
        return (t, obj)
    if numpy_scalar(obj):  # alpha = np.float32(0.5)
        return (t, obj.item())
    try:
        if t in _CONTAINERS:
            return _plain(obj, [TOKEN_ITEMS, TOKEN_CHARS], 0)
        fields = config_fields(obj)  # `args = SimpleNamespace(...)` run again equal
        return None if fields is None else (t, _plain(fields, [TOKEN_ITEMS, TOKEN_CHARS], 0))
    except (_TooBig, RuntimeError):  # a deep structure, or one another thread changes
        return None


def _plain(obj: Any, left: list[int], depth: int) -> Any:
    t = type(obj)
    if _scalar(t):
        if t is str:
            left[1] -= len(obj)
            if left[1] < 0:
                raise _TooBig
        return (t, obj)
    if t not in _CONTAINERS or depth >= TOKEN_DEPTH:
        raise _TooBig
    left[0] -= len(obj)
    if left[0] < 0:
        raise _TooBig
    if t is dict:
        items = tuple((_plain(k, left, depth + 1), _plain(v, left, depth + 1))
                      for k, v in obj.items())  # fmt: skip
        return (t, items)
    parts = (_plain(v, left, depth + 1) for v in obj)
    return (t, frozenset(parts) if t is set or t is frozenset else tuple(parts))
