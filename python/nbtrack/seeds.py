"""The seed a cell gave a library's global random generator, as a parameter of the cells
that draw from it.

``SEED = 1`` then ``np.random.seed(SEED)`` in a setup cell, and a tracked cell drawing
``np.random.rand()``: what it drew depends on SEED, yet nothing it reads is made from
SEED (the tenth trial's run recorded no parameter, and changing SEED showed only the
metric move). A top-level call of a seeding function (``np.random.seed``,
``random.seed``, ``torch.manual_seed``, ``tf.random.set_seed``) notes, for the module
the call starts from, the names its arguments read and their versions; a tracked cell
that reads that module and does not seed it itself records them as parameters, at the
version the seed was given (a name changed since is left out: the generator did not
get its new value). A cell that reads the module for anything else (``np.mean``)
records them too: a parameter that explains nothing there, never a missing one. Static, as the rest: a draw through a module the cell does not name
(an estimator with no ``random_state``) is not seen.
"""

from __future__ import annotations

import ast
import functools
from typing import Any

from .astwalk import parsed
from .dataflow import CellFlow
from .exprfacts import base_name
from .lineage import Lineage, Read
from .values import param_value, type_name

SEEDERS = frozenset(
    {"seed", "manual_seed", "manual_seed_all", "set_seed", "set_random_seed", "seed_everything"}
)


@functools.lru_cache(maxsize=256)
def _seed_calls(source: str) -> list[tuple[str, ast.Call]]:
    """``(module name, call)`` for the cell's top-level seeding calls, in order."""
    if "seed" not in source:
        return []
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    out = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not isinstance(call, ast.Call):
            continue
        if isinstance(call.func, ast.Name) and call.func.id in SEEDERS:
            out.append((call.func.id, call))  # seed_everything(42): what its body seeds
        elif isinstance(call.func, ast.Attribute) and call.func.attr in SEEDERS:
            module = base_name(call.func)
            out += [(module, call)] if module is not None else []
    return out


def _args(call: ast.Call) -> list[ast.expr]:
    return [*call.args, *(k.value for k in call.keywords)]


def seeded(source: str) -> dict[str, frozenset[str]]:
    """``{module name: names its seed arguments read}`` for the cell's top-level seeding
    calls: ``np.random.seed(SEED)`` gives ``{'np': {'SEED'}}``."""
    return {
        module: frozenset(n.id for a in _args(call) for n in ast.walk(a) if isinstance(n, ast.Name))
        for module, call in _seed_calls(source)
    }


def literal_seeds(source: str) -> dict[str, tuple[str, Any]]:
    """``{module name: (the call, its literal seed)}`` for the cell's top-level seeding
    calls given a literal alone: ``np.random.seed(42)`` gives ``{'np': ('np.random.seed',
    42)}`` (the thirteenth trial's runs recorded no seed: it is in no name)."""
    out = {}
    for module, call in _seed_calls(source):
        args = _args(call)
        if len(args) == 1 and isinstance(args[0], ast.Constant):
            out[module] = (ast.unparse(call.func), args[0].value)
    return out


class Seeds:
    """The seeds given to each module's generator in this kernel, by name and version."""

    def __init__(self, lineage: Lineage) -> None:
        self.lineage = lineage
        self.given: dict[str, dict[str, int]] = {}
        self.literal: dict[str, tuple[str, Any]] = {}  # np: ('np.random.seed', 42)

    def after_cell(self, source: str) -> None:
        """Note the seeds the cell that just ran (its transformed code) gave."""
        names = self.lineage.names
        for module, read in seeded(source).items():
            self.given[module] = {n: names[n].version for n in read if n in names}
            self.literal.pop(module, None)
        self.literal.update(literal_seeds(source))

    def reads(self, source: str, flow: CellFlow, taken: list[Read]) -> list[Read]:
        """The seeds behind the generators of the modules the tracked cell (its
        transformed code, ``source``) reads and does not seed itself; ``taken``: what it
        reads already."""
        have = {r.name for r in taken}
        read = set(flow.reads) | SEEDERS  # (a seeding function: any generator, unseen)
        modules = read & self.given.keys()
        out: list[Read] = []
        for module in sorted(read & self.literal.keys() - seeded(source).keys()):
            call, value = self.literal[module]
            ok, plain = _param(value)
            if ok and call not in have:
                behind = f"the {module} random state"
                out.append(
                    Read(call, type_name(value), True, plain, "upstream", None, behind=behind)
                )
        for module in sorted(modules - seeded(source).keys()):
            for n, version in sorted(self.given[module].items()):
                p = self.lineage.names.get(n)
                value = self.lineage.ns.get(n, _MISSING)
                if n in have or p is None or p.version != version or value is _MISSING:
                    continue
                ok, plain = _param(value)
                if ok:
                    have.add(n)
                    behind = f"the {module} random state"
                    out.append(Read(n, type_name(value), True, plain, p.origin, p, behind=behind))
        return out


_MISSING = object()


def _param(value: Any) -> tuple[bool, Any]:
    try:
        return param_value(value)
    except Exception:  # a value whose __eq__ raises is not a parameter
        return False, None
