"""Settings a tracked cell loads from a file: ``cfg = yaml.safe_load(f)``.

A project's settings often live in a file (DVC's ``params.yaml``, a ``config.json``, a
``pyproject``-style TOML) that the training cell loads itself. The file is an input of
the run, but the values it gave were no parameter: the eleventh trial's ``nbtrack ls``
had no ``lr`` column and a changed learning rate read only "params.yaml changed". A name
the cell binds from a config loader (``yaml.safe_load``/``load``/``full_load``,
``json.load``, ``tomllib.load``, ``toml.load``, or their ``loads`` of a file's text,
``json.loads(Path(p).read_text())``, or of the cell's own text,
``yaml.safe_load('lr: 0.1')``: the thirteenth trial's recorded nothing) is a parameter,
with its value as the cell left it, when that value is parameter-like (a long list of
records loaded the same way is data, not settings); so is a config object filled from one
(``TrainConfig(**yaml.safe_load(f))``), and a section of one taken by a literal key
(DVC's ``yaml.safe_load(open("params.yaml"))["train"]``, ``json.load(f).get("model")``:
the twelfth trial's recorded no parameter). Found by name, not by type: a loader imported
under another name (``from yaml import safe_load``) is not seen.
"""

from __future__ import annotations

import ast
from typing import Any

from .astwalk import parsed
from .values import param_value

_LOADERS = {
    "yaml": {"safe_load", "load", "full_load"},
    "json": {"load"},
    "tomllib": {"load"},
    "tomli": {"load"},
    "toml": {"load"},
}
_TEXT_LOADERS = {m: {"loads"} for m in ("json", "tomllib", "tomli", "toml")}
_READS = {"read", "read_text"}  # open(p).read(), Path(p).read_text()
_BLOCKS = (ast.With, ast.AsyncWith, ast.If, ast.Try)  # not loops: a loop's last load


def loaded_names(source: str) -> list[str]:
    """The names the cell's code binds from a config loader, outside loops and functions.

    >>> loaded_names("with open('c.yaml') as f:\\n    cfg = yaml.safe_load(f)\\nn = len(cfg)")
    ['cfg']
    """
    if "load" not in source:
        return []
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return []
    found: list[str] = []
    stack: list[ast.stmt] = list(reversed(tree.body)) if tree is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assign) and _loads_config(node.value):
            found += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, _BLOCKS):
            for block in ("body", "orelse", "finalbody"):
                stack.extend(reversed(getattr(node, block, [])))
            for handler in getattr(node, "handlers", []):
                stack.extend(reversed(handler.body))
    return list(dict.fromkeys(found))


def _section(v: ast.expr) -> ast.expr | None:
    """What ``v`` takes a section of by a literal key (``load(f)["train"]``,
    ``load(f).get("model")``), or None."""
    if isinstance(v, ast.Subscript) and isinstance(v.slice, ast.Constant):
        return v.value
    if (
        isinstance(v, ast.Call)
        and isinstance(v.func, ast.Attribute)
        and v.func.attr == "get"
        and len(v.args) == 1
        and not v.keywords
        and isinstance(v.args[0], ast.Constant)
    ):
        return v.func.value
    return None


def _loads_config(v: ast.expr) -> bool:
    inner = _section(v)  # DVC's yaml.safe_load(open("params.yaml"))["train"]
    if inner is not None:
        return _loads_config(inner)
    if isinstance(v, ast.Call) and len(v.keywords) == 1 and v.keywords[0].arg is None:
        return not v.args and _loads_config(v.keywords[0].value)  # TrainConfig(**load(f))
    if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.args):
        return False
    owner = v.func.value
    module = owner.id if isinstance(owner, ast.Name) else None
    if module is None:
        return False
    if v.func.attr in _LOADERS.get(module, ()):
        return True
    text = v.args[0]  # a file's text, or the cell's own: json.loads('{"wd": 0.01}')
    return v.func.attr in _TEXT_LOADERS.get(module, ()) and (
        (isinstance(text, ast.Constant) and isinstance(text.value, str))
        or (
            isinstance(text, ast.Call)
            and isinstance(text.func, ast.Attribute)
            and text.func.attr in _READS
        )
    )


def loaded_settings(source: str, user_ns: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """``{name: value}`` for the loaded configs (``loaded_names``) that are parameter-like
    at the end of the cell, but those in ``skip``."""
    out = {}
    for name in loaded_names(source):
        if name in skip or name not in user_ns:
            continue
        try:
            ok, plain = param_value(user_ns[name])
        except Exception:  # a value whose comparison raises: no setting
            continue
        if ok:
            out[name] = plain
    return out
