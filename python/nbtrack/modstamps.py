"""Names a cell imported from the user's own modules, and whether those files changed since.

``from settings import LR`` binds LR to the value ``settings.py`` held when the module
was loaded. Edit the file and run the import again: Python hands back the module it has,
and LR keeps the old value while the file says otherwise (a sixth trial's finding). A
name bound by an import records a *stamp* of the module's file (path, mtime, size) and of
the load (``module.__spec__``: ``importlib.reload`` makes a new one). A name whose file
changed since the load that gave it its value is stale (``lineage``). Only modules
loaded from a file outside the interpreter's own folders count (the project's
``settings.py``, a ``src/`` package): an installed library does not change under a
session. Costs one ``os.stat`` per such name a tracked cell reads.
"""

from __future__ import annotations

import ast
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from types import FunctionType, ModuleType

from .astwalk import parsed


@dataclass(frozen=True)
class Stamp:
    module: str
    path: str
    mtime_ns: int
    size: int
    spec_id: int  # id(module.__spec__) at the load: a reload makes a new spec


def imported_names(source: str) -> dict[str, str]:
    """The names the cell's top-level imports bind, with the module each came from.

    >>> imported_names("import a.b\\nimport c.d as e\\nfrom f import g as h")
    {'a': 'a', 'e': 'c.d', 'h': 'f'}
    """
    if "import" not in source:
        return {}
    tree = parsed(source)
    found: dict[str, str] = {}
    for node in tree.body if tree is not None else ():
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                found[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = node.module
    return found


@cache
def _installed() -> tuple[str, ...]:
    """The interpreter's own folders: the standard library and site-packages."""
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() + [site.getusersitepackages()])
    return tuple(os.path.join(os.path.realpath(p), "") for p in paths if p)


@lru_cache(maxsize=4096)
def library_file(path: str) -> bool:
    """Whether ``path`` is a file of the standard library or an installed package."""
    # Asked for the module behind every value a tracked cell reads (``code_modules``):
    # ``realpath`` costs an lstat per part of the path, ~30 us a DataFrame, each cell;
    # an installed library's file stays one.
    return os.path.realpath(path).startswith(_installed())


def stamp(module_name: str, value: object = None) -> Stamp | None:
    """The stamp of a user module now (``value``'s own module when it is one), or None."""
    module = value if isinstance(value, ModuleType) else sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not isinstance(path, str) or library_file(path):
        return None
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return None
    name = getattr(module, "__name__", module_name)
    return Stamp(name, real, st.st_mtime_ns, st.st_size, id(getattr(module, "__spec__", None)))


def code_modules(value: object) -> list[ModuleType]:
    """The user module a value read is, or that defined it or its class: ``settings``
    read as ``settings.LR``; ``utils`` behind ``from utils import train`` (the trial's
    run of ``train(3)`` had no trace of ``utils.py``, edited and reloaded between two
    runs); ``models`` behind ``net = Net(0.1)``. Its file is then a read of the cell, as
    the module's own import was; an installed library's module is none."""
    if isinstance(value, ModuleType):
        return [value]
    defined = value if isinstance(value, (FunctionType, type)) else type(value)
    name = getattr(defined, "__module__", None)
    module = sys.modules.get(name) if isinstance(name, str) and name != "__main__" else None
    return [module] if module is not None and stamp(name or "", module) else []


def carried(kept: Stamp | None, now: Stamp | None) -> Stamp | None:
    """The stamp of a name an import bound again: the module as loaded then, if it was
    not reloaded since (its file may have changed, the value did not), else now's."""
    if (
        kept is not None
        and now is not None
        and (kept.path, kept.spec_id) == (now.path, now.spec_id)
    ):
        return kept
    return now


def reloaded(s: Stamp) -> bool:
    """Whether the module was loaded again (``importlib.reload``) since ``s``."""
    module = sys.modules.get(s.module)
    return module is not None and id(getattr(module, "__spec__", None)) != s.spec_id


def current(value: object, s: Stamp) -> bool:
    """Whether ``value``, bound from the module of ``s``, is what the module gives since a
    reload: the module itself, or a function or class IPython's ``%autoreload`` gave the
    reloaded code in place (``from utils import scale``: the same ``__code__`` as
    ``utils.scale``; ``from feat import M``: every method of ``feat.M`` with its code).
    What ``importlib.reload`` left behind keeps its old code: still stale."""
    module = sys.modules.get(s.module)
    if module is None or not (reloaded(s) or autoreloaded(s)):
        return False
    if isinstance(value, ModuleType):
        return True
    now = getattr(module, getattr(value, "__name__", ""), None)
    if isinstance(value, type) and isinstance(now, type):
        return value is now or all(
            _same_code(getattr(value, k, None), f)
            for k, f in vars(now).items()
            if isinstance(f, FunctionType)
        )
    return isinstance(value, FunctionType) and _same_code(value, now)


def _same_code(old: object, new: object) -> bool:
    return getattr(old, "__code__", None) is getattr(new, "__code__", False)


def autoreloaded(s: Stamp) -> bool:
    """Whether IPython's ``%autoreload`` is on and has loaded the module's file as it is
    now (it patches the module in place: no new spec)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    magics = getattr(shell, "magics_manager", None)
    found = getattr(magics, "registry", {}).get("AutoreloadMagics")
    reloader = getattr(found, "_reloader", None)
    if not getattr(reloader, "enabled", False):
        return False
    try:
        mtime = os.stat(s.path).st_mtime
    except OSError:
        return False
    loaded = getattr(reloader, "modules_mtimes", {}).get(s.module)
    path = getattr(sys.modules.get(s.module), "__file__", s.path)  # as autoreload names it
    return loaded == mtime and getattr(reloader, "failed", {}).get(path) != mtime


def changed(s: Stamp) -> bool:
    """Whether the module's file is not what it was when ``s`` was taken."""
    try:
        st = os.stat(s.path)
    except OSError:
        return True
    return (st.st_mtime_ns, st.st_size) != (s.mtime_ns, s.size)


def why(name: str, s: Stamp, where: str) -> str:
    file = Path(s.path).name
    return (
        f"{name} came from {file} (imported by {where}), which was edited since: "
        f"importlib.reload({s.module}), then run {where} again"
    )
