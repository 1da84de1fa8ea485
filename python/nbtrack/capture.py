"""What a run records about itself: literal parameters, environment, git, notebook."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import subprocess
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import settings
from .exceptions import CaptureError
from .models import Environment

if TYPE_CHECKING:
    from .cache import Cache

GIT_DIFF_LIMIT = 1 << 20  # a dirty diff larger than this is cut (and says so)


def literal_assignments(source: str) -> dict[str, Any]:
    """Top-level assignments of literals in ``source``: ``lr = 0.01``, ``layers = [64, 32]``.

    Tuple unpacking of a tuple literal (``a, b = 1, 2``) counts too; anything
    computed (``n = len(x)``) does not. Source that does not parse gives ``{}``.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            _collect(target, value, found)
    return found


def _collect(target: ast.expr, value: ast.expr, found: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        try:
            found[target.id] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            found.pop(target.id, None)  # reassigned to something computed
    elif (
        isinstance(target, (ast.Tuple, ast.List))
        and isinstance(value, (ast.Tuple, ast.List))
        and len(target.elts) == len(value.elts)
    ):
        for t, v in zip(target.elts, value.elts, strict=True):
            _collect(t, v, found)


_environment: Environment | None = None
_environment_lock = threading.Lock()


def environment() -> Environment:
    """Python version, platform and installed packages of this process (computed once).

    Listing the installed distributions takes ~0.5 s, so ``%load_ext nbtrack``
    starts it in the background; a cell that needs it first waits for that one
    computation instead of starting a second.
    """
    global _environment
    with _environment_lock:
        if _environment is None:
            _environment = _list_environment()
        return _environment


def _list_environment() -> Environment:
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    python = platform.python_version()
    plat = platform.platform()
    blob = json.dumps([python, plat, sorted(packages.items())]).encode()
    env_id = hashlib.sha1(blob).hexdigest()[:16]
    return Environment(
        env_id=env_id, python=python, platform=plat, packages=dict(sorted(packages.items()))
    )


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``git_commit``, ``git_dirty`` and ``git_diff`` for the repository holding ``folder``.

    ``{}`` outside a repository and in one without a commit yet. Raises
    ``CaptureError`` when ``folder`` is in a repository whose state git cannot tell
    (git missing, a broken ``.git``, a repository git refuses to read).
    """

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=folder,
                capture_output=True,
                timeout=10,
                check=False,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CaptureError(f"git {args[0]} did not run: {exc}") from None
        if out.returncode != 0:
            said = out.stderr.decode(errors="replace").strip().splitlines()
            raise CaptureError(f"git {args[0]} failed: {said[0] if said else out.returncode}")
        return out.stdout.decode(errors="replace")

    start = Path(folder).resolve()
    if not any((d / ".git").exists() for d in (start, *start.parents)):
        return {}  # not a repository: no git process at all
    # One process for the commit and the dirty flag; a second only for a dirty diff.
    status = git("status", "--porcelain=v2", "--branch", "--untracked-files=no")
    commit = ""
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split(" ", 2)[2].strip()
        elif line and not line.startswith("#"):
            dirty = True
    if not commit or commit == "(initial)":
        return {}
    try:
        diff = git("diff", "HEAD") if dirty else None
    except CaptureError:
        diff = None  # the commit and the dirty flag are known; only the patch is missing
    if diff and len(diff) > GIT_DIFF_LIMIT:
        diff = diff[:GIT_DIFF_LIMIT] + "\n[nbtrack: diff cut at 1 MiB]\n"
    return {"git_commit": commit, "git_dirty": dirty, "git_diff": diff}


def kernel_notebook_path(user_ns: dict[str, Any] | None = None) -> str | None:
    """The notebook this kernel runs, as far as the kernel can know it.

    ``NBTRACK_NOTEBOOK`` (set by nbtrack's pipelines), else Jupyter server's
    ``JPY_SESSION_NAME``, else VS Code's ``__vsc_ipynb_file__``.
    """
    chosen = settings.notebook()
    if chosen is not None:
        return chosen
    value = os.environ.get("JPY_SESSION_NAME")  # set by jupyter_server for its kernels
    if value and value.endswith(".ipynb"):
        return str(Path(value).expanduser().resolve())
    if user_ns:
        value = user_ns.get("__vsc_ipynb_file__") or user_ns.get("__session__")
        if isinstance(value, str) and value.endswith(".ipynb"):
            return str(Path(value).resolve())
    return None


def notebook_cells(nb_bytes: bytes) -> list[dict[str, Any]]:
    """Code cells of a notebook file as ``{"id", "source", "tags"}`` (tolerant of old formats)."""
    try:
        nb = json.loads(nb_bytes)
    except (ValueError, UnicodeDecodeError):
        return []
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(src)
        tags = (cell.get("metadata") or {}).get("tags") or []
        cells.append({"id": cell.get("id"), "source": src, "tags": tags})
    return cells


_snapshots: dict[tuple[str, str], tuple[tuple[int, int], str, list[dict[str, Any]]]] = {}


def notebook_snapshot(path: str, cache: Cache) -> tuple[str, list[dict[str, Any]]]:
    """``(blob hash, code cells)`` of the saved notebook, kept in ``cache``.

    Every tracked cell records the saved notebook, which changes far less often
    than cells run (an autosave every two minutes): the file is read, hashed and
    parsed again only when its modification time or size changed.
    """
    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    key = (path, str(cache.root))
    found = _snapshots.get(key)
    if found is not None and found[0] == stamp and cache.has(found[1]):
        return found[1], found[2]
    data = Path(path).read_bytes()
    digest, cells = cache.put_bytes(data), notebook_cells(data)
    _snapshots[key] = (stamp, digest, cells)
    return digest, cells


def match_cell(
    cells: list[dict[str, Any]], source: str, cell_id: str | None
) -> tuple[str | None, bool | None]:
    """``(cell id, code matches the saved notebook)`` for a cell that just ran.

    With a cell id (JupyterLab sends one) the saved cell of that id is compared;
    without one (papermill does not), a saved cell with the same source gives the id.
    """
    if not cells:
        return cell_id, None
    want = source.strip()
    if cell_id:
        for c in cells:
            if c["id"] == cell_id:
                return cell_id, c["source"].strip() == want
        return cell_id, False
    for c in cells:
        if c["source"].strip() == want:
            return c["id"], True
    return None, False
