"""Which names a cell reads from the kernel namespace and which it (re)binds.

A pure analysis of the cell's code (its AST), in evaluation order: a name loaded before the cell
binds it is an *input* read from the namespace; ``n *= 2`` reads ``n`` first. Names read inside
functions and lambdas the cell defines count as read when the cell may call them (defreads.py),
unless the cell binds them itself. Code the notebook defined earlier is followed through its compiled code
(``codeflow``): a cell that calls ``train()`` reads the globals ``train`` reads, transitively.

Not seen (docs/design.md): names reached through ``globals()[...]``, ``exec``/``eval`` strings,
``from x import *`` (a cell using one of these is flagged ``dynamic``), and objects changed in
place by a function they are passed to (``passed`` only names them).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from operator import attrgetter

from . import exprfacts
from .astwalk import kids, parsed
from .bodyreads import DYNAMIC_CALLS, body_reads
from .cellflow import CellFlow, merge
from .codeflow import BUILTINS
from .defreads import called_bodies
from .exprfacts import AT_CALLS, at_names, base_name, is_literal, sql_tables
from .passedargs import handed

__all__ = ["CellFlow", "analyze", "analyze_tree", "merge"]


_MADE_OF = frozenset({ast.Dict, ast.BinOp, ast.Call})  # values config_bases reads
_VALUE = attrgetter("value")
_COMPREHENSIONS = frozenset({ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp})


class _Walker:
    """One pass over a module in evaluation order."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.reads: dict[str, None] = {}
        self.deferred: dict[str, set[str | None]] = {}  # read when called -> whose bodies
        self.owner: str | None = None  # the top-level class whose body is walked
        self.assigns, self.mutates, self.called = set[str](), set[str](), set[str]()
        self.literals: dict[str, None] = {}
        self.loop_changed, self.declared, self.tables = set[str](), set[str](), set[str]()
        self.config_calls: set[str] = set()
        self.passed: tuple[set[str], set[str]] = (set(), set())  # outside loops, in loops
        self.loops = 0  # depth of the top-level for/while loops being walked
        self.dynamic = False
        self.scopes: list[set[str]] = []  # inner scopes walked now (class bodies, comprehensions)
        self.class_scopes: list[set[str]] = []

    # ---------------------------------------------------------------- names
    def load(self, name: str) -> None:
        for scope in self.scopes:
            if name in scope:
                return
        if name not in self.bound and name not in self.reads:
            self.reads[name] = None

    def store(self, name: str, top: bool = False) -> None:
        if self.scopes and not top:
            self.scopes[-1].add(name)
            return
        self.bound.add(name)
        self.assigns.add(name)
        if self.loops and not self.scopes and name in self.literals:  # _changed_in_loop, inlined
            self.loop_changed.add(name)

    def _changed_in_loop(self, name: str) -> None:
        if self.loops and not self.scopes and (name in self.literals or name not in self.bound):
            self.loop_changed.add(name)  # (an upstream `history.append(loss)` too)

    # ---------------------------------------------------------------- statements
    def body(self, stmts: Iterable[ast.stmt]) -> None:
        for s in stmts:
            self.stmt(s)

    def stmt(self, node: ast.stmt) -> None:
        t = type(node)  # (an isinstance chain per statement cost a tenth of the pass)
        if t is ast.Expr:
            self.expr(node.value)  # type: ignore[attr-defined]
        elif t is ast.Assign or (t is ast.AnnAssign and node.value is not None):  # type: ignore[attr-defined]
            targets = node.targets if t is ast.Assign else [node.target]  # type: ignore[attr-defined]
            self.expr(node.value)  # type: ignore[attr-defined]
            for tg in targets:
                if type(tg) is ast.Name:  # target(), inlined: most targets are names
                    self.store(tg.id)
                else:
                    self.target(tg)
            if not self.scopes:
                for tg in targets:
                    self._collect_literal(tg, node.value)  # type: ignore[attr-defined]
        elif t is ast.AugAssign:
            self._augassign(node)  # type: ignore[arg-type]
        elif t is ast.AnnAssign:
            pass  # `x: int` binds nothing
        elif t is ast.For or t is ast.AsyncFor:
            self.expr(node.iter)  # type: ignore[attr-defined]
            self.loops += 1
            self.target(node.target)  # type: ignore[attr-defined]
            self.body(node.body)  # type: ignore[attr-defined]
            self.loops -= 1
            self.body(node.orelse)  # type: ignore[attr-defined]
        elif t is ast.If:
            self.expr(node.test)  # type: ignore[attr-defined]
            self.body(node.body)  # type: ignore[attr-defined]
            self.body(node.orelse)  # type: ignore[attr-defined]
        elif t is ast.While:
            self.loops += 1
            self.expr(node.test)  # type: ignore[attr-defined]
            self.body(node.body)  # type: ignore[attr-defined]
            self.loops -= 1
            self.body(node.orelse)  # type: ignore[attr-defined]
        elif t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            for d in node.decorator_list:  # type: ignore[attr-defined]
                self.expr(d)
            self._arguments(node.args)  # type: ignore[attr-defined]
            decorated = node.decorator_list  # type: ignore[attr-defined]
            self._deferred(node, self.owner or (None if decorated else node.name))  # type: ignore[attr-defined]
            self.store(node.name)  # type: ignore[attr-defined]
        elif t is ast.ClassDef:
            self._class(node)  # type: ignore[arg-type]
        elif t is ast.Import:
            for a in node.names:  # type: ignore[attr-defined]
                self.store(a.asname or a.name.partition(".")[0])
        elif t is ast.ImportFrom:
            for a in node.names:  # type: ignore[attr-defined]
                if a.name == "*":
                    self.dynamic = True
                else:
                    self.store(a.asname or a.name)
        elif t is ast.Delete:
            for tg in node.targets:  # type: ignore[attr-defined]
                self.target(tg)
        else:  # with/try/match/return/global...: fields in evaluation order
            for child in kids(node):
                self.node(child)

    def _augassign(self, node: ast.AugAssign) -> None:
        t = node.target
        if type(t) is ast.Name:
            self.load(t.id)
            self.expr(node.value)
            self.store(t.id)
            if not self.scopes:
                self.mutates.add(t.id)
        else:  # (`cfg.lr *= 0.9` in a loop decays a rate: the loop's, as `lr *= 0.9`)
            self.expr(node.value)
            self.target(t)
            base = base_name(t)
            if base is not None and not self.scopes:
                self._changed_in_loop(base)

    def _class(self, node: ast.ClassDef) -> None:
        for e in (*node.decorator_list, *node.bases, *(k.value for k in node.keywords)):
            self.expr(e)
        scope: set[str] = set()
        self.scopes.append(scope)
        self.class_scopes.append(scope)
        outer, self.owner = self.owner, self.owner or node.name
        self.body(node.body)
        self.owner = outer
        self.class_scopes.pop()
        self.scopes.pop()
        self.store(node.name)

    def node(self, child: ast.AST) -> None:
        if isinstance(child, ast.expr):
            self.expr(child)
        elif isinstance(child, ast.stmt):
            self.stmt(child)
        elif isinstance(child, ast.withitem):
            self.expr(child.context_expr)
            if child.optional_vars is not None:
                self.target(child.optional_vars)
        elif isinstance(child, ast.ExceptHandler):
            if child.type is not None:
                self.expr(child.type)
            if child.name:
                self.store(child.name)
            self.body(child.body)
        elif isinstance(child, ast.match_case):
            self.pattern(child.pattern)
            if child.guard is not None:
                self.expr(child.guard)
            self.body(child.body)
        else:
            for sub in kids(child):
                self.node(sub)

    def pattern(self, p: ast.AST) -> None:
        for sub in ast.walk(p):
            if isinstance(sub, ast.expr):
                self.expr(sub)  # value patterns (Color.RED) read names
            name = getattr(sub, "name", None) or getattr(sub, "rest", None)
            if isinstance(name, str):
                self.store(name)

    def target(self, t: ast.expr) -> None:
        kind = type(t)
        if kind is ast.Name:
            self.store(t.id)  # type: ignore[attr-defined]
        elif kind is ast.Tuple or kind is ast.List:
            for e in t.elts:  # type: ignore[attr-defined]
                self.target(e)
        elif kind is ast.Starred:
            self.target(t.value)  # type: ignore[attr-defined]
        else:  # x.a = ..., x[i] = ...: reads x and changes its object
            self.expr(t)
            base = base_name(t)
            if base is not None and not self.scopes:
                self.mutates.add(base)
                # An attribute set in a loop (overrides put on a config) is the setting
                # the cell goes on with; an item stored (a grid point) is the loop's own.
                if kind is not ast.Attribute or base in self.literals:
                    self._changed_in_loop(base)

    def _collect_literal(self, t: ast.expr, value: ast.expr) -> None:
        kind = type(t)
        if kind is ast.Name:
            v = type(value)  # (config_bases and literal_call know no other kind of value)
            derived = v in _MADE_OF and self._found(exprfacts.config_bases(value))  # {**BASE}
            call = not derived and v is ast.Call and self._found(exprfacts.literal_call(value))
            # `epochs = 1 if DEBUG else 20`: a choice of literals is one, the one taken
            chosen = v is ast.IfExp and is_literal(value.body) and is_literal(value.orelse)  # type: ignore[attr-defined]
            if call or derived or chosen or is_literal(value):
                self.literals[t.id] = None  # type: ignore[attr-defined]
                (self.config_calls.add if call else self.config_calls.discard)(t.id)  # type: ignore[attr-defined]
                if not self.loops:  # written again: its value at the end is this one's
                    self.loop_changed.discard(t.id)  # type: ignore[attr-defined]
            else:
                self._computed(t.id)  # type: ignore[attr-defined]
        elif kind is ast.Tuple or kind is ast.List:
            elts: list[ast.expr] = t.elts  # type: ignore[attr-defined]
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(elts):
                for te, ve in zip(elts, value.elts, strict=True):
                    self._collect_literal(te, ve)
            elif type(value) is ast.Call and all(type(e) is ast.Name for e in elts):
                for te in elts:  # args, rest = parser.parse_known_args(): a config each, or not
                    self._collect_literal(te, value)
            else:
                for e in ast.walk(t):
                    if isinstance(e, ast.Name):
                        self._computed(e.id)

    def _found(self, bases: list[str] | None) -> bool:
        """Whether ``bases`` (``{**BASE, "leaves": 15}``) are literals or found, not made."""
        if bases is None:
            return False
        bound, lits, configs = self.bound, self.literals, self.config_calls
        # made: bound to something computed (n = len(rows)), or to a config object
        return all(b not in bound or (b in lits and b not in configs) for b in bases)

    def _computed(self, name: str) -> None:
        """``name`` bound to something computed: no literal, unless a loop changes it."""
        if self.loops and name in self.loop_changed:  # store() marked it just now
            return
        self.literals.pop(name, None)
        self.loop_changed.discard(name)

    # ---------------------------------------------------------------- expressions
    def expr(self, node: ast.expr) -> None:
        t = type(node)  # (the kinds most nodes are first: a test less for each)
        if t is ast.Name:
            name = node.id  # type: ignore[attr-defined]
            if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                self.store(name)
            elif self.scopes:
                self.load(name)
            elif name not in self.bound and name not in self.reads:  # load(), inlined: hot
                self.reads[name] = None
        elif t is ast.Constant:
            pass
        elif t is ast.Call:
            self._call(node)  # type: ignore[arg-type]
        elif t is ast.Attribute:  # df.a.b reads df
            node = node.value  # type: ignore[attr-defined]
            while type(node) is ast.Attribute:
                node = node.value
            self.expr(node)
        elif t is ast.BinOp:
            self.expr(node.left)  # type: ignore[attr-defined]
            self.expr(node.right)  # type: ignore[attr-defined]
        elif t is ast.Subscript:
            self.expr(node.value)  # type: ignore[attr-defined]
            self.expr(node.slice)  # type: ignore[attr-defined]
        elif t is ast.Tuple or t is ast.List or t is ast.Set:
            for e in node.elts:  # type: ignore[attr-defined]
                self.expr(e)
        elif t is ast.Compare:
            self.expr(node.left)  # type: ignore[attr-defined]
            for e in node.comparators:  # type: ignore[attr-defined]
                self.expr(e)
        elif t is ast.BoolOp or t is ast.JoinedStr:
            for e in node.values:  # type: ignore[attr-defined]
                self.expr(e)
        elif t is ast.NamedExpr:
            # := binds in the enclosing function/module scope, through comprehensions.
            self.expr(node.value)  # type: ignore[attr-defined]
            if self.class_scopes:
                self.class_scopes[-1].add(node.target.id)  # type: ignore[attr-defined]
            else:
                self.store(node.target.id, top=True)  # type: ignore[attr-defined]
        elif t in _COMPREHENSIONS:
            self._comprehension(node)
        elif t is ast.Lambda:
            self._arguments(node.args)  # type: ignore[attr-defined]
            self._deferred(node, None)
        else:
            for child in kids(node):
                if isinstance(child, ast.expr):
                    self.expr(child)
                else:
                    self.node(child)

    def _call(self, node: ast.Call) -> None:
        f = node.func
        if type(f) is ast.Name and f.id in DYNAMIC_CALLS:
            self.dynamic = True
        head = f  # expr() of df.a.b is expr() of df
        while type(head) is ast.Attribute:
            head = head.value
        scopes, bound, reads = self.scopes, self.bound, self.reads
        for a in (head, *node.args, *map(_VALUE, node.keywords)):
            if type(a) is ast.Name and not scopes:  # expr(), inlined: all are loads
                if a.id not in bound and a.id not in reads:
                    reads[a.id] = None
            else:
                self.expr(a)
        if not scopes and (node.args or node.keywords):  # names handed on (passedargs.py)
            self.passed[self.loops > 0].update(handed(node))
            if (
                type(f) is ast.Name
                and f.id == "setattr"
                and node.args
                and type(node.args[0]) is ast.Name
            ):
                self.mutates.add(node.args[0].id)  # setattr(cfg, k, v): as `cfg.lr = v`
        if type(f) is ast.Attribute:
            base = base_name(f.value)  # df.dropna(inplace=True) may change df
            if base is not None and (not scopes or not any(base in s for s in scopes)):
                self.called.add(base)
            if f.attr in AT_CALLS:
                self.tables.update(sql_tables(node))
                for name in at_names(node):
                    self.load(name)
            if type(f.value) is ast.Call:  # %time m = fit(n), !echo {depth}
                self._ipython_code(node)
            if self.loops and type(f.value) is ast.Name:  # history.append(loss)
                self._changed_in_loop(f.value.id)
        elif type(f) is ast.Name and (not scopes or not any(f.id in s for s in scopes)):
            self.called.add(f.id)  # model(X) is model.__call__(X): it may change model

    def _ipython_code(self, call: ast.Call) -> None:
        stmts, scoped = exprfacts.ipython_code(call) or ([], False)
        self.scopes += [set()] if scoped else []
        self.body(stmts)
        if scoped:
            self.scopes.pop()

    def _comprehension(self, node: ast.AST) -> None:
        gens: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.expr(gens[0].iter)  # evaluated in the enclosing scope
        self.scopes.append(set())
        for i, g in enumerate(gens):
            if i:
                self.expr(g.iter)
            self.target(g.target)
            for cond in g.ifs:
                self.expr(cond)
        if isinstance(node, ast.DictComp):
            self.expr(node.key)
            self.expr(node.value)
        else:
            self.expr(node.elt)  # type: ignore[attr-defined]
        self.scopes.pop()

    def _arguments(self, args: ast.arguments) -> None:
        for d in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.expr(d)

    def _deferred(self, fn: ast.AST, owner: str | None) -> None:
        """A function body runs later: its free names are read when it is called."""
        found = body_reads(fn)
        self.assigns.update(found.globals)
        self.declared.update(found.globals)
        self.dynamic = self.dynamic or found.dynamic
        for name in found.free:
            self.deferred.setdefault(name, set()).add(owner)

    def result(self, tree: ast.Module) -> CellFlow:
        reads, lits, bound = dict(self.reads), self.literals, self.bound
        # (a name the cell binds itself it binds before any call, usually)
        calls_ns = self.dynamic or any(n in reads and n not in BUILTINS for n in self.called)
        called = called_bodies(self.deferred, tree, calls_ns)
        reads.update((n, None) for n in called if n not in self.assigns and n not in reads)
        return CellFlow(
            reads=tuple(reads),
            assigns=frozenset(self.assigns),
            mutates=frozenset(self.mutates),
            called=frozenset(self.called),
            # Read, then rebound to a literal: an input (``print(epochs); epochs = 3`` used 5).
            literals=tuple(k for k in self.literals if k not in reads),
            loop_changed=frozenset(k for k in self.loop_changed if k in lits or k not in bound),
            config_calls=frozenset(k for k in self.config_calls if k in self.literals),
            passed=frozenset(self.passed[0] - self.passed[1]),
            declared=frozenset(self.declared),
            tables=frozenset(self.tables),
            dynamic=self.dynamic,
        )


def analyze_tree(tree: ast.Module) -> CellFlow:
    """The flow of an already parsed cell (``ast.parse`` of the transformed code)."""
    w = _Walker()
    try:
        w.body(tree.body)
        return w.result(tree)
    except RecursionError:
        return CellFlow(error="the code is nested too deeply to analyse")


@functools.lru_cache(maxsize=512)
def _analyze(source: str) -> CellFlow:
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError) as exc:
        return CellFlow(error=f"cannot parse the cell: {exc}")
    return analyze_tree(tree)


def analyze(source: str) -> CellFlow:
    """A cell's flow (its transformed code), cached by source but for a %run -i script's."""
    return (_analyze.__wrapped__ if exprfacts.RUN_SCRIPT in source else _analyze)(source)
