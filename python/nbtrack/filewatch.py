"""Which files a tracked cell opens: a Python audit hook, active only during the cell.

``open`` audit events come from ``builtins.open``, ``io.open`` and ``os.open``, so
plain ``open``, pandas (``read_csv``/``to_csv``), numpy (``load``/``save``) and
pickle are seen. Files of the Python environment, Jupyter's own files, the store
and nbtrack's own reads are left out.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class FileWatcher:
    """Collects the paths a cell reads and writes while it is ``armed``."""

    def __init__(self, project_root: Path, store_folder: Path, ignored: list[str]) -> None:
        self.root = os.path.realpath(project_root)
        self.store = os.path.realpath(store_folder)
        self.ignored = tuple(p.rstrip(os.sep) + os.sep for p in ignored)
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}
        # Called with a path just before a cell opens it for writing, if the cell read
        # it earlier: the version it read is taken before it is overwritten.
        self.before_overwrite: Callable[[str], None] | None = None

    def keep(self, path: str) -> bool:
        if path == self.store or path.startswith(self.store + os.sep):
            return False
        inside = path.startswith(self.root + os.sep)
        if inside:
            rel = path[len(self.root) + 1 :]
            # hidden folders of the project: .git, .ipynb_checkpoints, .venv ...
            return not any(part.startswith(".") for part in rel.split(os.sep)[:-1])
        return not path.startswith(self.ignored)

    def saw(self, path: str, write: bool, read: bool) -> None:
        real = os.path.realpath(path)
        if not self.keep(real) or os.path.isdir(real):
            return
        if write:
            if real in self.reads and real not in self.writes and self.before_overwrite:
                self.before_overwrite(real)
            self.writes[real] = None
        if read and real not in self.writes:
            self.reads[real] = None


def python_prefixes() -> list[str]:
    """Folders of the Python environment itself (never a run's data)."""
    import site
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(p)
    try:
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    except AttributeError:
        pass
    return sorted({os.path.realpath(p) for p in paths if p})


def ignored_prefixes() -> list[str]:
    """Folders whose files are never a run's data."""
    home = Path.home()
    paths = python_prefixes()
    paths += [
        str(home / d)
        for d in (".ipython", ".jupyter", ".cache", ".config", ".local", ".matplotlib")
    ]
    paths.append(tempfile.gettempdir())  # a project inside it is still watched: see keep()
    paths += [
        "/proc",
        "/sys",
        "/dev",
        "/etc",
        "/usr",
        "/lib",
        "/lib64",
        "/bin",
        "/sbin",
        "/var/lib",
        "/run",
    ]
    try:
        from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir, jupyter_runtime_dir

        paths += [jupyter_runtime_dir(), jupyter_data_dir(), jupyter_config_dir()]
    except ImportError:
        pass
    return [os.path.realpath(p) for p in paths]


_watcher: FileWatcher | None = None
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":
        return
    w = _watcher
    if w is None:
        return
    from .ingest import is_own_thread

    if is_own_thread():
        return
    path, mode, flags = args
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    elif not isinstance(path, str):
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        else:
            return  # a file descriptor
    if isinstance(mode, str):
        write = any(c in mode for c in "wax+")
        read = "r" in mode or "+" in mode
    else:
        f = flags or 0
        write = bool(f & _WRITE_FLAGS)
        read = not (f & os.O_WRONLY)
    try:  # noqa: SIM105 (cheaper than contextlib in a hook that sees every open)
        w.saw(os.path.abspath(path), write, read)
    except Exception:  # never let bookkeeping break the user's open()
        pass


def arm(watcher: FileWatcher) -> None:
    """Start collecting into ``watcher`` (installs the audit hook once per process)."""
    global _watcher, _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    _watcher = watcher


def disarm() -> FileWatcher | None:
    global _watcher
    w, _watcher = _watcher, None
    return w
