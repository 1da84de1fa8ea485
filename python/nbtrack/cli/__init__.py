"""The ``nbtrack`` command line: a thin door into the client.

Each command module registers its verbs with ``register(subparsers)``; every verb
handler takes the parsed arguments and returns an exit code. Errors from the core
become one line on stderr and a non-zero exit code here, and nowhere else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ..exceptions import NbtrackError, UsageError

# Verb modules, in the order their verbs appear in --help.
COMMAND_MODULES = ("runs", "data", "monitoring", "pipelines", "binder")

EXIT_ERROR = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors are reported in one place."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(
        prog="nbtrack",
        description="Track, compare and re-run notebook cell runs stored in .nbtrack/runs.duckdb.",
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {__version__}")
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="store folder or .duckdb file (default: $NBTRACK_STORE, else the nearest .nbtrack/)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbtrack`` script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.store:
            import os

            os.environ["NBTRACK_STORE"] = args.store
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NbtrackError as exc:
        print(f"nbtrack: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nbtrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
