"""The git state a run records: commit, dirty flag and diff, asked of git only when it can differ.

Every tracked cell records the state of the repository holding the notebook. A
``git status`` per cell costs a process (~2 ms of CPU in git, more in the kernel
to start it and read its output), and cells run far more often than the work
tree changes. So the answer is kept with a fingerprint of what decides it — the
index, ``HEAD`` and the ref it names, and the size and modification time of every
tracked file — and git is asked again only when the fingerprint changed. Stat'ing
the tracked files costs ~2 µs each; past ``MAX_TRACKED`` files, or in a layout
this does not read (a ``.git`` file: worktrees, submodules), git is asked every time.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from .exceptions import CaptureError

DIFF_LIMIT = 1 << 20  # a dirty diff larger than this is cut (and says so)
MAX_TRACKED = 5_000

_lock = threading.Lock()
_answers: dict[Path, tuple[tuple[Any, ...], dict[str, Any]]] = {}
_tracked: dict[Path, tuple[tuple[int, int], list[str]]] = {}


def git_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``git_commit``, ``git_dirty`` and ``git_diff`` for the repository holding ``folder``.

    ``{}`` outside a repository and in one without a commit yet. Raises
    ``CaptureError`` when ``folder`` is in a repository whose state git cannot tell
    (git missing, a broken ``.git``, a repository git refuses to read).
    """
    start = Path(folder).resolve()
    root = next((d for d in (start, *start.parents) if (d / ".git").exists()), None)
    if root is None:
        return {}  # not a repository: no git process at all
    with _lock:
        stamp = _fingerprint(root)
        known = _answers.get(root)
        if stamp is not None and known is not None and known[0] == stamp:
            return dict(known[1])
        state = _ask_git(root)
        if stamp is not None:
            _answers[root] = (stamp, state)
        return dict(state)


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=root,
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


def _ask_git(root: Path) -> dict[str, Any]:
    # One process for the commit and the dirty flag; a second only for a dirty diff.
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
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
        diff = _git(root, "diff", "HEAD") if dirty else None
    except CaptureError:
        diff = None  # the commit and the dirty flag are known; only the patch is missing
    if diff and len(diff) > DIFF_LIMIT:
        diff = diff[:DIFF_LIMIT] + "\n[nbtrack: diff cut at 1 MiB]\n"
    return {"git_commit": commit, "git_dirty": dirty, "git_diff": diff}


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _fingerprint(root: Path) -> tuple[Any, ...] | None:
    """What the git state depends on, or None where it cannot be read cheaply."""
    git_dir = root / ".git"
    if not git_dir.is_dir():
        return None
    index = _stat(git_dir / "index")  # None before anything was added
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    ref = head[5:].strip() if head.startswith("ref: ") else None
    refs = (_stat(git_dir / ref), _stat(git_dir / "packed-refs")) if ref else None
    files = _tracked_files(root, index) if index is not None else []
    if files is None:
        return None
    return (index, head, refs, tuple(_stat(root / f) for f in files))


def _tracked_files(root: Path, index: tuple[int, int]) -> list[str] | None:
    """The tracked files (listed again only when the index changed); None if too many."""
    known = _tracked.get(root)
    if known is None or known[0] != index:
        try:
            out = _git(root, "ls-files", "-z")
        except CaptureError:
            return None  # git status will say what is wrong
        known = _tracked[root] = (index, [f for f in out.split("\0") if f])
    return known[1] if len(known[1]) <= MAX_TRACKED else None
