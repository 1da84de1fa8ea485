"""Where the store is: the one resolution rule shared by kernel, CLI and server."""

from __future__ import annotations

import errno
import functools
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from . import settings

STORE_DIRNAME = ".nbtrack"
DB_FILENAME = "runs.duckdb"


def folder_problem(folder: Path) -> str | None:
    """What keeps ``folder`` from holding a store (a file there, or a symbolic link that
    loops or leads nowhere), in one line; None when nothing does."""
    if folder.is_symlink() and not folder.exists():
        try:
            os.stat(folder)
        except OSError as exc:
            why = "loops back on itself" if exc.errno == errno.ELOOP else "leads nowhere"
        else:
            return None  # its target appeared since ``exists`` looked
        return (
            f"{folder} is a symbolic link to {os.readlink(folder)}, which {why}: nbtrack "
            "keeps its store there; point the link at a folder or remove it"
        )
    if folder.exists() and not folder.is_dir():
        return (
            f"{folder} is a file, not a folder: nbtrack keeps its store there; "
            "move or rename that file and try again"
        )
    if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
        return f"cannot read {folder}: Permission denied (its owner can let you in)"
    return None


@dataclass(frozen=True)
class Project:
    """A project folder and its ``.nbtrack/`` store.

    ``root`` is the folder whose files are "in the project"; data paths inside it
    are recorded relative to it, so a store can move with its project.
    """

    root: Path
    folder: Path
    db_path: Path

    @property
    def cache_dir(self) -> Path:
        return self.folder / "cache"

    @property
    def spool_dir(self) -> Path:
        return self.folder / "spool"

    @property
    def executions_dir(self) -> Path:
        return self.folder / "executions"

    def relative(self, path: str | os.PathLike[str]) -> tuple[str, bool]:
        """``(recorded path, in_project)`` for a path as a user or a cell named it.

        Inside the project: the project-relative POSIX path. Outside (an absolute
        path elsewhere, a ``..`` escape, a symlink that leads out): the absolute path.
        """
        p = os.fspath(path)
        if not os.path.isabs(p):
            p = os.path.join(os.getcwd(), p)
        return self.relative_real(os.path.realpath(p))

    def relative_real(self, real: str) -> tuple[str, bool]:
        """``relative`` of a path ``os.path.realpath`` gave (each part of a path costs
        ``realpath`` an ``lstat``: a run's files are resolved once, not per question)."""
        root = _real_root(self.root)
        if real == root:
            return ".", True
        inside = root if root.endswith("/") else root + "/"
        if not real.startswith(inside):
            return real, False
        rel = real[len(inside) :]
        if rel.partition("/")[0] == STORE_DIRNAME:
            return real, False
        return rel, True

    def absolute(self, recorded: str) -> Path:
        """The filesystem path of a recorded (possibly project-relative) path."""
        p = Path(os_text(recorded))
        return p if p.is_absolute() else self.root / p


_UNDECODED = re.compile(r"\\x([89a-f][0-9a-f])")


def os_text(recorded: str) -> str:
    """A recorded path as the operating system names the file: a byte of a file name
    that is not UTF-8 is stored as its escape (``\\xff``, ``validation.storable``) and
    is that byte again here (``os.fsdecode``'s form). Before (the thirteenth trial),
    ``checkout`` wrote such a run's file to a new file named with the escape's
    characters and said "restored", leaving the real file as it was."""
    if "\\x" not in recorded:
        return recorded
    return _UNDECODED.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), recorded)


@functools.lru_cache(maxsize=64)
def _real_root(root: Path) -> str:
    # A project's root is resolved once per process: every path a cell touches is
    # compared with it (a root re-pointed by a symlink meanwhile is not followed).
    return os.path.realpath(root)


def _git_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


def resolve_project(start: str | os.PathLike[str] | None = None) -> Project:
    """The store for a notebook folder (or the current folder).

    1. ``$NBTRACK_STORE``: a folder (the store folder itself) or a ``.duckdb`` path
       (with ``$NBTRACK_ROOT`` as the project root when set);
    2. the nearest ancestor of ``start`` holding ``.nbtrack/``;
    3. a new ``.nbtrack/`` at the enclosing git root;
    4. a new ``.nbtrack/`` in ``start``.
    Nothing is created here; the store creates its folder on first write.
    """
    chosen = settings.store()
    if chosen is not None:
        project = project_at(chosen)
        root = settings.root()
        return replace(project, root=root) if root else project
    base = Path(start).expanduser() if start is not None else Path.cwd()
    base = base.resolve()
    if base.is_file():
        base = base.parent
    for d in (base, *base.parents):
        if (d / STORE_DIRNAME).is_dir():
            return _at(d)
    return _at(_git_root(base) or base)


def project_at(store: str | os.PathLike[str]) -> Project:
    """The project of a store named by path (``--store``, ``$NBTRACK_STORE``).

    A ``.duckdb`` file, a ``.nbtrack/`` folder, a folder holding ``.nbtrack/``, or a
    folder that is itself the store.
    """
    p = Path(store).expanduser().resolve()
    if p.suffix == ".duckdb":
        return Project(root=p.parent, folder=p.parent, db_path=p)
    if p.name == STORE_DIRNAME:
        return _at(p.parent)
    if (p / STORE_DIRNAME).is_dir():
        return _at(p)
    return Project(root=p, folder=p, db_path=p / DB_FILENAME)


def _at(root: Path) -> Project:
    folder = root / STORE_DIRNAME
    return Project(root=root, folder=folder, db_path=folder / DB_FILENAME)
