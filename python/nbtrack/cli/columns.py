"""Which columns a runs table shows, and in which order (``ls``, ``%track ls``).

A run's parameters and metrics are columns next to its own fields. A parameter and
a metric may share a name: then both columns carry their prefix (``params.x``,
``metrics.x``), as ``--where`` and ``--sort`` name them; otherwise the bare name is
the header. ``--columns`` takes headers, prefixed names or globs (``params.*``,
``metrics.system/*``) in the order given. Without it, parameters and metrics whose
values vary among the listed runs come first, right after the run's id, name and
status, so a narrow terminal shows what tells the runs apart.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import UsageError

# The run's own fields, in their usual order; the first three always lead.
LEAD = ("run", "name", "status")
TRAIL = ("started", "duration", "notebook", "cell")


@dataclass(frozen=True)
class Column:
    """One column of a runs table: its header, its full name, and the values under it."""

    header: str
    qualified: str  # params.x / metrics.x for a run's values; the header otherwise
    values: tuple[Any, ...]

    @property
    def varies(self) -> bool:
        seen = {repr(v) for v in self.values}
        return len(seen) > 1


def value_columns(
    params: Sequence[str],
    metrics: Sequence[str],
    rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
) -> list[Column]:
    """A column per parameter and metric; headers prefixed only where a name is shared."""
    shared = set(params) & set(metrics)
    out = []
    for section, keys, index in (("params", params, 0), ("metrics", metrics, 1)):
        for key in keys:
            qualified = f"{section}.{key}"
            header = qualified if key in shared else key
            out.append(Column(header, qualified, tuple(r[index].get(key) for r in rows)))
    return out


def default_order(base: Sequence[Column], values: Sequence[Column]) -> list[Column]:
    """Id, name, status; then the values that vary; then the run's other fields; then the
    values every listed run shares."""
    lead = [c for c in base if c.header in LEAD]
    trail = [c for c in base if c.header not in LEAD]
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
