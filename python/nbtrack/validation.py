"""What a request may hold and how a logged value is stored: the client's checks.

The client decides and the store persists (STYLE.md): every door's values pass
through these functions before anything is spooled or queried.
"""

from __future__ import annotations

import json
import numbers
import re
from typing import Any

from .exceptions import BadValueError, UsageError
from .models import MAX_PAGE, RUN_KINDS, RUN_STATUSES, RunQuery, json_float
from .points import STEP_MAX, STEP_MIN

PARAM_SOURCES = ("auto", "flag", "papermill", "api", "default", "upstream", "autolog")


# ---------------------------------------------------------------- value building
def _plain(value: Any) -> Any:
    """A value made of JSON types, or raise TypeError (numpy scalars become numbers)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return json_float(float(value))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise TypeError(type(value).__name__)


def storable(obj: Any) -> Any:
    """``obj`` (JSON types) with every string DuckDB can store: a lone surrogate (a file
    name's undecodable byte, a string cut in half) becomes its escape."""
    if isinstance(obj, str):
        try:
            obj.encode()
        except UnicodeEncodeError:
            try:  # an undecodable byte (os.fsdecode) as the byte: ``\\xff``
                return obj.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                return obj.encode("utf-8", "backslashreplace").decode()
        return obj
    if isinstance(obj, list):
        return [storable(v) for v in obj]
    if isinstance(obj, dict):
        return {storable(k): storable(v) for k, v in obj.items()}
    return obj


def check_key(key: Any, what: str = "metric") -> str:
    """A parameter or metric name: a non-empty string."""
    if not isinstance(key, str) or not key:
        raise BadValueError(f"a {what} name must be a non-empty string, not {key!r}")
    try:
        key.encode()
    except UnicodeEncodeError as exc:
        raise BadValueError(
            f"the {what} name {key!r} is not valid Unicode text (a lone surrogate at"
            f" position {exc.start}); name it with text that UTF-8 can carry"
        ) from None
    return key


def check_step(key: str, step: Any) -> int:
    """A metric step: an integer that fits in 64 bits (numpy integers welcome)."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise BadValueError(
            f"the step of metric {key!r} must be an integer, not {type(step).__name__} {step!r}"
        )
    step = int(step)
    if not STEP_MIN <= step <= STEP_MAX:
        raise BadValueError(
            f"the step of metric {key!r} must fit in 64 bits (-2**63 to 2**63 - 1), not {step}"
        )
    return step


# A default repr's memory address (``<Foo object at 0x7f42…>``): a different text in
# every run for the same value, so it is left out of a parameter kept by its repr.
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def build_param(key: str, value: Any, source: str) -> tuple[str, str, float | None, str, str]:
    """The stored form of a parameter: ``(key, JSON, number or None, text, source)``.

    Values JSON cannot carry are stored by their ``repr`` (a string).
    """
    check_key(key, "parameter")
    if source not in PARAM_SOURCES:
        raise UsageError(f"unknown parameter source {source!r}")
    try:
        plain = _plain(value)
    except (TypeError, RecursionError):
        try:
            plain = ADDRESS.sub("", repr(value))
        except Exception:  # a repr that raises: the value is recorded as its type
            plain = f"<{type(value).__qualname__}>"
    number: float | None = None
    if isinstance(value, numbers.Real):
        try:
            number = float(value)
        except OverflowError:  # an integer too big for a double: its text is kept
            number = None
    plain = storable(plain)
    text = plain if isinstance(plain, str) else json.dumps(plain)
    return key, json.dumps(plain), number, text, source


def narrow_float(value: Any) -> float | None:
    """A numpy float32/float16 scalar as the number written (``np.float32(0.9)``: 0.9, not
    0.8999999761581421, which ``check "acc >= 0.9"`` failed), else None."""
    if type(value).__module__ != "numpy" or getattr(value, "itemsize", 8) >= 8:
        return None
    if getattr(getattr(value, "dtype", None), "kind", "") != "f" or getattr(value, "ndim", 1):
        return None
    return float(str(value))


def build_metric(key: str, value: Any) -> float:
    """A metric value as a float (NaN and infinities are legal)."""
    check_key(key)
    if isinstance(value, (str, bytes)):
        raise BadValueError(
            f"metric {key!r} must be a number, not {type(value).__name__} {value!r}"
        )
    try:
        narrow = narrow_float(value)
        return float(value) if narrow is None else narrow
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadValueError(
            f"metric {key!r} must be a number, not {type(value).__name__} {value!r}"
        ) from exc


def check_query(q: RunQuery) -> RunQuery:
    if q.kind is not None and q.kind not in RUN_KINDS:
        raise UsageError(f"kind must be one of {', '.join(RUN_KINDS)}, not {q.kind!r}")
    if q.status is not None and q.status not in RUN_STATUSES:
        raise UsageError(f"status must be one of {', '.join(RUN_STATUSES)}, not {q.status!r}")
    if q.limit is not None and not 0 <= q.limit <= MAX_PAGE:
        raise UsageError(f"limit must be between 0 and {MAX_PAGE}, not {q.limit}")
    if q.offset < 0:
        raise UsageError(f"offset must be 0 or more, not {q.offset}")
    if q.where is not None and not q.where.strip():
        raise UsageError("an empty --where condition")
    return q


def check_sql(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise UsageError("an empty SQL query")
