"""Which files anything wrote inside the project during a cell: an inotify watch.

Python's audit hook sees only the ``open`` calls of the kernel's own Python code.
Parquet written by Arrow's C++ code, a SQLite database, ``!cp a b``, a subprocess or
a joblib worker write through the operating system directly; Linux tells every
watcher of a folder about those writes (inotify), whichever process made them.

One inotify instance per project and kernel, with a watch on each folder of the
project (a 10,000-file project has a few hundred folders). Nothing runs while a
cell runs: the kernel queues the events, and the cell's end reads them in one
``read``. The queue is exact at that moment: Linux queues a write's event inside
the writer's own ``write``/``close``/``rename`` call, so every write a cell's code
waited for (a worker's result, a shell line's exit) is already queued when the cell
returns, and no barrier is needed.

Limits (docs/design.md, "Files"): Linux only; writes by other processes at the same
time (another kernel, an editor) are attributed to the cell; if the queue overflows
(more than ``/proc/sys/fs/inotify/max_queued_events`` events, 16,384 by default) the
project is scanned instead for files changed since the cell began; folders past
``MAX_FOLDERS`` are not watched.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("nbtrack")

# Folders of tools, never data, at any depth (a hidden folder such as ``.data/`` is data,
# and so are ``.cache/``, ``.config/`` and ``.local/`` inside a project: the home folder's
# own are left out by path, envpaths.ignored_prefixes).
TOOL_DIRS = frozenset(
    {
        ".nbtrack",
        ".git",
        ".hg",
        ".svn",
        ".ipynb_checkpoints",
        ".virtual_documents",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".venv",
        "node_modules",
        ".ipython",
        ".jupyter",
        ".idea",
        ".vscode",
    }
)
MAX_FOLDERS = 20_000
# Filesystem timestamps come from a clock that lags the precise one by up to a tick.
CLOCK_SLACK_NS = 10_000_000

_CLOSE_WRITE, _MOVED_FROM, _MOVED_TO, _CREATE = 0x8, 0x40, 0x80, 0x100
_Q_OVERFLOW, _IGNORED, _ISDIR = 0x4000, 0x8000, 0x40000000
_ONLYDIR, _DONT_FOLLOW = 0x01000000, 0x02000000
_WROTE = _CLOSE_WRITE | _MOVED_TO | _CREATE
# No MODIFY: one event per write() would alternate with CLOSE_WRITE and defeat the
# merging of identical events (a log opened, appended and closed in a loop is one
# CLOSE_WRITE). A file created during the cell is seen by its CREATE even if still
# open; a database kept open is seen by its journal or by filewatch (changed since
# the cell opened it).
_MASK = _CLOSE_WRITE | _MOVED_FROM | _MOVED_TO | _CREATE | _ONLYDIR | _DONT_FOLLOW


class ProjectWatch:
    """The inotify watch of one project tree; ``begin()`` and ``written()`` bracket a cell."""

    def __init__(self, root: str, skipped: Iterable[str] = ()) -> None:
        from inotify_simple import INotify

        self.root = os.path.realpath(root)
        self.skipped = tuple(p.rstrip(os.sep) + os.sep for p in skipped)
        self._queue = INotify()
        self._paths: dict[int, str] = {}
        self._wds: dict[str, int] = {}
        self.unwatched: list[str] = []  # folders past the limit or refused by the system
        self.told = False  # whether a summary said so already
        self._since = 0
        self._written: dict[str, None] = {}
        self._made: set[str] = set()  # created or moved in since begin(): new for sure
        self._add_tree(self.root, report=False)

    # ------------------------------------------------------------------ a cell
    def begin(self) -> None:
        """Forget what happened since the last cell (keeping the watches up to date)."""
        self._drain(report=False)
        self._written = {}
        self._made = set()
        self._since = time.time_ns()

    def written(self) -> list[str]:
        """Real paths of the files written since ``begin()``, in the order first seen.

        A file only *closed* since, whose status has not changed since (a log or a
        SQLite connection opened by an earlier cell and closed, or collected, in this
        one), was not written: its close is an event, its bytes are older.
        """
        self._drain(report=True)
        return [p for p in self._written if p in self._made or self._changed_since(p)]

    def _changed_since(self, path: str) -> bool:
        try:
            return os.stat(path).st_ctime_ns >= self._since - CLOCK_SLACK_NS
        except OSError:
            return True  # gone (a journal at commit): the caller decides

    def close(self) -> None:
        self._queue.close()

    # ------------------------------------------------------------------ events
    def _drain(self, report: bool) -> None:
        overflowed = False
        while events := self._queue.read(timeout=0):
            overflowed |= self._handle(events, report)
        if overflowed:
            log.info("nbtrack: inotify queue overflowed; scanning %s", self.root)
            self._rescan(report)

    def _handle(self, events: list[Any], report: bool) -> bool:
        overflowed = False
        for wd, mask, _cookie, name in events:
            if mask & _Q_OVERFLOW:
                overflowed = True
                continue
            base = self._paths.get(wd)
            if mask & _IGNORED:  # its folder is gone
                folder = self._paths.pop(wd, None)
                if folder is not None and self._wds.get(folder) == wd:
                    del self._wds[folder]
                continue
            if base is None:
                continue
            path = f"{base}/{name}" if name else base
            if mask & _ISDIR:
                if mask & (_CREATE | _MOVED_TO):
                    if not self._skip(name, path):
                        self._add_tree(path, report=report)
                elif mask & _MOVED_FROM:
                    self._drop_tree(path)
            elif report and mask & _WROTE:
                self._written[path] = None
                if mask & (_CREATE | _MOVED_TO):
                    self._made.add(path)
        return overflowed

    def _skip(self, name: str, path: str) -> bool:
        return name in TOOL_DIRS or (path + os.sep).startswith(self.skipped)

    def _add_tree(self, top: str, report: bool) -> None:
        """Watch ``top`` and the folders below it; report the files found as written
        (a folder new since the last read of events holds only new files)."""
        stack = [top]
        while stack:
            folder = stack.pop()
            if folder not in self._wds and not self._watch(folder):
                continue
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                continue
            if any(e.name == "pyvenv.cfg" for e in entries) and folder != self.root:
                self._drop_tree(folder)  # a Python environment
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    if not self._skip(e.name, e.path):
                        stack.append(e.path)
                elif report:
                    self._written[e.path] = None
                    self._made.add(e.path)

    def _watch(self, folder: str) -> bool:
        if len(self._wds) >= MAX_FOLDERS:
            self.unwatched.append(folder)
            return False
        try:
            wd = self._queue.add_watch(folder, _MASK)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # the system's max_user_watches
                self.unwatched.append(folder)
            return False
        self._paths[wd] = folder
        self._wds[folder] = wd
        return True

    def _unwatch(self, wd: int) -> None:
        self._paths.pop(wd, None)
        with contextlib.suppress(OSError):  # already gone with its folder
            self._queue.rm_watch(wd)

    def _drop_tree(self, top: str) -> None:
        prefix = top + os.sep
        for folder in [f for f in self._wds if f == top or f.startswith(prefix)]:
            self._unwatch(self._wds.pop(folder))

    def _rescan(self, report: bool) -> None:
        """After an overflow: watch every folder again, and report the files whose
        status changed since the cell began (a write, a rename, a ``cp -p``)."""
        since = self._since - CLOCK_SLACK_NS
        stack = [self.root]
        while stack:
            folder = stack.pop()
            if folder not in self._wds:
                self._watch(folder)
            try:
                with os.scandir(folder) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            if not self._skip(e.name, e.path):
                                stack.append(e.path)
                        elif report and e.stat(follow_symlinks=False).st_ctime_ns >= since:
                            self._written[e.path] = None
            except OSError:
                continue


_watches: dict[str, ProjectWatch | None] = {}
_lock = threading.Lock()  # the kernel may start a watch in the background at load


def for_root(root: str, skipped: Iterable[str] = ()) -> ProjectWatch | None:
    """The watch of a project folder, started on first use (None where inotify is not)."""
    real = os.path.realpath(root)
    with _lock:
        return _watches[real] if real in _watches else _start(real, skipped)


def _start(real: str, skipped: Iterable[str]) -> ProjectWatch | None:
    if not _watches:
        atexit.register(_close_all)
    watch = None
    if sys.platform.startswith("linux"):
        try:
            watch = ProjectWatch(real, [p for p in skipped if p.startswith(real + os.sep)])
        except OSError as exc:
            log.warning("nbtrack: cannot watch %s for written files: %s", real, exc)
    _watches[real] = watch
    return watch


def _close_all() -> None:
    with _lock:
        for watch in _watches.values():
            if watch is not None:
                watch.close()
        _watches.clear()
