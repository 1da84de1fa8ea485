"""Which columns a runs table shows, and in which order (``ls``, ``%track ls``).

A run's parameters and metrics are columns next to its own fields. A parameter and
a metric may share a name: then both columns carry their prefix (``params.x``,
``metrics.x``), as ``--where`` and ``--sort`` name them, and so does one named like a
run's own field (a parameter ``name``, a metric ``duration``: two columns headed
``name`` could not be told apart); otherwise the bare name is the header. ``--columns`` takes headers, prefixed names or globs (``params.*``,
``metrics.system/*``) in the order given. Without it, parameters and metrics whose
values vary among the listed runs come first, right after the run's id, name and
status, so a narrow terminal shows what tells the runs apart. A dict parameter (a
config) is shown as its leaves (``cfg.lr``, ``cfg.opt.m``), as ``--where`` names them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import UsageError
from ..models import CONFIG_KEY

# The run's own fields, in their usual order; the first three always lead.
LEAD = ("run", "name", "status")
TRAIL = ("started", "duration", "notebook", "cell")


@dataclass(frozen=True)
class Column:
    """One column of a runs table: its header, its full name, and the values under it."""

    header: str
    qualified: str  # params.x / metrics.x for a run's values; the header otherwise
    values: tuple[Any, ...]
    # A dict parameter (a config) is shown by the table as its leaves (``cfg.lr``):
    # ``whole`` marks the parameter's own column, ``leaf`` each leaf's.
    whole: bool = False
    leaf: bool = False

    @property
    def varies(self) -> bool:
        seen = {repr(v) for v in self.values}
        return len(seen) > 1


def value_columns(
    params: Sequence[str],
    metrics: Sequence[str],
    rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
) -> list[Column]:
    """A column per parameter and metric, and per leaf of a dict parameter (after it);
    headers prefixed only where a name is shared."""
    names = set(params) | set(metrics)
    out = []
    headers = value_headers(params, metrics, (*LEAD, *TRAIL))
    for section, keys, index in (("params", params, 0), ("metrics", metrics, 1)):
        for key in keys:
            qualified = f"{section}.{key}"
            header = headers[qualified]
            values = tuple(r[index].get(key) for r in rows)
            paths = dict.fromkeys(p for v in values for p in _leaf_paths(v)) if index == 0 else {}
            # (shown whole as well when some run holds a plain value under the name)
            configs = all(isinstance(v, dict) for v in values if v is not None)
            out.append(Column(header, qualified, values, whole=bool(paths) and configs))
            for path in paths:
                name = ".".join((key, *path))
                if name not in names:  # a parameter of that very name keeps it
                    leaf_values = tuple(_at(v, path) for v in values)
                    out.append(Column(name, f"params.{name}", leaf_values, leaf=True))
    return out


def value_headers(
    params: Sequence[str], metrics: Sequence[str], fields: Sequence[str]
) -> dict[str, str]:
    """``{params.x / metrics.x: header}``: the bare name, unless a parameter and a
    metric share it or a field of the table (``fields``) is named so."""
    shared = set(params) & set(metrics) | set(fields)
    return {
        f"{section}.{key}": f"{section}.{key}" if key in shared else key
        for section, keys in (("params", params), ("metrics", metrics))
        for key in keys
    }


def _leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and CONFIG_KEY.match(k):
                yield from _leaf_paths(v, (*prefix, k))
    elif prefix:
        yield prefix


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(value, dict):
            return None
        value = value.get(k)
    return None if isinstance(value, dict) else value


def default_order(base: Sequence[Column], values: Sequence[Column]) -> list[Column]:
    """Id, name, status; then the values that vary; then the run's other fields; then the
    values every listed run shares."""
    lead = [c for c in base if c.header in LEAD]
    trail = [c for c in base if c.header not in LEAD]
    values = [c for c in values if not c.whole]  # a config: its leaves say what differs
    varying = [c for c in values if c.varies]
    same = [c for c in values if not c.varies]
    return [*lead, *varying, *trail, *same]


def select(spec: str, available: Sequence[Column]) -> list[Column]:
    """The columns ``--columns`` names: comma-separated headers, ``params.x`` /
    ``metrics.x`` names or globs, in the order given, each column once."""
    chosen: list[Column] = []
    for pattern in (p.strip() for p in spec.split(",")):
        if not pattern:
            continue
        hits = [
            c
            for c in available
            if fnmatch.fnmatchcase(c.header, pattern) or fnmatch.fnmatchcase(c.qualified, pattern)
        ]
        if not hits:
            names = ", ".join(c.header for c in available)
            raise UsageError(f"--columns {pattern!r} matches no column; the columns are: {names}")
        chosen += [c for c in hits if all(c is not seen for seen in chosen)]
    if not chosen:
        raise UsageError("--columns names no column")
    return chosen
