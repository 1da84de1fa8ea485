"""Which headless runner launched this kernel, and on which notebook, from its command line.

A kernel is told neither that papermill runs it nor which notebook: papermill injects a
cell only when it is given parameters, and ``execute_request`` carries no cell
metadata. The kernel's parent process is the runner itself (jupyter_client starts the
kernel as its child), so its command line says both: ``papermill in.ipynb out.ipynb``,
``python -m papermill …``, ``jupyter execute nb.ipynb``, ``jupyter nbconvert --execute
nb.ipynb``. Read once per kernel (``/proc``, else psutil). Not seen: a runner called
from Python (``papermill.execute_notebook`` inside a script: the parent's command line
names the script), a notebook read from stdin or a URL.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

# papermill's options that take a value (two for -p/-r), from its command line interface.
_PAIRS = frozenset({"-p", "--parameters", "-r", "--parameters_raw"})
_SINGLES = frozenset({
    "-f", "--parameters_file", "-y", "--parameters_yaml", "-b", "--parameters_base64",
    "--engine", "--autosave-cell-every", "-k", "--kernel", "-l", "--language", "--cwd",
    "--stdout-file", "--stderr-file", "--log-level", "--start-timeout", "--start_timeout",
    "--execution-timeout",
})  # fmt: skip
# The options that make papermill inject a parameters cell.
_INJECTING = frozenset({
    "-p", "--parameters", "-r", "--parameters_raw", "-f", "--parameters_file", "-y",
    "--parameters_yaml", "-b", "--parameters_base64", "--inject-input-path",
    "--inject-output-path", "--inject-paths",
})  # fmt: skip
_TOOLS = {"papermill": "papermill", "jupyter-execute": "execute", "jupyter-nbconvert": "nbconvert"}


@dataclass(frozen=True)
class Launch:
    tool: str  # papermill, execute (jupyter execute), nbconvert
    notebook: str | None  # the input notebook, absolute, when a local file was found
    injects: bool = False  # papermill was given parameters: it injects a cell


def _tool_args(argv: list[str]) -> tuple[str, list[str]] | None:
    """The runner named by a command line, and the arguments it was given."""
    for i, word in enumerate(argv[:4]):
        name = Path(word).name
        if name in _TOOLS:
            return _TOOLS[name], argv[i + 1 :]
        if word == "-m" and i + 1 < len(argv) and argv[i + 1] == "papermill":
            return "papermill", argv[i + 2 :]
        if name == "jupyter" and i + 1 < len(argv) and argv[i + 1] in ("execute", "nbconvert"):
            return argv[i + 1], argv[i + 2 :]
    return None


def _papermill_input(args: list[str]) -> str | None:
    """papermill's first positional argument: the notebook it reads."""
    skip = 0
    for arg in args:
        if skip:
            skip -= 1
        elif arg in _PAIRS:
            skip = 2
        elif arg in _SINGLES:
            skip = 1
        elif not arg.startswith("-"):
            return arg
    return None


def parse(argv: list[str], cwd: str, pwd: str | None = None) -> Launch | None:
    """What a parent's command line ``argv`` launched, the parent in folder ``cwd``.

    A relative notebook path is the parent's folder's, unless papermill was given
    ``--cwd`` (it moves there to execute): then the folder it was started in, its
    shell's ``PWD``, which the kernel inherits.
    """
    found = _tool_args(argv)
    if found is None:
        return None
    tool, args = found
    moved = any(a.split("=", 1)[0] == "--cwd" for a in args)
    cwds = [c for c in ((pwd, cwd) if moved else (cwd, pwd)) if c]
    if tool == "papermill":
        names = [n for n in [_papermill_input(args)] if n]
    else:  # jupyter execute / nbconvert: the one notebook named, if only one
        names = [a for a in args if a.endswith(".ipynb") and not a.startswith("-")]
        names = names if len(names) == 1 else []
    notebook = None
    for name in names:
        for base in cwds:
            path = Path(base, name).expanduser()
            if path.is_file():
                notebook = str(path.resolve())
                break
    injects = any(a.split("=", 1)[0] in _INJECTING for a in args)
    return Launch(tool, notebook, injects and tool == "papermill")


def _parent() -> tuple[list[str], str]:
    """The parent process's command line and folder: ``/proc`` on Linux (~0.1 ms), else
    psutil (already a dependency, for system metrics; ~40 ms to import)."""
    ppid = os.getppid()
    try:
        with open(f"/proc/{ppid}/cmdline", "rb") as fh:
            argv = fh.read().decode(errors="replace").split("\0")
        return argv[:-1] if argv and not argv[-1] else argv, os.readlink(f"/proc/{ppid}/cwd")
    except OSError:
        import psutil

        parent = psutil.Process(ppid)
        return parent.cmdline(), parent.cwd()


@functools.cache
def launch() -> Launch | None:
    """This kernel's runner, or None (a Jupyter server, a terminal, an unknown parent)."""
    try:
        argv, cwd = _parent()
    except Exception:  # no such process any more, no permission: nothing known
        return None
    return parse(argv, cwd, os.environ.get("PWD"))
