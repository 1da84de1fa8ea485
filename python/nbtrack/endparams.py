"""The parameters a tracked cell takes from its own code: its literals as written when
it starts (``at_start``), its ``-p`` names (``flagged``), and at its end, by source:

its literals as the cell left them (``n *= 2``: 200; ``capture.end_literals``), the
parameters it read and changed in place (``Lineage.rebound``, with a warning), the
configs it loads from a file (``cfg = yaml.safe_load(f)``, ``configloads``), and the
literals it never assigned because their branch was not taken: ``if DEBUG: n_samples =
100`` with DEBUG off used the upstream 10000, which the eighth trial saw recorded as the
cell's own literal (and, in a cell that failed later, as the 100 never assigned). Such a
literal sits in an ``if``, ``try`` or ``match`` of the cell's top-level code and its name
still holds the very object it held at the start: it is the value read, with the origin
of the cell that made it.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Collection
from typing import Any

from . import capture, configloads
from .astwalk import parsed
from .dataflow import CellFlow
from .exprfacts import literal_call
from .lineage import Lineage, Read
from .modstamps import imported_names, library_file
from .values import config_fields, declared_config, param_value, written_value

_BRANCHES = (ast.If, ast.Try, ast.Match, *((ast.TryStar,) if hasattr(ast, "TryStar") else ()))
_EMPTY = (list, dict, set, tuple, str)  # an accumulator's start, when empty
_BLOCKS = ("body", "orelse", "handlers", "cases")  # the statement lists a statement holds


def branch_names(source: str) -> frozenset[str]:
    """Names bound by a plain assignment inside an ``if``/``try``/``match`` of the
    cell's top-level code (a ``finally`` always runs: not a branch)."""
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return frozenset()
    out: set[str] = set()
    stack: list[tuple[ast.AST, bool]] = [(n, False) for n in tree.body]
    while stack:  # statements only: no expression holds an assignment
        node, branched = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if branched and isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out.update(t.id for t in targets if isinstance(t, ast.Name))
        inner = branched or isinstance(node, _BRANCHES)
        for name in _BLOCKS:  # (an except handler's and a match case's body too)
            stack.extend((k, inner) for k in getattr(node, name, ()))
        stack.extend((k, branched) for k in getattr(node, "finalbody", ()))
    return frozenset(out)


@functools.lru_cache(maxsize=64)
def made_by_calls(source: str) -> tuple[frozenset[str], frozenset[str]]:
    """Names the cell's top-level code binds to a call: ``(of literals, one at least;
    of no argument, or unpacked from one)``. The first are values written as calls,
    ``start = date(2024, 1, 1)``, ``Path("data")`` (the twelfth trial's forecasting cell
    recorded no ``train_end = pd.Timestamp("2023-12-31")`` of its own), not
    ``datetime.now()``, the clock; the second are configs only when declared so
    (``TrainConfig()``, ``parser.parse_args()``), not a notebook object holding state
    (``meter = AverageMeter()``)."""
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return frozenset(), frozenset()
    literal: set[str] = set()
    bare: set[str] = set()
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call = node.value
        for t in node.targets:
            names = [n.id for n in getattr(t, "elts", [t]) if isinstance(n, ast.Name)]
            if not (call.args or call.keywords):
                bare.update(names)
            elif isinstance(t, ast.Name) and literal_call(call) == []:
                literal.add(t.id)
    return frozenset(literal), frozenset(bare)


def _made_setting(name: str, value: Any, source: str) -> bool:
    """Whether what a call of literals or names bound to ``name`` is a parameter."""
    literal, bare = made_by_calls(source)
    if name in bare:
        return declared_config(value)
    return config_fields(value) is not None or (name in literal and written_value(value))


def at_start(flow: CellFlow, source: str, metrics: Collection[str]) -> dict[str, Any]:
    """The cell's literals as written, logged as it starts (a cell killed mid-way still
    records them). An empty list, dict or text a loop fills (``losses = []``, then
    ``losses.append(loss)`` per epoch) is the loop's result, not a setting: none."""
    static = capture.literal_assignments(source)
    return {
        k: static[k]
        for k in flow.literals
        if k in static
        and k not in metrics
        and not (k in flow.loop_changed and isinstance(static[k], _EMPTY) and not static[k])
    }


def flagged(
    names: Collection[str], reads: list[Read], user_ns: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    """The ``-p`` names' values: one the cell read, as read (``y = lr; lr = lr * 2`` ran
    with the 0.1 it read, not the 0.2 it left; the rebinding is said), else as the cell
    left it."""
    read = {r.name: r.value for r in reads if r.is_param}
    out: dict[str, Any] = {}
    for var in names:
        if var not in user_ns:
            warnings.append(f"-p {var}: no variable {var!r} after the cell")
        elif var in read:
            out[var] = read[var]
            ok, now = param_value(user_ns[var])
            if not ok or now != read[var]:
                warnings.append(_changed(var, read[var], now))
        else:
            out[var] = user_ns[var]
    return out


def at_end(
    flow: CellFlow,
    source: str,
    user_ns: dict[str, Any],
    lineage: Lineage,
    reads: list[Read],
    held: dict[str, Any],
    *,
    failed: bool,
    skip: Collection[str],
    warnings: list[str],
) -> dict[str, dict[str, Any]]:
    """``{source: {name: value}}`` to log as the cell ends (``held``: what each literal
    name held at the start)."""
    skip = {*skip, *flow.loop_changed}
    loaded = configloads.loaded_names(source) if flow.config_calls else ()  # load('lr: 1')
    skip.update(
        n
        for n in flow.config_calls
        if n not in loaded and not _made_setting(n, user_ns.get(n), source)
    )
    unassigned: dict[str, dict[str, Any]] = {}
    for name in branch_names(source) & set(flow.literals) if held else ():
        if name in held and held[name] is user_ns.get(name) and name not in skip:
            ok, plain = param_value(held[name])
            p = lineage.producer(name)
            if ok:
                unassigned.setdefault(p.origin if p else "upstream", {})[name] = plain
            skip.add(name)
    auto = capture.end_literals(flow.literals, user_ns, skip, held if failed else {})
    if not failed:  # (a load the failed cell never reached left the name as it was)
        skip.update(auto, (r.name for r in reads))  # (one read first is the value read)
        auto.update(configloads.loaded_settings(source, user_ns, skip))
        auto.update(_settings_classes(source, user_ns, skip))
        auto.update(_imported_settings(source, user_ns, skip))
    for k, (was, now) in lineage.rebound(reads).items():
        auto[k] = now  # what the cell went on with (and the warning says both)
        warnings.append(_changed(k, was, now))
    return {"auto": auto, **unassigned} if auto else unassigned


def _project_modules(source: str) -> dict[str, Any]:
    """The names the cell's top-level imports bind, with their project (not installed)
    module: ``from proj_cfg import LR`` gives ``{"LR": <module proj_cfg>}``."""
    out = {}
    for name, module in imported_names(source).items():
        path = getattr(sys.modules.get(module), "__file__", None)
        if isinstance(path, str) and not library_file(path):
            out[name] = sys.modules[module]
    return out


def _imported_settings(source: str, user_ns: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """The settings the cell imports by name from a project module (``from proj_cfg
    import LR``): the sixteenth trial's ``LR`` edited in ``proj_cfg.py`` and reloaded
    moved the metric, and the run had no parameter (nor input) to say why."""
    out = {}
    for name, module in _project_modules(source).items():
        value = user_ns.get(name, module)
        ok, plain = param_value(value) if name not in skip and value is not module else (0, 0)
        if ok:
            out[name] = plain
    return out


def bound_values(flow: CellFlow, source: str, user_ns: dict[str, Any]) -> list[Any]:
    """The values of the names the cell bound, and the project modules it imported names
    from (``from proj_cfg import LR``: a read of ``proj_cfg.py``, imported before)."""
    return [*(user_ns.get(n) for n in flow.assigns), *_project_modules(source).values()]


def _settings_classes(source: str, user_ns: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """The settings classes the cell's top-level code defines (Kaggle's ``class CFG: lr =
    1e-3`` atop the training cell), as one read from an earlier cell is recorded: the
    thirteenth trial's recorded nothing. A model, a dataclass or an Enum is none."""
    out = {}
    for name in _defined_classes(source):
        if name not in skip and isinstance(user_ns.get(name), type):
            ok, plain = param_value(user_ns[name])
            if ok and plain:
                out[name] = plain
    return out


@functools.lru_cache(maxsize=64)
def _defined_classes(source: str) -> tuple[str, ...]:
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return ()
    return tuple(n.name for n in tree.body if isinstance(n, ast.ClassDef))


def _changed(name: str, was: Any, now: Any) -> str:
    return f"param {name} changed by the cell: {was!r:.60} → {now!r:.60}"


def overridden_injections(reads: list[Read], injected: dict[str, Any]) -> list[str]:
    """A warning for each parameter the cell read with another value than the one papermill
    injected: a later cell set it again (plain papermill with no ``parameters`` cell puts its
    cell first), and the notebook run's record of the injected value is not what ran."""
    return [
        f"param {r.name}: the cell read {r.value!r:.60}, not the {injected[r.name]!r:.60} "
        "papermill injected (a later cell set it again)"
        for r in reads
        if r.is_param
        and r.name in injected
        and r.origin != "papermill"
        and r.value != injected[r.name]
    ]


def mistyped_injections(injected: dict[str, Any], defaults: dict[str, Any]) -> dict[str, str]:
    """``{name: warning}`` for each value papermill injected as text where the parameters
    cell's default is a number or a bool: ``-p flag false`` injects the text ``'false'``,
    which is true (papermill parses ``True``/``False`` and numbers, ``-r`` passes text),
    and ``-r lr 0.1`` gives ``'0.1' * 2``. The record holds the text that ran; this says
    it was likely not what was meant."""
    out = {}
    for name, value in injected.items():
        default = defaults.get(name)
        if isinstance(value, str) and isinstance(default, (bool, int, float)):
            kind = type(default).__name__
            out[name] = (
                f"param {name}: papermill injected the text {value!r:.60} where the parameters "
                f"cell has a {kind} ({default!r}); the notebook ran with the text"
                + (" (any non-empty text is true)" if kind == "bool" else "")
                + ": `-p` gives True/False and numbers, `-r` and quotes give text"
            )
    return out
