"""Who produced each name of the kernel namespace, and whether what a cell reads is stale.

After every cell (tracked or not) the names it binds get a *producer*: the cell's
execution count, cell id, run id (for a tracked cell), a version from one counter
per kernel, the identity of the object (a small plain value: a copy of it, so an equal
value bound again is no change), and the versions of the names that cell read.
Nothing in the namespace is hashed or scanned: only the names a cell binds, stores
into or calls a method of are touched, so a namespace of 100,000 names costs what one
of ten does.

A name a cell reads is *stale* when the cell that made it ran again since without
making it again, or when a name it was made from has changed since (transitively).
"""

from __future__ import annotations

import ast
import hashlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .codeflow import notebook_reads, wraps_notebook_code
from .dataflow import CellFlow, analyze
from .models import NamedInput
from .modstamps import Stamp, carried, changed, code_modules, current, imported_names, stamp
from .modstamps import why as why_edited
from .namedeps import made_from
from .plaintoken import SCALARS as _SCALARS
from .plaintoken import token as _token
from .values import (
    FINGERPRINT_BUDGET,
    Description,
    closure_settings,
    describe,
    holds_settings,
    is_ignored,
    param_value,
    type_name,
)

PAPERMILL_HEADER = "# Parameters"
STALE_DEPTH = 8
HISTORY_LIMIT = 1000  # cells replayed when nbtrack is loaded late
CELL_BUDGET = 0.2  # seconds a cell start may spend fingerprinting what the cell reads
# Per statement what each name came from (namedeps.py, a second parse of the cell) for
# cells up to this size: a larger cell keeps the per-cell answer, costing nothing more.
PER_NAME_LIMIT = 20  # names the cell made
PER_NAME_SOURCE = 4_000  # characters of the cell
BEHIND_LIMIT = 64  # parameters behind the values a cell reads (Lineage._behind)
_DESCRIBED_LIMIT = 256  # objects whose fingerprints are kept
_MISSING = object()


@dataclass
class Producer:
    """The cell execution that last bound a name."""

    version: int
    execution_count: int | None
    cell_key: str | None
    cell_id: str | None
    run_id: str | None
    origin: str  # papermill (injected), default (the parameters cell), upstream
    obj_id: int
    token: Any = None  # a plain value's (type, value): rebinding an equal one is no change
    reads: dict[str, int] = field(default_factory=dict)
    module: Stamp | None = None  # bound by an import of a user module (modstamps.py)

    @property
    def where(self) -> str:
        return f"In[{self.execution_count}]" if self.execution_count is not None else "a cell"


@dataclass(frozen=True)
class Read:
    """One name a tracked cell read from the namespace, as the run records it."""

    name: str
    type: str
    is_param: bool
    value: Any  # the plain value of a parameter (at cell start), else None
    origin: str
    producer: Producer | None
    stale: str | None = None  # why the value is stale
    description: Description | None = None  # for a value that is not parameter-like
    via: str | None = None  # read through this notebook function
    behind: str | None = None  # not read: made the value of this name, by an untracked cell

    def record(self) -> NamedInput:
        """The run's record of this read."""
        p, d = self.producer, self.description
        return NamedInput(
            name=self.name,
            type=d.type if d is not None else self.type,
            origin=self.origin,
            shape=d.shape if d is not None else None,
            fingerprint=d.fingerprint if d is not None else None,
            producer_run_id=p.run_id if p is not None else None,
            producer_cell=p.cell_id if p is not None else None,
            execution_count=p.execution_count if p is not None else None,
            stale=self.stale is not None,
            reason=self.stale,
            note=f"made {self.behind}" if self.behind else d.note if d is not None else None,
        )


def _unchanged(prev: Producer, obj: Any, token: Any, in_place: bool) -> bool:
    """Whether ``obj`` (``token``: its plain value) is the value ``prev`` recorded: a plain
    value by value, anything else by identity unless the cell changed it in place."""
    if token is not None or prev.token is not None:
        return bool(token == prev.token)
    return prev.obj_id == id(obj) and not in_place


def _notebook_object(value: Any) -> bool:
    """An instance of a class the notebook defined (not the class itself)."""
    return type(value).__module__ == "__main__" and not isinstance(value, type)


def producer_key(cell_id: str | None, source: str) -> str:
    return cell_id or "src:" + hashlib.sha1(source.encode()).hexdigest()[:16]


class Lineage:
    """Per-kernel producer bookkeeping over ``ns`` (the user namespace)."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.ns = ns
        self.names: dict[str, Producer] = {}
        self.cell_runs: dict[str, int] = {}
        self._clock = 0
        # The modules the last `reads` saw the cell use (no inputs: their files are).
        self.modules_read: list[ModuleType] = []
        # Names notebook code rebinds by `global`; objects the cell may change in place.
        self._may_change: tuple[frozenset[str], dict[str, Any]] = (frozenset(), {})
        self._last: tuple[int | None, frozenset[str]] | None = None
        self.defaults_cells: frozenset[str] = frozenset()  # KernelSession.parameters_cell
        self.defaults_before_injected = True  # False: papermill's `parameters` is no code
        # Fingerprints by object identity, then by (name, version) that read it; a cell
        # that may change an object drops its entry (after_cell).
        self._described: dict[int, dict[tuple[str, int], Description]] = {}

    # ---------------------------------------------------------------- after each cell
    def after_cell(
        self,
        source: str,
        execution_count: int | None,
        cell_id: str | None = None,
        run_id: str | None = None,
        flow: CellFlow | None = None,
    ) -> None:
        """Record what the cell that just ran (``source``: its transformed code) bound."""
        flow = flow or analyze(source)
        key = producer_key(cell_id, source)
        if execution_count is not None:
            self.cell_runs[key] = execution_count
        if flow.error:
            return
        origin = "default" if self.is_defaults_cell(source) else "upstream"
        if source.lstrip().startswith(PAPERMILL_HEADER):
            origin = "papermill"
            self._mark_defaults()
        via, bound = notebook_reads([n for n in flow.reads if n in self.ns], self.ns)
        names = self.names
        assigned = flow.assigns | flow.mutates | bound
        made: list[str] = []  # new values, and values recomputed equal: their sources anew
        for n in (assigned | flow.called) if flow.called else assigned:
            obj = self.ns.get(n, _MISSING)
            if obj is _MISSING:
                if n in assigned:
                    names.pop(n, None)
                continue
            # The cell may have changed the object in place (`X /= 10`, `Y[0] = 1` on an
            # alias of X, `df.dropna(inplace=True)`): whoever reads it next, under any
            # name, fingerprints it again.
            self._described.pop(id(obj), None)
            prev = names.get(n)
            token = _token(obj)
            same = prev is not None and _unchanged(prev, obj, token, n in flow.mutates)
            if n not in assigned and (same or prev is None):
                continue  # only a method called (`df.head()`), and nothing seen changed
            if prev is None or not same:
                names[n] = Producer(
                    self._tick(), execution_count, key, cell_id, run_id, origin, id(obj), token
                )
                made.append(n)
                continue
            names[n] = Producer(
                prev.version, execution_count, key, cell_id, run_id, origin, id(obj), token,
                prev.reads, prev.module,
            )  # fmt: skip
            if id(obj) != prev.obj_id or type(obj) in _SCALARS:
                # Recomputed to an equal value (a small int or a string may be the very
                # same object): the same version for what was made from it, but made
                # from its sources as they are now, not as they were.
                made.append(n)
        # What each new value was made from, at the versions the cell left: a name the
        # cell also rebound counts as this cell's own (`x = x * 2; y = x + 1` leaves y
        # made from the new x, not stale at once), and a name is not made from itself.
        # Per statement where the cell made several (namedeps.py): `raw = load()` beside
        # `train = raw.sample(frac=frac)` is not made from frac.
        small = 1 < len(made) <= PER_NAME_LIMIT and len(source) <= PER_NAME_SOURCE
        per_name = made_from(source) if small else None
        everything = (*flow.reads, *via)
        for n in made:
            came = per_name.get(n) if per_name is not None else None
            if came is not None:
                # No notebook code reached by the whole cell: none by a part of it either.
                called = (
                    notebook_reads([m for m in came if m in self.ns], self.ns)[0] if via else ()
                )
                sources: Iterable[str] = (*came, *called)
            else:
                sources = everything
            names[n].reads = {m: names[m].version for m in sources if m in names and m != n}
        imported = imported_names(source)
        for n in assigned:  # a name an import bound: from which module load (modstamps.py)
            p = names.get(n)
            if p is not None and (n in imported or p.module is not None):
                now = stamp(imported[n], self.ns.get(n)) if n in imported else None
                p.module = carried(p.module, now) if now is not None else None
        self._last = (execution_count, frozenset(assigned))

    def is_defaults_cell(self, source: str) -> bool:
        """``source`` is the parameters cell of a papermill run that injects none."""
        return source.strip() in self.defaults_cells  # as typed, or as IPython runs it

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _mark_defaults(self) -> None:
        """papermill injects its cell right after the ``parameters`` cell: that one ran last."""
        if self._last is None or not self.defaults_before_injected:
            return
        count, assigned = self._last
        for n in assigned:
            p = self.names.get(n)
            if p is not None and p.execution_count == count:
                p.origin = "default"

    def replay(self, history: list[str]) -> None:
        """Cells that ran before nbtrack was loaded (``history[n]`` is ``In[n]``).

        Their objects are today's, so a name they bound is known to come from the
        last of them that bound it; whether it was stale is not known."""
        for i in range(max(1, len(history) - HISTORY_LIMIT), len(history)):
            if history[i]:
                self.after_cell(history[i], i)

    # ---------------------------------------------------------------- before a tracked cell
    def producer(self, name: str) -> Producer | None:
        """The producer of the value ``name`` holds now (None if something unseen rebound it)."""
        p = self.names.get(name)
        if p is None:
            return None
        obj = self.ns.get(name, _MISSING)
        if p.obj_id != id(obj) and (p.token is None or p.token != _token(obj)):
            return None
        return p

    def stale(self, name: str, live: Iterable[str] = ()) -> str | None:
        """Why ``name``'s value is stale, or None; never through ``live``: names read as now."""
        p, cls = self.producer(name), type(self.ns.get(name))  # (its class changed in place:
        own = {cls.__name__} if self.ns.get(cls.__name__) is cls else set()  # it sees it)
        return None if p is None else self._why(name, p, {name}, frozenset(live) | own, {})

    def _why(
        self, name: str, p: Producer, seen: set[str], live: frozenset[str], up: dict[str, Producer]
    ) -> str | None:
        chain = {**up, name: p}  # the names it was made through, to here (its depth too)
        if p.module is not None:
            if current(self.ns.get(name), p.module):  # reloaded, or updated by %autoreload
                p.module = stamp(p.module.module, self.ns.get(name))  # as reloaded
            elif changed(p.module):
                return why_edited(name, p.module, p.where)
        again = self.cell_runs.get(p.cell_key or "")
        if p.execution_count is not None and again is not None and again > p.execution_count:
            return (
                f"{name} was made by {p.where}, and that cell ran again (In[{again}]) "
                f"without making it"
            )
        for m, v in p.reads.items():
            cur = self.names.get(m)
            # (the making of a name up the chain is none: `bump()` rebinding its reader)
            if (cur is None or cur.version != v) and m not in live and chain.get(m) is not cur:
                when = f" by {cur.where}" if cur is not None else ""
                return f"{name} was made by {p.where} from {m}, which was changed since{when}"
        if len(chain) > STALE_DEPTH:
            return None
        for m in p.reads:
            cur = self.names.get(m)
            if cur is None or m in seen or m in live:  # (a name read now says so itself)
                continue
            seen.add(m)
            why = self._why(m, cur, seen, frozenset(), chain)
            if why:
                return f"{name} was made by {p.where} from {m}; {why}"
        return None

    def reads(self, flow: CellFlow, exclude: Iterable[str] = (), cell: str = "") -> list[Read]:
        """What a tracked cell (``cell``: its producer_key) reads at its start; a value it made
        itself it makes again from what it reads now (through the functions it calls too)."""
        ns = self.ns
        skip = set(exclude)
        names = [n for n in flow.reads if n in ns]
        via, stores = notebook_reads(names, ns)
        # An object of a notebook class its own methods change (`trainer.fit()` appending
        # to its history) did its work: what the cell read of it is the setting.
        own = {n for n in flow.called - flow.mutates - flow.passed if _notebook_object(ns.get(n))}
        in_place = (flow.mutates | flow.called | flow.passed) - flow.loop_changed - own
        self._may_change = (stores | flow.declared, {n: ns.get(n) for n in in_place})
        out: list[Read] = []
        deadline = time.perf_counter() + CELL_BUDGET
        self.modules_read, closures = [], []
        for n in [*names, *(v for v in via if v not in names)]:
            value = ns.get(n, _MISSING)
            self.modules_read += code_modules(value)  # settings.LR; from utils import train
            if n in skip or value is _MISSING or (n in flow.tables and _param(value)[0]):
                continue  # (a DuckDB table its SQL names, `FROM t`, that is no DataFrame)
            p = self.producer(n)
            closed = holds_settings(value)  # f = make(a), partial(f, lr=a): a as made
            closures += [n] if closed else []
            if is_ignored(n, value) or wraps_notebook_code(value, ns):  # code: no input
                stale = self.stale(n, via) if p is not None and (p.module or closed) else None
                if stale and p is not None:
                    desc = Description(type_name(value), None, None)
                    out.append(Read(n, type_name(value), False, None, p.origin, p, stale, desc))
                continue
            origin = p.origin if p is not None else "upstream"
            stale = self.stale(n, [*flow.reads, *via] if p and p.cell_key == cell else ())
            ok, plain = _param(value)
            kind = type_name(value)
            if ok:
                out.append(Read(n, kind, True, plain, origin, p, stale, via=via.get(n)))
            else:
                desc = self._describe(n, value, p, deadline)
                out.append(Read(n, kind, False, None, origin, p, stale, desc, via.get(n)))
        behind = self._behind(out, skip, closures)
        return self._held(out, [n for n in closures if n not in skip], behind) + behind

    def _held(self, out: list[Read], closures: list[str], behind: list[Read]) -> list[Read]:
        """A closure no parameter behind explains (``make_objective(2.0)``, or one made
        from a setting changed since): the settings it holds are a dict parameter, as
        a config object's fields are; a stale one keeps its reason."""
        explained = {r.behind for r in behind}
        for n in closures:
            held = None if n in explained else closure_settings(self.ns.get(n))
            if held is not None:
                was = next((r for r in out if r.name == n), None)
                p = self.producer(n)
                origin = p.origin if p is not None else "upstream"
                kind = type_name(self.ns.get(n))
                read = Read(n, kind, True, held, origin, p, was.stale if was else None)
                out = [r for r in out if r is not was] + [read]
        return out

    def rebound(self, reads: list[Read]) -> dict[str, tuple[Any, Any]]:
        """``{name: (at start, now)}``: parameters the cell read and changed, in place
        (``params["lr"] = 0.05``, ``cfg.update(...)``) or by ``global`` (``set_lr(0.9)``)."""
        out, (stores, in_place) = {}, self._may_change
        self._may_change = (frozenset(), {})
        for r in reads:  # (`lr *= 0.5` rebinds a number: the value read is the setting)
            obj = self.ns.get(r.name, _MISSING)
            # In place is the object read; one the cell bound since is not what it used.
            same = r.name in in_place and in_place[r.name] is obj
            if r.is_param and r.behind is None and (r.name in stores or same):
                ok, now = _param(obj)
                if ok and now != r.value and (r.name in stores or isinstance(now, (dict, list))):
                    out[r.name] = (r.value, now)
        return out

    def _behind(self, reads: list[Read], skip: set[str], closures: list[str]) -> list[Read]:
        """The parameters behind the values a cell reads that untracked cells made.

        ``idx = rng(SEED).permutation(n)`` in an untracked cell, then a tracked cell that
        reads ``idx``: SEED is a parameter of that run (origin as its cell's), so
        changing it and running both cells again shows in the summary and the diff.
        Followed back through untracked cells only (a tracked one's run holds its own
        parameters, and the read links to it), to ``STALE_DEPTH`` cells, and only at
        the version that made the value: a parameter changed since is a stale input.
        """
        seen = {r.name for r in reads} | skip
        todo = [(r.name, r.producer, 0) for r in reads if not r.is_param and r.stale is None]
        todo += [(n, self.producer(n), 0) for n in closures if self.stale(n) is None]
        out: list[Read] = []
        while todo and len(out) < BEHIND_LIMIT:
            made, p, depth = todo.pop(0)
            if p is None or p.run_id is not None or depth >= STALE_DEPTH:
                continue
            for m, version in p.reads.items():
                cur = self.names.get(m)
                value = self.ns.get(m, _MISSING)
                if m in seen or cur is None or cur.version != version or value is _MISSING:
                    continue
                seen.add(m)
                ok, plain = _param(value) if not is_ignored(m, value) else (False, None)
                if ok:
                    out.append(Read(m, type_name(value), True, plain, cur.origin, cur, behind=made))
                else:
                    todo.append((m, self.producer(m), depth + 1))
        return out

    def _describe(self, name: str, value: Any, p: Producer | None, deadline: float) -> Description:
        # The same object at the same version, unchanged since: reuse it (not an iterator)
        key = (name, p.version if p is not None else -1)
        kept = self._described.get(id(value))
        found = kept.get(key) if kept is not None and not isinstance(value, Iterator) else None
        if found is None:
            left = deadline - time.perf_counter()
            if left <= 0:  # the cell waited long enough: its other values by type only
                return Description(type_name(value), None, None, "not fingerprinted: no time left")
            found = describe(value, min(left, FINGERPRINT_BUDGET))
            if kept is None:
                if len(self._described) >= _DESCRIBED_LIMIT:
                    self._described.clear()
                kept = self._described[id(value)] = {}
            kept[key] = found
        return found


class TreeRecorder:
    """An IPython AST transformer that changes nothing and keeps the trees it is shown.

    IPython parses each cell (and the code ``%time`` and friends run) and hands the
    tree to ``shell.ast_transformers``: keeping it spares parsing the cell again."""

    LIMIT = 16

    def __init__(self) -> None:
        self.trees: list[ast.Module] = []

    def visit(self, node: Any) -> Any:
        if isinstance(node, ast.Module) and len(self.trees) < self.LIMIT:
            self.trees.append(node)
        return node

    def take(self) -> list[ast.Module]:
        trees, self.trees = self.trees, []
        return trees


def _param(value: Any) -> tuple[bool, Any]:
    try:
        return param_value(value)
    except Exception:  # a value whose __eq__/__len__/item raises is not a parameter
        return False, None
