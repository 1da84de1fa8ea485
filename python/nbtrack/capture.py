"""What a run records about itself: literal parameters, environment, notebook (git: gitstate.py)."""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import json
import os
import platform
import threading
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import launcher, settings
from .astwalk import parsed
from .exceptions import NbtrackError
from .exprfacts import as_dict_literal
from .models import Environment
from .values import param_value

if TYPE_CHECKING:
    from .cache import Cache

_UNSET = object()


def literal_assignments(source: str) -> dict[str, Any]:
    """Top-level assignments of literals in ``source``: ``lr = 0.01``, ``layers = [64, 32]``.

    Tuple unpacking of a tuple literal (``a, b = 1, 2``) counts too; anything
    computed (``n = len(x)``) does not. Source that does not parse gives ``{}``.
    A cell run again is not parsed again (a fresh copy of the values each time).
    """
    found = _literal_assignments(source)
    if any(isinstance(v, (list, dict, set, tuple)) for v in found.values()):
        return copy.deepcopy(found)
    return dict(found)


def end_literals(
    literals: Iterable[str], user_ns: dict[str, Any], skip: set[str], held: dict[str, Any]
) -> dict[str, Any]:
    """The cell's literal parameters with their values at its end (``n *= 2``: 200).

    ``held``, for a failed cell, maps each literal name to the object it held when the
    cell began: a name still holding it was never reached (``b = int('x')`` raised
    before ``lr = 0.7``), so the value as written, logged at the start, stands rather
    than one an earlier cell left. Names in ``skip`` (``-p``/``-m`` names, literals a
    loop changed) keep what was logged for them.
    """
    auto: dict[str, Any] = {}
    for name in literals:
        if name in skip or name not in user_ns or held.get(name, _UNSET) is user_ns[name]:
            continue
        ok, plain = param_value(user_ns[name])
        if ok:
            auto[name] = plain
    return auto


@functools.lru_cache(maxsize=256)
def _literal_assignments(source: str) -> dict[str, Any]:
    try:
        tree = parsed(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            _collect(target, value, found)
    return found


def _special_float(node: ast.AST) -> bool:
    """``float('inf')``, ``float('-inf')``, ``float('nan')``: papermill's spelling of
    these values in the cell it injects (``-p thr inf``, ``-y "thr: .inf"``)."""
    match node:
        case ast.Call(func=ast.Name(id="float"), args=[ast.Constant(value=str(text))], keywords=[]):
            try:
                value = float(text)
            except ValueError:
                return False
            return value != value or value in (float("inf"), float("-inf"))
    return False


class _SpecialFloats(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        if _special_float(node):
            return ast.Constant(float(node.args[0].value))  # type: ignore[attr-defined]
        return self.generic_visit(node)


def _evaluable(value: ast.expr) -> ast.expr:
    """``value`` with papermill's special floats made constants (a copy: parses are cached)."""
    if not any(_special_float(n) for n in ast.walk(value)):
        return value
    return _SpecialFloats().visit(copy.deepcopy(value))


def _collect(target: ast.expr, value: ast.expr, found: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        try:
            found[target.id] = ast.literal_eval(_evaluable(as_dict_literal(value) or value))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            found.pop(target.id, None)  # reassigned to something computed
    elif (
        isinstance(target, (ast.Tuple, ast.List))
        and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts)
    ):
        for t, v in zip(target.elts, value.elts, strict=True):
            _collect(t, v, found)


_environment: Environment | None = None
_environment_lock = threading.Lock()


def environment() -> Environment:
    """Python version, platform and installed packages of this process (computed once).

    Listing the installed distributions takes ~0.5 s, so ``%load_ext nbtrack``
    starts it in the background; a cell that needs it first waits for that one
    computation instead of starting a second.
    """
    global _environment
    with _environment_lock:
        if _environment is None:
            _environment = _list_environment()
        return _environment


def _list_environment() -> Environment:
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = _name_and_version(dist)
        if name:
            # The first on the path is the one imported (a layered environment shadows).
            packages.setdefault(name.lower().replace("_", "-"), version)
    python = platform.python_version()
    plat = platform.platform()
    blob = json.dumps([python, plat, sorted(packages.items())]).encode()
    env_id = hashlib.sha1(blob).hexdigest()[:16]
    return Environment(
        env_id=env_id, python=python, platform=plat, packages=dict(sorted(packages.items()))
    )


def _name_and_version(dist: metadata.Distribution) -> tuple[str | None, str]:
    """``Name`` and ``Version`` from the head of a distribution's metadata file.

    ``dist.metadata`` parses the whole file (description included) with the email
    parser, and ``dist.version`` parses it again: ~1 ms per package, half a second
    for a data-science environment. The two fields sit in the header block, which
    ends at the first empty line.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or dist.read_text("") or ""
    name: str | None = None
    version: str | None = None
    for line in text.splitlines():
        if not line:
            break
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.lower()
        if key == "name" and name is None:
            name = value.strip()
        elif key == "version" and version is None:
            version = value.strip()
        if name is not None and version is not None:
            break  # (both come first: the rest is classifiers and requirements)
    return name or None, version or ""


def kernel_notebook_path(user_ns: dict[str, Any] | None = None) -> str | None:
    """The notebook this kernel runs, as far as the kernel can know it.

    ``NBTRACK_NOTEBOOK`` (set by nbtrack's pipelines), else Jupyter server's
    ``JPY_SESSION_NAME``, else VS Code's ``__vsc_ipynb_file__``, else the notebook
    named on the command line of the runner that started the kernel (``launcher``).
    """
    chosen = settings.notebook()
    if chosen is not None:
        return chosen
    value = os.environ.get("JPY_SESSION_NAME")  # set by jupyter_server for its kernels
    if value and value.endswith(".ipynb"):
        return str(Path(value).expanduser().resolve())
    if user_ns:
        value = user_ns.get("__vsc_ipynb_file__") or user_ns.get("__session__")
        if isinstance(value, str) and value.endswith(".ipynb"):
            return str(Path(value).resolve())
    runner = launcher.launch()  # papermill, jupyter execute: the notebook they were given
    return runner.notebook if runner else None


def notebook_cells(nb_bytes: bytes) -> list[dict[str, Any]]:
    """Code cells of a notebook file as ``{"id", "source", "tags"}`` (tolerant of old formats)."""
    try:
        nb = json.loads(nb_bytes)
    except (ValueError, UnicodeDecodeError):
        return []
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(src)
        tags = (cell.get("metadata") or {}).get("tags") or []
        cells.append({"id": cell.get("id"), "source": src, "tags": tags})
    return cells


def tagged_cell_type(nb_bytes: bytes, tag: str) -> str | None:
    """The type (``code``, ``markdown``, ``raw``) of the notebook's first cell tagged
    ``tag``, the one papermill injects after whatever its type; None when none is."""
    try:
        cells = json.loads(nb_bytes).get("cells", [])
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    for cell in cells:
        if tag in ((cell.get("metadata") or {}).get("tags") or []):
            return str(cell.get("cell_type"))
    return None


_snapshots: dict[tuple[str, str], tuple[tuple[int, int], str, list[dict[str, Any]]]] = {}


def notebook_snapshot(
    path: str, cache: Cache
) -> tuple[str | None, list[dict[str, Any]], Exception | None]:
    """``(blob hash, code cells, why it was not kept)`` of the saved notebook.

    Every tracked cell records the saved notebook, which changes far less often
    than cells run (an autosave every two minutes): the file is read, hashed and
    parsed again only when its modification time or size changed. Raises
    ``OSError`` when the file cannot be read; a cache that cannot keep the bytes
    gives no hash and the reason.
    """
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    key = (path, str(cache.root))
    found = _snapshots.get(key)
    if found is not None and found[0] == stamp and cache.has(found[1]):
        return found[1], found[2], None
    data = Path(path).read_bytes()
    cells = notebook_cells(data)
    try:
        digest = cache.put_bytes(data)
    except (OSError, NbtrackError) as exc:
        return None, cells, exc
    _snapshots[key] = (stamp, digest, cells)
    return digest, cells, None


def match_cell(
    cells: list[dict[str, Any]], source: str, cell_id: str | None
) -> tuple[str | None, bool | None]:
    """``(cell id, code matches the saved notebook)`` for a cell that just ran.

    With a cell id (JupyterLab sends one) the saved cell of that id is compared;
    without one (papermill does not), a saved cell with the same source gives the id.
    """
    if not cells:
        return cell_id, None
    want = source.strip()
    if cell_id:
        for c in cells:
            if c["id"] == cell_id:
                return cell_id, c["source"].strip() == want
        return cell_id, False
    for c in cells:
        if c["source"].strip() == want:
            return c["id"], True
    return None, False
