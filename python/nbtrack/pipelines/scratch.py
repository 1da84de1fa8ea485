"""Where a re-run executes: a scratch copy of the project, or (``--in-place``) the project.

The scratch copy lives in ``.nbtrack/reruns/<rerun id>/`` and is kept (the executed
outputs are there to look at). It holds:

- every input the original read, at the version it read: linked from the workspace when
  the file there still has that content, else restored from the cache; an input in
  neither is an error naming it (``nbtrack pull`` brings blobs from a remote);
- the other files of the project tree (tool folders, virtual environments and the store
  left out), minus the outputs the original wrote (the re-run writes them again).

Files are cloned (reflink) where the filesystem can; else small files are copied and
large ones hard-linked, so no large file is copied in full. A hard link shares the
user's bytes: a notebook that rewrites a file *in place* that it did not record as an
output would write through it (see docs/pipelines.md).

``--in-place`` follows ``checkout``'s rules instead: recorded inputs are restored in the
user's folder, and nothing that matches no recorded version is overwritten without
``force``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import PipelineError

if TYPE_CHECKING:
    from ..client import Client
    from ..models import DataVersion, Run

SMALL_FILE = 1 << 20
SKIPPED_DIRS = frozenset(
    {".nbtrack", ".git", ".hg", ".svn", ".ipynb_checkpoints", "__pycache__", "node_modules"}
)


@dataclass
class Workspace:
    """The folder a re-run executes in."""

    root: Path
    scratch: bool
    cloned: int = 0
    linked: int = 0
    copied: int = 0
    restored: int = 0
    # files put back as the run read them: in place, or (scratch) the inputs that differ
    # from the project's copy now (changed or gone)
    replaced: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if not self.scratch:
            if not self.replaced:
                return f"in place, in {self.root} (its inputs already held the versions read)"
            return (
                f"in place, in {self.root}; put back as the run read them (from the cache): "
                + ", ".join(self.replaced)
            )
        where = (
            f"in a scratch copy {self.root} ({self.restored} input(s) restored from the cache, "
            f"{self.cloned} file(s) cloned, {self.linked} hard-linked, {self.copied} copied)"
        )
        if not self.replaced:
            return where
        return (
            f"{where}; read as the run read them, not as the project holds them now "
            "(changed or gone since): " + ", ".join(self.replaced)
        )


def inputs_read(cells: list[Run]) -> list[tuple[Run, DataVersion]]:
    """Each project input of ``cells`` at the version first read, unless an earlier cell
    of the same execution wrote it (the re-run makes it again)."""
    seen: set[str] = set()
    out = []
    for cell in sorted(cells, key=lambda c: c.started_at.timestamp() if c.started_at else 0.0):
        for v in cell.data:
            if v.path in seen or not v.in_project or v.kind == "dataframe":
                continue
            seen.add(v.path)
            if v.role == "input":
                out.append((cell, v))
    return out


def _outputs(cells: list[Run]) -> set[str]:
    return {v.path for c in cells for v in c.data if v.role == "output" and v.in_project}


def place_file(src: Path, dst: Path, ws: Workspace) -> None:
    """``dst`` with ``src``'s bytes: a clone, else a copy (small) or a hard link (large)."""
    from ..copying import try_reflink

    dst.parent.mkdir(parents=True, exist_ok=True)
    size = src.stat().st_size
    with open(src, "rb") as s, open(dst, "wb") as d:
        if size and try_reflink(s.fileno(), d.fileno()):
            ws.cloned += 1
            return
        if size <= SMALL_FILE:
            shutil.copyfileobj(s, d)
            ws.copied += 1
            return
    dst.unlink()
    try:
        os.link(src, dst)
        ws.linked += 1
    except OSError:  # another filesystem: a copy is all there is
        shutil.copyfile(src, dst)
        ws.copied += 1


def _copy_tree(top: Path, dest: Path, skip: set[str], ws: Workspace) -> None:
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = [
            d for d in dirs if d not in SKIPPED_DIRS and not (here / d / "pyvenv.cfg").exists()
        ]
        for name in files:
            src = here / name
            rel = src.relative_to(top).as_posix()
            if rel in skip or src.is_symlink() or not src.is_file():
                continue
            place_file(src, dest / rel, ws)


def scratch_copy(
    client: Client, cells: list[Run], rerun_id: str, remote: str | None = None
) -> Workspace:
    """A scratch copy of the project for re-running ``cells``, inputs at their versions.

    Inputs in neither the workspace nor the cache are pulled from ``remote`` when given.
    """
    root = Path(client.project.folder) / "reruns" / rerun_id
    root.mkdir(parents=True)
    try:
        return _fill(client, cells, Workspace(root, scratch=True), remote)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)  # nothing half-made is kept
        raise


def _fill(client: Client, cells: list[Run], ws: Workspace, remote: str | None) -> Workspace:
    from ..checkout import RESTORED, checkout
    from ..hashing import StatCache

    project, root = client.project, ws.root
    inputs = inputs_read(cells)
    stat_cache = StatCache.for_folder(project.folder)
    in_workspace: set[str] = set()
    for _, v in inputs:
        src = project.absolute(v.path)
        if v.kind != "dir" and src.is_file() and stat_cache.hash(src).hash == v.hash:
            place_file(src, root / v.path, ws)
            in_workspace.add(v.path)
    todo = [(cell, v) for cell, v in inputs if v.path not in in_workspace]
    if remote is not None and any(v.hash and not client.cache.has(v.hash) for _, v in todo):
        from ..remotes import pull

        pull(client, remote, sorted({cell.run_id for cell, _ in todo}))
    missing = []
    for cell, v in todo:
        report = checkout(
            client, cell.run_id, [str(project.absolute(v.path))], role="input", to=root
        )
        ws.restored += report.counts().get("restored", 0)
        if v.kind != "dir" and any(i.status == RESTORED for i in report.items):
            ws.replaced.append(v.path)  # (a folder is always restored: it may not differ)
        missing += [f"{i.path} ({i.detail or i.status})" for i in report.problems]
    if missing:
        raise PipelineError(
            "inputs of the run are in neither the workspace (at the version read) nor the "
            f"cache{' nor the remote' if remote else ''}: {', '.join(missing)}; "
            "`nbtrack pull` brings them from a remote (or name it: --remote URL)"
        )
    skip = {v.path for _, v in inputs} | _outputs(cells)
    _copy_tree(Path(project.root), root, skip, ws)
    return ws


def in_place(client: Client, cells: list[Run], force: bool) -> Workspace:
    """Check the recorded inputs out in the project (checkout's rules), and refuse to let
    the re-run overwrite an output that matches no recorded version, unless ``force``."""
    from ..checkout import RESTORED, checkout
    from ..hashing import StatCache

    project = client.project
    refused = []
    replaced: list[str] = []
    for cell, v in inputs_read(cells):
        report = checkout(
            client, cell.run_id, [str(project.absolute(v.path))], role="input", force=force
        )
        refused += [f"{i.path} ({i.detail or i.status})" for i in report.problems]
        replaced += [i.path for i in report.items if i.status == RESTORED]
    if not force:
        stat_cache = StatCache.for_folder(project.folder)
        for path in sorted(_outputs(cells)):
            target = project.absolute(path)
            known = client.recorded_hashes(path)
            if target.is_file() and stat_cache.hash(target).hash not in known:
                refused.append(f"{path} (an output that differs from every recorded version)")
    if refused:
        raise PipelineError(
            "refusing to re-run in place: " + "; ".join(refused) + "; --force overwrites them"
        )
    return Workspace(Path(project.root), scratch=False, replaced=replaced)


#: A scratch copy changed this recently may belong to a re-run still being prepared
#: (its run is not in the store yet): ``gc --reruns`` leaves it.
SCRATCH_GRACE_S = 600.0


@dataclass
class ScratchCopies:
    """The re-runs' scratch copies ``gc`` found: those it removed (or, with ``dry_run``,
    would remove) and those it kept (re-runs still running, or changed in the last 10
    minutes), as ``(re-run id, bytes)``."""

    removable: list[tuple[str, int]] = field(default_factory=list)
    kept: list[tuple[str, int]] = field(default_factory=list)

    @property
    def removable_bytes(self) -> int:
        return sum(size for _, size in self.removable)

    def to_dict(self) -> dict[str, object]:
        return {
            "removable": [{"rerun_id": r, "size": s} for r, s in self.removable],
            "removable_bytes": self.removable_bytes,
            "kept": [{"rerun_id": r, "size": s} for r, s in self.kept],
        }


def scratch_copies(
    client: Client, *, remove: bool, grace_s: float = SCRATCH_GRACE_S
) -> ScratchCopies:
    """The scratch copies under ``.nbtrack/reruns/``; with ``remove``, the ones whose
    re-run ended (finished, failed or crashed) and that nothing changed for ``grace_s``
    are deleted. The runs and the cache are not touched: a re-run's outputs were cached
    when it ran, and a link in a copy shares the user's bytes without owning them."""
    import time

    from ..models import RunQuery

    found = ScratchCopies()
    base = Path(client.project.folder) / "reruns"
    if not base.is_dir():
        return found
    from .. import spools

    running = {
        r.run_id
        for r in client.list_runs(RunQuery(kind="notebook", status="running", limit=None)).runs
    }
    # A run still being written may not be in the store yet: its spool says it runs.
    running |= {sp.run_id for sp in spools.scan(client.project.spool_dir) if not sp.dead}
    now = time.time()
    for copy in sorted(base.iterdir()):
        if not copy.is_dir() or copy.is_symlink():
            continue
        size, newest = _tree_stats(copy)
        busy = copy.name in running or now - newest < grace_s
        (found.kept if busy else found.removable).append((copy.name, size))
        if remove and not busy:
            shutil.rmtree(copy, ignore_errors=True)
    return found


def _tree_stats(root: Path) -> tuple[int, float]:
    """The bytes removing ``root`` frees (files hard-linked elsewhere too, such as a
    large input linked from the workspace, free nothing) and its newest change."""
    size, newest = 0, root.lstat().st_mtime
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime)
            if name in files and st.st_nlink == 1:
                size += st.st_size
    return size, newest
