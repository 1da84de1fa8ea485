"""What every verb shares: the parser that raises, and the project ``--store`` names."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..exceptions import UsageError
from ..project import Project, resolve_project

if TYPE_CHECKING:
    from ..client import Client


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so errors are reported in one place.

    The door adds the one prefix (``nbtrack: error:``, ``%track:``); the message names
    the verb when a verb's parser refused the line (``ls: argument --limit: ...``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        verb = self.prog.partition(" ")[2]
        if "invalid choice" in message and not verb:
            message += f"; `{self.prog} --help` lists them"
        raise UsageError(f"{verb}: {message}" if verb else message)


def project_of(args: argparse.Namespace, start: str | os.PathLike[str] | None = None) -> Project:
    """The project of a verb: ``--store`` when given, else the one ``start`` (default:
    the current folder) resolves to (``$NBTRACK_STORE``, the nearest ``.nbtrack/``...)."""
    chosen: Project | None = getattr(args, "project", None)
    return chosen if chosen is not None else resolve_project(start)


def open_client(args: argparse.Namespace) -> Client:
    """The client of the verb's project."""
    from ..client import Client

    return Client(project_of(args))


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def whole(text: str) -> int:
        # int() also reads `1_0` as 10 and `٣` (an Arabic-Indic three) as 3: a typo
        # or a pasted character taken silently for another number
        try:
            if "_" in text or not text.isascii():
                raise ValueError(text)
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return whole
