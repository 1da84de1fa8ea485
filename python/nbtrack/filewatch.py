"""Which files a tracked cell reads and writes, whoever opens them.

Three sources, merged by ``FileWatcher``:

* Python's audit hook, active only during the cell: ``open`` events (``builtins.open``,
  ``io.open``, ``os.open``: plain ``open``, pandas CSV, numpy, pickle), ``os.rename``
  (an atomic save lands under its final name) and ``sqlite3.connect``;
* ``libhooks``: the Python entry points of native readers and writers (Arrow's Parquet,
  Feather and CSV, DuckDB's ``read_*`` functions and the files its SQL names), whose C++
  code opens files without Python's ``open``;
* ``fswatch``: an inotify watch of the project tree, which sees every file written in
  the project by any process (native code, ``!shell`` lines, subprocesses, workers).

Files of the Python environment, tool folders (``.git``, ``__pycache__``,
``.ipynb_checkpoints``...), Jupyter's own files, the store and the notebook itself are
left out. A hidden folder of the project such as ``.data/`` is data.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import forkreads, fswatch, libhooks, writeclaims
from .heldfiles import held_for_writing, launcher_logs
from .lazyreads import lazy_files

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Files a database keeps beside itself while it works: their writes are the database's.
_SIDECARS = ("-journal", "-wal", "-shm", ".wal")
# Folders that libraries make in the temp folder for their own bookkeeping.
_TEMP_TOOLS = ("joblib_memmapping_folder_", "pymp-", "loky-", "ipykernel_", "matplotlib-")
_UNSEEN = object()  # (no entry: a file the cell did not write)


class FileWatcher:
    """Collects the paths a cell reads and writes while it is ``armed``.

    ``reads`` maps each path read to its status when first read, so a file the cell
    read and later changed (or wrote before reading) is told apart at the end.
    """

    def __init__(
        self,
        project_root: Path,
        store_folder: Path,
        ignored: list[str],
        notebook: str | None = None,
    ) -> None:
        self.root = os.path.realpath(project_root)
        self.store = os.path.realpath(store_folder)
        self.ignored = tuple(p.rstrip(os.sep) + os.sep for p in ignored)
        self.notebook = os.path.realpath(notebook) if notebook else None
        self.reads: dict[str, os.stat_result | None] = {}
        self.writes: dict[str, None] = {}
        # Files the process held open for writing when the cell began (heldfiles.py).
        self.held: dict[str, os.stat_result] = {}
        self.began_ns = time.time_ns()
        self.project_watch: fswatch.ProjectWatch | None = None
        # Called with a path when the cell first reads it: its version is taken then,
        # as read, before the cell (or a library, a shell line) may overwrite it.
        self.before_overwrite: Callable[[str], None] | None = None
        # The thread versioning a read: its own opens are nbtrack's, not the cell's. Per
        # thread: the cell's other threads (a ThreadPoolExecutor of readers) read on.
        self._versioning = threading.local()
        # This process's writes, claimed for kernels running cells beside it (writeclaims.py).
        self.claims = writeclaims.Claims(self.store)

    def inside(self, path: str) -> bool:
        return path.startswith(self.root + os.sep)

    def keep(self, path: str) -> bool:
        if path == self.notebook:
            return False
        # A re-run's scratch copy lives in the store folder and is its kernel's root:
        # its files are data, the rest of the store folder is not.
        in_store = path == self.store or path.startswith(self.store + os.sep)
        if in_store and not (self.root.startswith(self.store + os.sep) and self.inside(path)):
            return False
        if self.inside(path):
            rel = path[len(self.root) + 1 :]
            if any(part in fswatch.TOOL_DIRS for part in rel.split(os.sep)[:-1]):
                return False
        elif path.startswith(_TEMP) and path[len(_TEMP) :].startswith(_TEMP_TOOLS):
            return False
        return not path.startswith(self.ignored)

    def saw(self, path: str, write: bool, read: bool, *, folder: bool = False) -> None:
        """Note an access to ``path``; ``folder``: a folder is data here (a Parquet
        dataset), not an ``open`` of a folder to sync it."""
        if getattr(self._versioning, "on", False) or self._environment_file(path):
            return
        real = os.path.realpath(path)
        if not self.keep(real) or (not folder and os.path.isdir(real)):
            return
        fresh = real not in self.writes  # (`r+` reads what was there, then writes)
        if write:
            if fresh and self.inside(real):
                self.claims.claim(real)
            self.writes[real] = None
        if read and fresh and real not in self.reads:
            try:
                st = os.stat(real)
            except OSError:
                return  # nothing there: not read
            self.reads[real] = st
            if st.st_ctime_ns < self.began_ns and self.before_overwrite:
                self._versioning.on = True  # (not the cell's own output, read back)
                try:
                    self.before_overwrite(real)
                finally:
                    self._versioning.on = False

    def take_forked_reads(self) -> None:
        """The files the cell's forked workers read, as reads of the cell's own."""
        for path in _fork_log.take():
            self.saw(path, write=False, read=True)

    def _environment_file(self, path: str) -> bool:
        """Whether ``path`` is in an ignored folder (the Python environment: the modules a
        first ``import pyarrow`` opens, by the hundred), told from its folder's real
        path, found once per folder, and one ``lstat``, not a ``realpath`` each (~40 µs)."""
        folder, _, name = path.rpartition(os.sep)
        real = _ignored_dirs.get(folder)
        if real is None:
            real = os.path.realpath(folder or os.sep) + os.sep
            if not real.startswith(self.ignored):
                return False  # (only ignored folders are remembered: they do not move)
            if len(_ignored_dirs) >= 4096:
                _ignored_dirs.clear()
            _ignored_dirs[folder] = real
        elif not real.startswith(self.ignored):
            return False
        try:  # a link out of the folder is judged by where it leads
            return bool(name) and not os.path.islink(path)
        except (OSError, ValueError):
            return False

    def renamed(self, src: str, dst: str) -> None:
        """``os.rename``/``os.replace``: the file now lives under ``dst``. One the cell did
        not write (``shutil.move`` from an inbox) is read: versioned before it moves."""
        if self.writes.pop(os.path.realpath(src), _UNSEEN) is _UNSEEN:
            self.saw(src, write=False, read=True)
        self.saw(dst, write=True, read=False)

    def begin(self) -> None:
        self.began_ns = time.time_ns()
        if self.project_watch is not None:
            self.project_watch.begin()

    def finish(self) -> None:
        """Add what the project watch saw written (a database's journal counts as the
        database), the files read whose status changed since (a database the cell
        wrote through a connection still open), and the files held open for writing
        since before the cell whose status changed (an earlier cell's log file).

        Notebooks are left to the audit hook: JupyterLab's autosave and papermill's
        saves of open notebooks land while cells run, and are not the cell's output.
        """
        for path, st in self.reads.items():
            if st is not None and not same_file(path, st):
                self.writes[path] = None
        for path, st in self.held.items():
            if not same_file(path, st):
                self.writes[path] = None
        self.claims.close()
        if self.project_watch is None:
            return
        others: set[str] | None = None
        for path in self.project_watch.written():
            if path.endswith(".ipynb"):
                continue
            for suffix in _SIDECARS:
                if path.endswith(suffix) and os.path.isfile(path[: -len(suffix)]):
                    path = path[: -len(suffix)]
                    break
            if path in self.writes or path in launcher_logs() or not self.keep(path):
                continue  # (the log of the runner, papermill > run.log: heldfiles.py)
            if others is None:  # only the watch saw it: did another kernel write it?
                # (claimed up to 2 s before the cell began: a write opened just before)
                others = self.claims.by_others(self.began_ns - 2_000_000_000)
            if path not in others:
                self.writes[path] = None

    def written_before_read(self, path: str) -> bool:
        """Whether the cell itself made the file it then read (its own output, read back)."""
        st = self.reads.get(path)
        return path in self.writes and st is not None and st.st_ctime_ns >= self.began_ns


_TEMP = os.path.realpath(tempfile.gettempdir()) + os.sep
# Folders whose real path is in an ignored folder: folder as opened -> real path + "/".
_ignored_dirs: dict[str, str] = {}


def same_file(path: str, st: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return True  # removed: nothing written to record
    return (st.st_ino, st.st_size, st.st_mtime_ns) == (now.st_ino, now.st_size, now.st_mtime_ns)


_watcher: FileWatcher | None = None
_installed = False  # the audit and fork hooks
_armed = False  # a cell has been tracked: the library hooks too
# Where forked workers (a DataLoader's, a Pool's) append the paths they read.
_fork_log = forkreads.ForkLog()
_own_thread: Callable[[], bool] = bool  # ingest.is_own_thread once armed
_EVENTS = frozenset({"open", "os.rename", "sqlite3.connect"})


def _text_path(path: Any) -> str | None:
    if isinstance(path, str):
        return path
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if isinstance(path, os.PathLike):
        return _text_path(os.fspath(path))
    return None  # a file descriptor


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS:
        return
    w = _watcher
    if w is None:
        if _fork_log.child and event == "open":  # a worker's (writes: the project watch's)
            _fork_log_read(*_access(*args))
        return
    if _own_thread():
        return
    try:  # never let bookkeeping break the user's call
        if event == "open":
            w.saw(*_access(*args))
        elif event == "os.rename":
            src, dst = _text_path(args[0]), _text_path(args[1])
            if src and dst and args[2] in (None, -1) and args[3] in (None, -1):  # (no dir_fd)
                w.renamed(os.path.abspath(src), os.path.abspath(dst))
        else:
            database = _database_path(args[0])
            if database:  # read if it exists, else about to be created
                new = not os.path.exists(database)
                w.saw(database, write=new, read=not new)
    except Exception:  # noqa: S110
        pass


def _access(path: Any, mode: Any, flags: Any) -> tuple[str, bool, bool]:
    """An ``open`` event's path, and whether it writes, reads."""
    path = _text_path(path)
    if path is None:
        return "", False, False  # (a file descriptor: no path)
    if isinstance(mode, str):
        write = any(c in mode for c in "wax+")
        read = "r" in mode or ("+" in mode and "w" not in mode)  # (w+ empties it first)
    else:
        f = flags or 0
        write = bool(f & _WRITE_FLAGS)
        read = not (f & (os.O_WRONLY | os.O_TRUNC))
    return os.path.abspath(path), write, read


def _fork_log_read(path: str, write: bool, read: bool) -> None:
    """In a forked worker: a file it reads goes to the kernel's log, for the cell."""
    if read and not write and path:
        with contextlib.suppress(Exception):
            _fork_log.tell(path)


def _database_path(database: Any) -> str | None:
    """The file of a ``sqlite3.connect`` argument (None for ``:memory:``)."""
    text = _text_path(database)
    if not text or text.startswith(":"):
        return None
    if text.startswith("file:"):
        text = text[5:].split("?", 1)[0]
        if text.startswith("//"):
            text = text[2:]
    return os.path.abspath(text) if text else None


def report(path: Any, write: bool) -> None:
    """A native library is about to read or write ``path`` (``libhooks.sink``)."""
    w = _watcher
    text = _text_path(path)
    if w is None and text is not None:
        _fork_log_read(os.path.abspath(text), write, not write)
    if w is None or text is None or _own_thread():
        return
    w.saw(os.path.abspath(text), write, not write, folder=True)


def arm(watcher: FileWatcher, values_read: Iterable[Any] = ()) -> None:
    """Start collecting into ``watcher`` (installs the hooks once per process).

    ``values_read``: the values the cell reads from the namespace. A SQLite connection
    (or cursor) among them, opened by an earlier cell, is a read of its database files:
    the cell queries them with no ``connect`` for the hook to see; so is a DuckDB
    relation or an Arrow dataset of its files (``lazyreads``), run in the cell.
    """
    global _watcher, _armed
    if not _armed:
        install()
        libhooks.install()
        forkreads.sweep()  # (logs of kernels killed in a cell)
        _armed = True
    watcher.project_watch = fswatch.for_root(watcher.root, watcher.ignored)
    # (not the runner's log: ipykernel keeps a copy of the stdout papermill > run.log gave it)
    watcher.held = held_for_writing(lambda p: watcher.keep(p) and p not in launcher_logs())
    watcher.begin()
    for value in values_read:
        for path in _database_files(value) + _module_file(value) + lazy_files(value):
            watcher.saw(path, write=False, read=True)
    _fork_log.skip = watcher.ignored  # (for workers forked from now on)
    _fork_log.begin()
    _watcher = watcher
    libhooks.sink = report


def install() -> None:
    """The audit hook and the fork hooks, once per process, from ``%load_ext`` on: a pool a
    setup cell forks has them, and its workers report their reads in tracked cells."""
    global _installed, _own_thread
    if not _installed:
        from .ingest import is_own_thread

        _own_thread = is_own_thread
        sys.addaudithook(_hook)
        # A forked worker's reads go to the kernel's log; the project watch sees its writes.
        os.register_at_fork(before=_before_fork, after_in_child=_forget)
        _installed = True


def _module_file(value: Any) -> list[str]:
    """The source file of a module the cell uses (``import settings`` then
    ``settings.LR``): imported once, its file is opened by the first cell only, so a
    later cell's run had no trace of ``settings.py`` changed and reloaded. The
    environment's modules are left out as any of its files."""
    if not isinstance(value, types.ModuleType):
        return []
    path = getattr(value, "__file__", None)
    return [os.path.abspath(path)] if isinstance(path, str) and path.endswith(".py") else []


def _database_files(value: Any) -> list[str]:
    """The files of a SQLite connection or cursor (``PRAGMA database_list``: the main
    database and any attached), or none."""
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is None:
        return []
    if isinstance(value, sqlite3.Cursor):
        value = value.connection
    if not isinstance(value, sqlite3.Connection):
        return []
    try:
        rows = value.execute("PRAGMA database_list").fetchall()
    except Exception:  # closed, or made in another thread: nothing the cell can read
        return []
    return [row[2] for row in rows if isinstance(row[2], str) and row[2]]


def _forget() -> None:
    """In a forked worker: its reads go to the kernel's log while a cell runs; nothing
    else is its to see (the project watch's queue and the write claims are the kernel's)."""
    global _watcher
    _watcher = None
    libhooks.sink = report
    _fork_log.after_fork_in_child()


def _before_fork() -> None:
    """In the kernel, before a Python-level fork (``os.fork``, a fork Pool; not
    subprocess's exec): the cell's log for the worker's reads, made on first need."""
    w = _watcher
    if w is None:
        _fork_log.before_fork(in_cell=False)
        return
    w._versioning.on = True  # (the log's open is nbtrack's)
    try:
        _fork_log.before_fork(in_cell=True)
    finally:
        w._versioning.on = False


def disarm(values_bound: Iterable[Any] = ()) -> FileWatcher | None:
    """Stop collecting; ``values_bound``: the values of the names the cell bound, whose
    modules (``import settings``, imported before) are reads of their files."""
    global _watcher
    w, _watcher = _watcher, None
    libhooks.sink = None
    if w is not None:
        for path in (p for value in values_bound for p in _module_file(value)):
            w.saw(path, write=False, read=True)
        w.take_forked_reads()
        w.finish()
    return w
