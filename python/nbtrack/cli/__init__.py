"""The ``nbtrack`` command line: a thin door into the client.

Each command module registers its verbs with ``register(subparsers)``; every verb
handler takes the parsed arguments and returns an exit code. ``--store PATH`` is
parsed into a ``Project`` (``args.project``) that the verb opens its client on;
nothing here touches the process environment. Errors from the core become one
line on stderr and a non-zero exit code here, and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from .._version import __version__
from ..exceptions import NbtrackError, UsageError
from ..project import Project, project_at
from .parser import Parser

EXIT_ERROR = 1
EXIT_USAGE = 2


# Verb modules, in the order their verbs appear in --help.
MODULES = (
    "runs", "lineage", "data", "monitoring", "pipelines", "repro", "models", "binder", "doctor",
)  # fmt: skip
# Which module registers each verb: a command line naming one imports only that module
# (and what it needs), so ``nbtrack models ls`` does not pay for the rerun machinery.
# tests/test_cli.py checks this table against what the modules register.
VERBS = {
    "ls": "runs", "show": "runs", "diff": "runs", "sql": "runs", "lineage": "lineage",
    "checkout": "data", "gc": "data", "push": "data", "pull": "data",
    "check": "monitoring", "drift": "monitoring",
    "rerun": "pipelines", "sweep": "pipelines", "export": "pipelines", "import": "pipelines",
    "repro": "repro", "dag": "repro",
    "models": "models", "register": "models", "binder": "binder", "doctor": "doctor",
}  # fmt: skip


def command_of(argv: Sequence[str]) -> str | None:
    """The verb an argument list names (after the global options), or None."""
    words = iter(argv)
    for word in words:
        if word == "--store":
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif not word.startswith("--store="):
            return None  # --help, --version: the whole parser
    return None


def _store_at(path: str) -> Project:
    # An empty --store (a "$STORE" never set) resolved to the current folder: a new,
    # empty store there, and the user's runs seemed gone.
    if not path.strip():
        raise argparse.ArgumentTypeError(
            "an empty path: name the store folder or .duckdb file, or leave --store out"
        )
    return project_at(path)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``nbtrack`` parser: every verb, or only the module that registers ``command``."""
    parser = Parser(
        prog="nbtrack",
        description="Track, compare and re-run notebook cell runs stored in .nbtrack/runs.duckdb.",
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    parser.add_argument(
        "--store",
        dest="project",
        type=_store_at,
        metavar="PATH",
        help="store folder or .duckdb file (default: $NBTRACK_STORE, else the nearest .nbtrack/)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    names = [VERBS[command]] if command in VERBS else MODULES
    for name in names:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _check_text(argv: Sequence[str]) -> None:
    # A byte that is not UTF-8 reaches Python as a lone surrogate, which DuckDB and
    # every encoder refuse later with a traceback (or blame on the store file).
    for arg in argv:
        try:
            arg.encode()
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "backslashreplace").decode()
            raise UsageError(
                f"{raw!r} is not UTF-8 text: retype it, or set the terminal's encoding to UTF-8"
            ) from None


def _usable_streams() -> None:
    # Under PYTHONIOENCODING=latin-1 (or an ASCII console) a parameter named `λ` or a
    # file `données.csv` ended `ls` and `show` with a UnicodeEncodeError traceback.
    # A closed stdout (`nbtrack gc >&-`) is None to Python: an AttributeError before.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's life)
    elif sys.stdout is sys.__stdout__ and isinstance(sys.stdout, io.TextIOWrapper):
        out = sys.stdout  # (not under a caller's capture: only the process's own)
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(_Stdout(out.fileno())),
            encoding=out.encoding,
            errors=out.errors,
            line_buffering=out.line_buffering,
        )
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbtrack`` script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _usable_streams()
    parser = build_parser(command_of(argv))
    try:
        _check_text(argv)
        args = parser.parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, where a failure is met as one line
        return code
    except UsageError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NbtrackError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (MemoryError, RuntimeError) as exc:
        # Under a small `ulimit -v` (or `-u`) Python fails to start a thread or to
        # allocate: a traceback before, where the user needs to know which limit.
        if isinstance(exc, RuntimeError) and "can't start new thread" not in str(exc):
            raise
        what = "start a thread" if isinstance(exc, RuntimeError) else "allocate memory"
        print(
            f"nbtrack: error: could not {what}: the process's memory or process limit "
            "(ulimit -v, ulimit -u) is too small, or the machine is out of memory",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nbtrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except StdoutError as exc:
        # stdout a file on a full disk (`nbtrack ls > out.txt`, `export last > b.zip`):
        # a traceback before, from whichever write met it. What is still buffered goes
        # nowhere, so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(
            f"nbtrack: error: cannot write the output ({exc.strerror}): "
            "free room where it goes, or send it elsewhere",
            file=sys.stderr,
        )
        return EXIT_ERROR


class StdoutError(OSError):
    """A write to the process's stdout failed (not a write the command makes itself)."""


class _Stdout(io.RawIOBase):
    """The process's stdout, whose failed writes say so (``StdoutError``)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Any) -> int:
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            raise  # `| head`: main ends quietly
        except OSError as exc:
            raise StdoutError(exc.errno, exc.strerror) from None
