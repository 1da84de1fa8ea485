"""Which store a request is about: the one of the notebook in front of the user.

A request names its notebook with the ``path`` query parameter, a path relative to
the server's root folder, exactly as the Jupyter contents API spells it. The server
resolves that notebook's folder under its root and hands it to ``resolve_project``,
the same rule the kernel uses, so the panel and the kernel always agree.
Nothing here lets a request reach outside the server root: absolute paths, ``..``
parts and symlinks that lead out are refused with a ``UsageError`` (HTTP 400).
"""

from __future__ import annotations

import threading
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING

from nbtrack.exceptions import UsageError

if TYPE_CHECKING:
    from nbtrack.client import Client
    from nbtrack.project import Project


def notebook_folder(root_dir: Path, path: str | None) -> Path:
    """Return the folder (under ``root_dir``) that holds the notebook at ``path``.

    ``path`` is relative to the server root, POSIX-style; empty or ``None`` means the
    root itself. A path naming a folder gives that folder.

    >>> notebook_folder(Path("/srv/work"), "a/b/nb.ipynb")  # doctest: +SKIP
    PosixPath('/srv/work/a/b')
    """
    root = root_dir.resolve()
    if not path or path in ("/", "."):
        return root
    if "\x00" in path or "\\" in path:
        raise UsageError(f"bad notebook path {path!r}: use a path relative to the server root")
    pure = PurePosixPath(path)
    if pure.is_absolute() or PureWindowsPath(path).drive or path.startswith("~"):
        raise UsageError(f"bad notebook path {path!r}: absolute paths are not accepted")
    if ".." in pure.parts:
        raise UsageError(f"bad notebook path {path!r}: '..' is not accepted")
    target = root.joinpath(*pure.parts)
    folder = target if target.is_dir() else target.parent
    resolved = folder.resolve()
    # A symlink inside the root may still point outside of it.
    if not resolved.is_relative_to(root):
        raise UsageError(f"bad notebook path {path!r}: it leads outside the server root")
    if not resolved.is_dir():
        raise UsageError(f"bad notebook path {path!r}: its folder does not exist")
    return resolved


class StoreLocator:
    """Find the project of a notebook and keep one ``Client`` per store file."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir.resolve()
        self._clients: dict[Path, Client] = {}
        self._lock = threading.Lock()

    def project_for(self, path: str | None) -> Project:
        """The project (store location) of the notebook at server-relative ``path``."""
        from nbtrack.project import resolve_project

        return resolve_project(start=notebook_folder(self.root_dir, path))

    def recorded_notebook(self, project: Project, path: str | None) -> str:
        """The notebook at server-relative ``path`` as the project's runs record it."""
        if not path or not path.endswith(".ipynb"):
            raise UsageError(f"notebook=true needs the path of a notebook, got {path!r}")
        notebook_folder(self.root_dir, path)  # refuses paths that leave the root
        return project.relative(self.root_dir.joinpath(*PurePosixPath(path).parts))[0]

    def client_for(self, project: Project) -> Client | None:
        """A client over the project's store, or ``None`` if no run was ever recorded there.

        The server only reads: looking at the panel must not create a store.
        """
        if not project.db_path.exists():
            return None
        from nbtrack.client import Client

        with self._lock:
            client = self._clients.get(project.db_path)
            if client is None:
                client = Client(project)
                self._clients[project.db_path] = client
            return client

    def relative_to_root(self, folder: Path) -> str | None:
        """``folder`` as a server-relative POSIX path ("" for the root), or ``None`` if outside."""
        resolved = folder.resolve()
        if not resolved.is_relative_to(self.root_dir):
            return None
        relative = resolved.relative_to(self.root_dir).as_posix()
        return "" if relative == "." else relative
