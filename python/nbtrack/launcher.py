"""Which headless runner launched this kernel, and on which notebook, from its command line.

A kernel is told neither that papermill runs it nor which notebook: papermill injects a
cell only when it is given parameters, and ``execute_request`` carries no cell
metadata. The kernel's parent process is the runner itself (jupyter_client starts the
kernel as its child), so its command line says both: ``papermill in.ipynb out.ipynb``,
``python -m papermill …``, ``jupyter execute nb.ipynb``, ``jupyter nbconvert --execute
nb.ipynb``. Read once per kernel (``/proc``, else psutil).

papermill called from Python (``papermill.execute_notebook`` in a driver script) leaves
the script on that command line. It writes its output notebook as it goes, though,
with the cell it injected and its input's path: when the kernel sees that cell
(``from_output``), it looks for the notebook being written that holds the very same
cell. Not seen: an output not on this machine's disk (``-``, a URL), a notebook read
from stdin or a URL.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from . import settings

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
# jupyter nbconvert's and jupyter execute's options that take a value as the next word
# (``--output out.ipynb`` names no notebook to run).
_JUPYTER_SINGLES = frozenset({
    "--log-level", "--config", "--to", "--template", "--template-file", "--theme", "--writer",
    "--post", "--output", "--output-dir", "--reveal-prefix", "--nbformat", "--timeout",
    "--startup_timeout", "--kernel_name",
})  # fmt: skip
_TOOLS = {"papermill": "papermill", "jupyter-execute": "execute", "jupyter-nbconvert": "nbconvert"}
# The runners' per-cell timeouts: when one runs out, the runner interrupts the kernel and
# the cell raises KeyboardInterrupt, as if someone had pressed Ctrl-C.
_TIMEOUTS = frozenset({
    "--execution-timeout", "--timeout", "--NbClientApp.timeout", "--ExecutePreprocessor.timeout",
})  # fmt: skip


@dataclass(frozen=True)
class Launch:
    tool: str  # papermill, execute (jupyter execute), nbconvert
    notebook: str | None  # the input notebook, absolute, when a local file was found
    injects: bool = False  # papermill was given parameters: it injects a cell
    timeout: str | None = None  # the runner's cell timeout, as typed: ``--execution-timeout 3``


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


def _jupyter_inputs(args: list[str]) -> list[str]:
    """The notebooks ``jupyter execute`` / ``jupyter nbconvert`` are given to run."""
    found, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in _JUPYTER_SINGLES:
            skip = True
        elif arg.endswith(".ipynb") and not arg.startswith("-"):
            found.append(arg)
    return found


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
        elif arg == "-" or not arg.startswith("-"):  # "-": read from stdin (no path)
            return arg
    return None


def _options(args: list[str], names: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Each option of ``names`` given, with its value (``--cwd d`` or ``--cwd=d``), in order."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in names:
            yield name, value if eq else (args[i + 1] if i + 1 < len(args) else "")


def _option(args: list[str], name: str) -> str | None:
    """The value given to option ``name``, else None."""
    return next((value for _, value in _options(args, (name,))), None)


def _started_in(cwd: str, moved_to: str) -> str | None:
    """The folder papermill started in, from the one its relative ``--cwd`` moved it to:
    for a driver's ``subprocess.run([...], cwd=...)``, whose ``PWD`` is the driver's own."""
    parts = Path(os.path.normpath(moved_to)).parts
    if Path(moved_to).is_absolute() or ".." in parts:
        return None
    if parts in ((), (".",)):
        return cwd
    here = Path(cwd)
    return str(here.parents[len(parts) - 1]) if here.parts[-len(parts) :] == parts else None


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
    moved = _option(args, "--cwd")
    start = _started_in(cwd, moved) if moved is not None else None
    cwds = [c for c in ((pwd, start, cwd) if moved is not None else (cwd, pwd)) if c]
    if tool == "papermill":
        names = [n for n in [_papermill_input(args)] if n]
    else:  # jupyter execute / nbconvert: the one notebook named, if only one
        names = _jupyter_inputs(args)
        names = names if len(names) == 1 else []
    notebook = None
    for name in names:
        for base in cwds:
            path = Path(base, name).expanduser()
            if path.is_file():
                notebook = str(path.resolve())
                break
    injects = any(a.split("=", 1)[0] in _INJECTING for a in args)
    return Launch(tool, notebook, injects and tool == "papermill", _timeout(args))


def _timeout(args: list[str]) -> str | None:
    """The cell timeout option given (``--execution-timeout 3``), unless it disables it."""
    for name, value in _options(args, _TIMEOUTS):
        if value.strip().lstrip("-").isdigit() and int(value) > 0:
            return f"{name} {int(value)}"
    return None


def interrupted(error: BaseException) -> str:
    """What made ``error`` a cell's, beside the error, when the runner says it:
    `` (timed out: papermill --execution-timeout 3)`` for the interrupt a runner's cell
    timeout sends (`` (timed out: --timeout 3)`` under ``nbtrack sweep``); else empty."""
    if not isinstance(error, KeyboardInterrupt):
        return ""
    found = launch()
    if found is None or found.timeout is None:  # (nbtrack sweep's kernel: a worker's)
        seconds = settings.cell_timeout()
        return f" (timed out: --timeout {seconds})" if seconds else ""
    runner = {"execute": "jupyter execute", "nbconvert": "jupyter nbconvert"}.get(found.tool)
    return f" (timed out: {runner or found.tool} {found.timeout})"


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


def launch() -> Launch | None:
    """This kernel's runner, or None (a Jupyter server, a terminal, an unknown parent)."""
    return _found or _from_parent()


@functools.cache
def _from_parent() -> Launch | None:
    try:
        argv, cwd = _parent()
    except Exception:  # no such process any more, no permission: nothing known
        return None
    return parse(argv, cwd, os.environ.get("PWD"))


_found: Launch | None = None  # papermill called from a script (from_output)
_OUTPUT_AGE = 600.0  # s: papermill saves its output at the start and after every cell
_DEPTH, _SCANNED = 3, 5_000  # how deep, and how many entries, the search looks
_READ_LIMIT = 16 << 20  # bytes: a notebook papermill has barely begun is no larger


def from_output(injected: str) -> Launch | None:
    """papermill called from Python, seen by the cell it injected (``injected``, as the
    kernel ran it): the input of the notebook papermill is writing with that cell (not
    ended, saved in the last 10 minutes, under the parent's folder, its shell's or this
    one), when exactly one input is found. Remembered: ``launch()`` returns it from then on."""
    global _found
    if os.environ.get("JPY_SESSION_NAME"):  # a Jupyter server's kernel (an output re-run)
        return None
    try:
        parent = [_parent()[1]]
    except Exception:
        parent = []
    # (papermill's ``cwd=`` moves the script there too: paths given are its shell's PWD's)
    bases = [b for b in dict.fromkeys([*parent, os.environ.get("PWD"), os.getcwd()]) if b]
    for base in bases:  # the first folder where the output is found
        inputs = {p for p in (_input_of(nb, injected, bases) for nb in _recent(base)) if p}
        if inputs:
            if len(inputs) == 1 and _found is None:
                _found = Launch("papermill", inputs.pop(), injects=True)
            break
    return _found


def _recent(base: str) -> list[str]:
    """Notebooks saved in the last ``_OUTPUT_AGE`` s under ``base`` (hidden folders and
    ``node_modules`` left out), newest first."""
    since, seen, found = time.time() - _OUTPUT_AGE, 0, []
    stack = [(base, 0)]
    while stack and seen < _SCANNED:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for e in entries:
            seen += 1
            try:
                if e.is_dir(follow_symlinks=False):
                    if depth < _DEPTH and not e.name.startswith((".", "__", "node_modules")):
                        stack.append((e.path, depth + 1))
                elif e.name.endswith(".ipynb"):
                    st = e.stat()
                    if st.st_mtime >= since and st.st_size <= _READ_LIMIT:
                        found.append((st.st_mtime, e.path))
            except OSError:
                continue
    return [p for _, p in sorted(found, reverse=True)]


def _input_of(path: str, injected: str, bases: list[str]) -> str | None:
    """The input a papermill output notebook names, if it is still being executed and
    holds the cell ``injected``."""
    try:
        with open(path, "rb") as fh:
            nb = json.load(fh)
        meta = nb["metadata"]["papermill"]
        if meta.get("end_time") is not None or not isinstance(meta.get("input_path"), str):
            return None
        sources = [
            c.get("source")
            for c in nb["cells"]
            if "injected-parameters" in c.get("metadata", {}).get("tags", ())
        ]
        if not any(("".join(s) if isinstance(s, list) else s).strip() == injected.strip()
                   for s in sources):  # fmt: skip
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not papermill's
        return None
    for base in bases:
        candidate = Path(base, meta["input_path"]).expanduser()
        if candidate.is_file():
            return str(candidate.resolve())
    return None
