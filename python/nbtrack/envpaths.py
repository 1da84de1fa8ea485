"""Folders whose files are never a run's data: the Python environment, nbtrack itself,
Jupyter's and IPython's own folders, the home folder's caches, system folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path


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
    paths.append(str(Path(__file__).parent))  # nbtrack itself, installed editable
    paths += [
        str(home / d)
        for d in (".ipython", ".jupyter", ".cache", ".config", ".local", ".matplotlib")
    ]
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
    paths += _ipython_dirs()
    try:
        from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir, jupyter_runtime_dir

        paths += [jupyter_runtime_dir(), jupyter_data_dir(), jupyter_config_dir()]
    except ImportError:
        pass
    return [os.path.realpath(p) for p in paths]


def _ipython_dirs() -> list[str]:
    """IPython's own folders (history.sqlite): the running shell's, else IPYTHONDIR's.

    Under a missing or unwritable HOME the shell keeps its folder in a temporary one,
    and each ``get_ipython_dir()`` call makes another (with a warning): asking it named
    a folder nobody uses, and the history database was recorded as the cell's output.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is not None:
        return [shell.ipython_dir, shell.profile_dir.location]
    from IPython.paths import get_ipython_dir

    return [get_ipython_dir()]
