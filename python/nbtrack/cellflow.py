"""What one cell's code reads and binds (``CellFlow``, made by dataflow.py), and one
flow for code run in parts (``merge``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellFlow:
    """What one cell's code reads and binds.

    ``reads``: names loaded before the cell binds them, in first-read order. ``assigns``: names
    the cell binds or deletes at top level (and ``global`` ones its functions bind).
    ``mutates``: names whose object the cell changes through a subscript or attribute store
    (``df["a"] = ...``) or may change by an augmented assignment (``X /= 10``: an array in
    place). ``called``: names whose methods the cell calls, or that it calls, which may change their
    object too (``df.dropna(inplace=True)``; ``model(X)`` runs ``model.__call__``). ``literals``: names bound to a literal at top level (never
    later to something computed). ``loop_changed``: those of them a loop rebinds or changes
    (``total += x`` in a ``for``), and names read a loop changes in place: their value at the
    end is what the loop left, not a parameter: recorded as written. ``config_calls``: literals
    made by a call of literals and names found (``TrainConfig(lr=lr)``), parameters if configs.
    ``passed``: names a call outside loops is handed, which it may change (passedargs.py).
    ``declared``: ``global`` names of the cell's own functions (``def f(): global LR``).
    ``tables``: names its DuckDB SQL reads as tables (``FROM df``): data, never settings.
    ``error``: why the code could not be analysed (then everything else is empty).
    """

    reads: tuple[str, ...] = ()
    assigns: frozenset[str] = frozenset()
    mutates: frozenset[str] = frozenset()
    called: frozenset[str] = frozenset()
    literals: tuple[str, ...] = ()
    loop_changed: frozenset[str] = frozenset()
    config_calls: frozenset[str] = frozenset()
    passed: frozenset[str] = frozenset()
    declared: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    dynamic: bool = False
    error: str | None = None


def merge(flows: list[CellFlow]) -> CellFlow:
    """One flow for code run in parts (a cell and the code its magics ran), in order."""
    if len(flows) == 1:
        return flows[0]
    reads: dict[str, None] = {}
    assigns: set[str] = set()
    literals: dict[str, None] = {}
    for f in flows:
        reads.update((n, None) for n in f.reads if n not in assigns)
        assigns |= f.assigns
        literals.update(dict.fromkeys(f.literals))
    unions = ("mutates", "called", "loop_changed", "config_calls", "passed", "declared", "tables")
    return CellFlow(
        reads=tuple(reads),
        assigns=frozenset(assigns),
        literals=tuple(k for k in literals if k not in reads),
        dynamic=any(f.dynamic for f in flows),
        error=next((f.error for f in flows if f.error), None),
        **{k: frozenset[str]().union(*(getattr(f, k) for f in flows)) for k in unions},
    )
