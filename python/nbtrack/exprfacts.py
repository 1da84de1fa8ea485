"""Facts about single expressions that the dataflow of a cell needs.

- Literals: ``n = 2 ** 10`` binds a literal (an ``auto`` parameter), ``n = f()`` does not.
- Bases: ``df["a"] = 1``, ``X.w[0] = 1`` and ``df.dropna(inplace=True)`` may change the
  object of the name their chain of attributes and subscripts starts from.
- pandas' string expressions: ``DataFrame.query``, ``DataFrame.eval`` and ``pandas.eval``
  read the caller's variables by name from inside a string (``@name``); the dataflow of a
  cell (dataflow.py) and of the notebook code it calls (codeflow.py) count them as read,
  as they do a name in code.
- IPython's strings of code: ``%time m = fit(n)`` and ``%timeit f(n)`` run Python code
  and ``!echo {depth}`` expands Python expressions, which the cell's code holds only as
  strings (``get_ipython().run_line_magic('time', 'm = fit(n)')``).
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
from collections.abc import Callable

#: pandas' string expressions name the caller's variables as ``@name``:
#: ``df.query("amount > @min_amount")``, ``df.eval(...)``, ``pd.eval(...)``.
AT_CALLS = frozenset({"query", "eval", "sql", "execute", "from_query"})
AT_NAME = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
# A table DuckDB's SQL names that is a variable of the caller (`FROM df`, a DataFrame,
# an Arrow table, a relation: its replacement scan); not a table function, `read_csv(`;
# only in text that starts as SQL does ('data from cache' in a pandas query is no SQL).
SQL_TABLE = re.compile(r"\b(?:from|join)\s+([A-Za-z_]\w*)\b(?!\s*\()", re.IGNORECASE)
SQL_START = re.compile(
    r"\s*\(?\s*(?:select|from|with|insert|create|copy|pivot|unpivot|describe|summarize|explain)\b",
    re.IGNORECASE,
)


def sql_names(text: str) -> list[str]:
    """The variables a string of DuckDB SQL names as tables (``SELECT * FROM sales``)."""
    return SQL_TABLE.findall(text) if SQL_START.match(text) else []


def text_names(text: str) -> list[str]:
    """The variables a string of pandas or DuckDB code reads: ``amount > @min_amount``,
    ``SELECT * FROM sales``.

    >>> text_names("SELECT * FROM sales s JOIN read_csv('r.csv') USING (k) WHERE a > 1")
    ['sales']
    """
    return AT_NAME.findall(text) + sql_names(text) if text else []


def at_names(call: ast.Call, find: Callable[[str], list[str]] = text_names) -> list[str]:
    """The variables a pandas ``query``/``eval`` call's literal expression names with
    ``@``, or a DuckDB ``sql``/``execute`` call's literal SQL as tables (text_names)."""
    expr = call.args[0] if call.args else None
    for k in call.keywords:
        if k.arg in ("expr", "query"):
            expr = k.value
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return find(expr.value)
    if isinstance(expr, ast.JoinedStr):  # an f-string: its literal text, `{}` for the rest
        parts = (p.value if isinstance(p, ast.Constant) else "{}" for p in expr.values)
        return find("".join(str(p) for p in parts))
    return []


def sql_tables(call: ast.Call) -> list[str]:
    """The variables the literal SQL of a call names as tables (``FROM df``)."""
    return at_names(call, sql_names)


def base_name(node: ast.expr) -> str | None:
    """The name a chain of attributes and subscripts starts from: ``df`` of
    ``df["a"].values``; None for ``f().a`` or ``[1][0]``."""
    while type(node) is ast.Attribute or type(node) is ast.Subscript:
        node = node.value
    return node.id if type(node) is ast.Name else None


_EMPTY_CALLS = frozenset({"set", "dict", "list", "tuple"})


def is_literal(v: ast.expr | None) -> bool:
    """A literal, or arithmetic on literals (``2 ** 10``, ``-1``, ``[64, 32]``, ``set()``)."""
    t = type(v)  # asked of every assignment of a cell: type tests, not isinstance chains
    if t is ast.Constant:
        return True
    if t is ast.Tuple or t is ast.List or t is ast.Set:
        return all(is_literal(e) for e in v.elts)  # type: ignore[union-attr]
    if t is ast.Dict:
        return all(k is not None and is_literal(k) for k in v.keys) and all(  # type: ignore[union-attr]
            map(is_literal, v.values)  # type: ignore[union-attr]
        )
    if t is ast.UnaryOp:
        return is_literal(v.operand)  # type: ignore[union-attr]
    if t is ast.BinOp:
        return is_literal(v.left) and is_literal(v.right)  # type: ignore[union-attr]
    if isinstance(v, ast.Call):  # set() and the like, and dict(lr=0.1, depth=3)
        f = v.func
        if isinstance(f, ast.Name) and f.id == "dict" and not v.args and v.keywords:
            return as_dict_literal(v) is not None
        return isinstance(f, ast.Name) and f.id in _EMPTY_CALLS and not v.args and not v.keywords
    return False


def as_dict_literal(v: ast.expr) -> ast.Dict | None:
    """``dict(lr=0.1, depth=3)`` as the literal ``{'lr': 0.1, 'depth': 3}`` (how XGBoost
    and LightGBM tutorials write their ``params``); None for any other expression."""
    if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "dict"):
        return None
    if (
        v.args
        or not v.keywords
        or any(k.arg is None or not is_literal(k.value) for k in v.keywords)
    ):
        return None
    return ast.Dict(
        keys=[ast.Constant(k.arg) for k in v.keywords],
        values=[as_dict_literal(k.value) or k.value for k in v.keywords],  # dict(b=dict(c=2))
    )


_COPIES = frozenset({"copy", "deepcopy"})


def config_bases(v: ast.expr) -> list[str] | None:
    """The names a dict built from other dicts and literals starts from, or None.

    Boosting tutorials build their settings from a base config: ``{**BASE, "leaves": 15}``,
    ``BASE | {"leaves": 15}``, ``dict(BASE, leaves=15)``, or a copy (``BASE.copy()``,
    ``copy.deepcopy(BASE)``, ``dict(BASE)``) changed key by key after. The dict the cell
    uses is then a parameter as a literal one is (its value at the end of the cell).

    >>> config_bases(ast.parse('{**base, "lr": 0.1}', mode="eval").body)
    ['base']

    A dict of literals and names (``{"eta": lr, "objective": "binary"}``, ``dict(alpha=lr,
    n=50)``: XGBoost's ``params``) is one too, built from those names: the eighth trial's run
    recorded ``lr`` and not the objective written beside it.

    >>> config_bases(ast.parse('{"lr": lr, "n": 3}', mode="eval").body)
    ['lr']
    """
    if isinstance(v, ast.Dict):
        splats = [n for k, n in zip(v.keys, v.values, strict=True) if k is None]
        plain = [(k, n) for k, n in zip(v.keys, v.values, strict=True) if k is not None]
        if not all(isinstance(n, ast.Name) for n in splats) or not all(
            is_literal(k) and _setting(n) for k, n in plain
        ):
            return None
        found = [n.id for n in (*splats, *(n for _, n in plain)) if isinstance(n, ast.Name)]
        return found or None
    if isinstance(v, ast.BinOp) and isinstance(v.op, ast.BitOr):  # BASE | {"leaves": 15}
        sides = (v.left, v.right)
        names = [s.id for s in sides if isinstance(s, ast.Name)]
        literal = [s for s in sides if isinstance(s, ast.Dict) and is_literal(s)]
        return names if len(names) == 1 and literal else None  # A | B: ints, sets too
    if not isinstance(v, ast.Call):
        return None
    f, args = v.func, v.args
    if isinstance(f, ast.Name) and f.id == "dict" and not args:  # dict(alpha=lr, n=50)
        values = [k.value for k in v.keywords if k.arg is not None]
        given = [n.id for n in values if isinstance(n, ast.Name)]
        ok = len(values) == len(v.keywords) and all(map(_setting, values))
        return given if ok and given else None
    if not (len(args) == 1 and isinstance(args[0], ast.Name)):  # BASE.copy() has none
        if isinstance(f, ast.Attribute) and f.attr == "copy" and not args and not v.keywords:
            return [f.value.id] if isinstance(f.value, ast.Name) else None
        return None
    if isinstance(f, ast.Name) and f.id == "dict":  # dict(BASE, leaves=15)
        literal_kw = all(k.arg is not None and is_literal(k.value) for k in v.keywords)
        return [args[0].id] if literal_kw else None
    callee = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    return [args[0].id] if callee in _COPIES and not v.keywords else None  # copy.deepcopy(BASE)


#: Line magics whose argument is Python code run in the user's namespace, and whether
#: it runs in a scope of its own (``%timeit``'s timing function) rather than at top level
#: (``%time m = fit(n)`` binds ``m``).
RUN_SCRIPT = "run_line_magic('run'"  # %run in a cell's transformed code
CODE_MAGICS = {"time": False, "prun": False, "debug": False, "timeit": True}
_SHELL_BRACES = re.compile(r"\{([^{}]+)\}")
_SHELL_DOLLAR = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")


def ipython_code(call: ast.Call) -> tuple[list[ast.stmt], bool] | None:
    """The Python code IPython runs from a string of the cell: the statement of
    ``%time m = fit(n)`` (``get_ipython().run_line_magic('time', 'm = fit(n)')``), its
    options left out (``%timeit -n 3 f(n)``), and whether it has a scope of its own; the
    expressions ``!echo {depth} $name`` or ``%run train.py --lr {lr}`` expands (IPython
    fills them from the namespace).
    None for any other call."""
    f = call.func
    owner = f.value if isinstance(f, ast.Attribute) else None
    if not (isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "get_ipython"):
        return None
    args = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    method = getattr(f, "attr", "")
    if len(args) != len(call.args):
        return None
    if method == "run_line_magic" and len(args) == 2 and args[0] in CODE_MAGICS:
        tree = _statement(args[1])
        return (tree, CODE_MAGICS[args[0]]) if tree is not None else None
    if method == "run_line_magic" and len(args) == 2 and args[0] == "run":
        return _expanded(args[1]) + _script_run_in_namespace(args[1]), False  # (expanded first)
    if method == "run_line_magic" and len(args) == 2 and args[0] == "store":
        return _store_restored(args[1]), False
    if method == "run_line_magic" and len(args) == 2:  # %any {x}: IPython fills x in
        return _expanded(args[1]), False
    if method in ("system", "getoutput") and len(args) == 1:
        return _expanded(args[0]), False
    return None


def _expanded(line: str) -> list[ast.stmt]:
    """The expressions IPython fills into a shell or magic line (``{depth}``, ``$name``):
    the eleventh trial's ``%run train.py --lr {lr}`` trained with the notebook's ``lr``
    and recorded none."""
    found = [*_SHELL_BRACES.findall(line), *_SHELL_DOLLAR.findall(line)]
    exprs = [e for e in map(_statement, found) if e and isinstance(e[0], ast.Expr)]
    return [e[0] for e in exprs]


def _script_run_in_namespace(line: str) -> list[ast.stmt]:
    """The code of ``%run -i script.py``, which runs in the notebook's namespace and so
    reads its names (the seventh trial's script read ``factor``, recorded nowhere); a
    plain ``%run`` runs in a namespace of its own, nothing of the notebook's read, and
    copies the names its script binds into the notebook's: bound by the cell (an import
    of each), not read later (the twelfth trial's ``%run prep.py`` then ``x * factor``
    recorded ``factor=3 (upstream)``, what an earlier run left, where the script now
    set 5)."""
    try:
        words = shlex.split(line)
    except ValueError:
        return []
    options = list(itertools.takewhile(lambda w: w.startswith("-"), words))
    script = words[len(options)] if len(words) > len(options) else None
    if script is None or not script.endswith(".py"):
        return []
    try:
        with open(script, encoding="utf-8") as f:
            body = ast.parse(f.read()).body
    except (OSError, SyntaxError, ValueError):
        return []
    if "-i" in options:
        return body
    return [ast.Import(names=[ast.alias(name=n)]) for n in _top_level_names(body)]


def _top_level_names(body: list[ast.stmt]) -> list[str]:
    """The names a module's code binds in its own namespace (not inside its functions)."""
    found: dict[str, None] = {}
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = None
            continue
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        ):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(
                (a.asname or a.name.split(".")[0], None) for a in node.names if a.name != "*"
            )
        elif isinstance(node, ast.Name) and type(node.ctx) is ast.Store:
            found[node.id] = None
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return list(found)


def _store_restored(line: str) -> list[ast.stmt]:
    """``%store -r zz`` binds ``zz`` to the value IPython's store holds, not the one the
    notebook had (the tenth trial recorded ``zz=99 (upstream)`` for a cell that used the
    stored 5): an import of the name, which binds it and reads nothing. A bare
    ``%store -r`` restores names the code does not say, and stays unseen."""
    words = line.split()
    if not words or words[0] != "-r":
        return []
    return [ast.Import(names=[ast.alias(name=w)]) for w in words[1:] if w.isidentifier()]


def _statement(text: str) -> list[ast.stmt] | None:
    """``text`` parsed, after the leading options that keep it from parsing (``-n 3``)."""
    tokens = text.strip().split()
    for i in range(len(tokens)):
        if i and not tokens[0].startswith("-"):
            break
        try:
            return ast.parse(" ".join(tokens[i:])).body
        except (SyntaxError, ValueError):
            continue
    return None


def _setting(v: ast.expr) -> bool:
    return is_literal(v) or isinstance(v, ast.Name)


def literal_call(v: ast.expr) -> list[str] | None:
    """The names a call of a name or attribute with literal (or plain name) arguments, or
    none, reads: ``TrainConfig(lr=lr, epochs=4)`` gives ``['lr']``, ``TrainConfig()`` and
    ``parser.parse_args(["--lr", "0.1"])`` ``[]``: a config object made in the cell (its
    value at the end is one, or nothing: ``time.time()``); None for any other expression."""
    if not isinstance(v, ast.Call) or base_name(v.func) is None:
        return None
    values = [*v.args, *(k.value for k in v.keywords)]
    if any(k.arg is None for k in v.keywords) or not all(
        is_literal(a) or isinstance(a, ast.Name) for a in values
    ):
        return None
    return [a.id for a in values if isinstance(a, ast.Name)]
