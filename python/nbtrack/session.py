"""Per-kernel state: the session id, the store, papermill's notebook run, lineage."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    capture,
    endparams,
    envpaths,
    fswatch,
    ingest,
    launcher,
    sessioncode,
    settings,
    tracking,
)
from .filestale import FileWriters
from .hashing import StatCache
from .lineage import PAPERMILL_HEADER, Lineage
from .models import Run, raised, warning_tag
from .project import Project, resolve_project
from .seeds import Seeds


class KernelSession:
    """Per-kernel state: the session id, the papermill parent run, the last run of each cell."""

    def __init__(self, user_ns: dict[str, Any]) -> None:
        self.user_ns = user_ns
        self.session_id = uuid.uuid4().hex
        self._stat_caches: dict[Path, StatCache] = {}
        self.last_by_cell: dict[tuple[Any, ...], Run] = {}
        self.file_writers = FileWriters()
        self.papermill_params: dict[str, Any] = settings.params()
        self.lineage = Lineage(user_ns)
        self.seeds = Seeds(self.lineage)
        self.parent_id: str | None = settings.parent_run()
        self._parent_writer: tracking.RunWriter | None = None
        found = None if self.parent_id else launcher.launch()
        self.runner = found if found and found.tool == "papermill" else None
        defaults = self.parameters_cell()
        if defaults is not None:  # matched as typed (before a cell) and as run (after it)
            self.lineage.defaults_cells = frozenset({defaults.strip(), python(defaults).strip()})
        self.lineage.defaults_before_injected = self._injected_after_code()
        self._ignored: list[str] | None = None
        self._projects: dict[tuple[str | None, ...], Project] = {}
        self._nb_seen: tuple[str, str] | None = None  # (notebook, its path from the cwd)
        self._cwds: dict[tuple[str, str], str] = {}
        # Execution counts of the cells that raised (sessioncode.py: a replay lets them).
        self.raised: set[int] = set()
        self.failure: str | None = None  # the first cell that raised, as papermill's run says
        self._replied: threading.Event | None = None  # the last ended tracked cell's (replied)
        self._injected_seen = False  # papermill's cell: the one after it holds no defaults
        # Watch the project for written files now, not in the first tracked cell.
        ingest.background(lambda: fswatch.for_root(str(self.project().root), self.ignored()))

    # ---------------------------------------------------------------- where
    def notebook_path(self) -> str | None:
        nb = capture.kernel_notebook_path(self.user_ns)
        if nb is None or not os.path.isabs(nb):
            return nb
        if os.path.isfile(nb):
            self._nb_seen = (nb, os.path.relpath(nb, os.getcwd()))
        elif self._nb_seen is not None and self._nb_seen[0] == nb:
            # The project folder moved under the kernel: its working folder moved with
            # it, the path it was started with did not (the runs named a notebook that
            # was gone, and each cell's run was its "first")
            moved = os.path.join(os.getcwd(), self._nb_seen[1])
            if os.path.isfile(moved):
                return moved
        return nb

    def project(self) -> Project:
        """The store of this notebook, resolved again only when what decides it changed."""
        nb = self.notebook_path()
        key = (os.getcwd(), nb, settings.STORE.raw(), settings.ROOT.raw())
        found = self._projects.get(key)
        if found is None:
            # A notebook that is not there (a stale or mistyped path) names no folder:
            # its parent, `/` for `/x.ipynb`, made a store that took every project's runs
            start = Path(nb).parent if nb and os.path.isfile(nb) else None
            found = self._projects[key] = resolve_project(start)
        return found

    def relative_cwd(self, project: Project) -> str:
        """The working folder as a run records it (its real path resolved once per folder)."""
        key = (os.getcwd(), str(project.root))
        found = self._cwds.get(key)
        if found is None:
            found = self._cwds[key] = project.relative(key[0])[0]
        return found

    def stat_cache(self, project: Project) -> StatCache:
        """One stat cache per store, persisted in its folder, loaded once per kernel."""
        cache = self._stat_caches.get(project.folder)
        if cache is None:
            cache = self._stat_caches[project.folder] = StatCache.for_folder(project.folder)
        return cache

    def ignored(self) -> list[str]:
        if self._ignored is None:
            self._ignored = envpaths.ignored_prefixes()
        return self._ignored

    # ---------------------------------------------------------------- replies
    def cell_started(self) -> None:
        """A tracked cell starts: the tracked cell that ended before it has ended even if
        the kernel never replied to it (a loop of ``run_cell`` calls in one cell), so its
        facts are gathered now, not after ``GATHER_DELAY`` with its spool held open. (A
        cell still running, which runs this one inside it, is not that cell.)"""
        if self._replied is not None:
            self._replied.set()
            self._replied = None

    def cell_replied(self, replied: threading.Event, cache: StatCache) -> None:
        """A tracked cell ended; once the kernel has replied to it: its facts gathered, the
        hashes learnt saved for the next cell and process (a cache: losing a save costs a
        re-hash, never a wrong hash), the ingestion kicked. No callback holds the run:
        a loop of ``run_cell`` calls runs none of them until it returns, and a run held
        keeps its files open."""
        self._replied = replied
        after_reply(replied.set)
        after_reply(lambda: ingest.background(cache.save))
        after_reply(ingest.ingestor().kick)

    # ---------------------------------------------------------------- papermill
    def catch_up(self, history: list[str]) -> None:
        """``%load_ext nbtrack`` after other cells: learn what they bound, and papermill's cell.

        ``history[n]`` is ``In[n]`` (IPython's input history, transformed code).
        """
        self.lineage.replay(history)
        for i in range(1, len(history)):
            if history[i].lstrip().startswith(PAPERMILL_HEADER):
                self.saw_cell(history[i], history[i - 1] if i > 1 else None)
                break
            if self.lineage.is_defaults_cell(history[i]):
                self.saw_defaults(history[i])

    def saw_cell(self, source: str, previous: str | None = None) -> None:
        """Notice papermill's injected-parameters cell when nbtrack did not launch it.

        papermill writes the injected values as a cell that starts with
        ``# Parameters``; its literal assignments are the execution's parameters,
        and a notebook run is opened to hold them and parent the cell runs.
        papermill puts that cell right after the ``parameters`` cell, so the cell
        that ran just before (``previous``) holds the defaults.
        """
        if not source.lstrip().startswith(PAPERMILL_HEADER) or self.launched_by_nbtrack():
            return
        values = capture.literal_assignments(source)
        if not values:
            return
        if launcher.launch() is None:  # papermill called from a script: its output says
            self.runner = launcher.from_output(source)
        self.papermill_params.update(values)
        if not self.lineage.defaults_before_injected:
            previous = None  # (the code cell before a markdown one holds no defaults)
        declared = capture.literal_assignments(python(previous or ""))
        defaults = {k: v for k, v in declared.items() if k not in values}
        first, self._injected_seen = not self._injected_seen, True
        parent = self._parent()
        parent.log_params(values, source="papermill")
        if first and defaults:
            parent.log_params(defaults, source="default")
        mistyped = endparams.mistyped_injections(values, declared)
        if mistyped:  # (on the notebook run, and under papermill's cell in the output)
            parent.set_tags({warning_tag(f"param.{k}"): line for k, line in mistyped.items()})
            for line in mistyped.values():
                logging.getLogger("nbtrack").warning("nbtrack: %s", line)

    def _injected_after_code(self) -> bool:
        """papermill injects its cell after the first cell tagged ``parameters``, whatever
        its type, and at the top when there is none: the cell run before it is the
        defaults only when the notebook's tagged cell is a code cell (unknown: trusted)."""
        if settings.parent_run():  # (nbtrack's pipelines)
            notebook = settings.notebook() if self.papermill_params else None
        else:
            notebook = self.runner.notebook if self.runner and self.runner.injects else None
        if notebook is None:
            return True
        try:
            return capture.tagged_cell_type(Path(notebook).read_bytes(), "parameters") == "code"
        except OSError:
            return True

    def headless(self) -> bool:
        """A runner executes the notebook top to bottom (plain papermill, ``jupyter
        execute``, nbconvert), not nbtrack's pipelines, whose driver reads the runs."""
        return launcher.launch() is not None and not settings.parent_run()

    def launched_by_nbtrack(self) -> bool:
        """nbtrack's pipelines started this kernel: its notebook run exists already."""
        return bool(self.parent_id and self._parent_writer is None and settings.parent_run())

    def parameters_cell(self) -> str | None:
        """Under a papermill that injects no cell (no parameters given: plain papermill, or
        nbtrack's pipelines), the source of its notebook's ``parameters`` cell: it holds
        the defaults, and the values it binds are ``default`` where read."""
        if settings.parent_run():
            notebook = None if self.papermill_params else settings.notebook()
        else:
            runner = self.runner
            notebook = runner.notebook if runner is not None and not runner.injects else None
        if notebook is None:
            return None
        try:
            cells = capture.notebook_cells(Path(notebook).read_bytes())
        except OSError:
            return None
        return next((c["source"] for c in cells if "parameters" in c["tags"]), None)

    def loaded_in(self, source: str) -> None:
        """``%load_ext nbtrack`` in the parameters cell itself (``source``, as IPython runs
        it): no hook saw that cell start, yet it holds the defaults."""
        if self.lineage.is_defaults_cell(source):
            self.saw_defaults(source)

    def headless_start(self) -> None:
        """Under plain papermill, open the notebook run now: given no parameters, papermill
        injects no cell to say it runs the kernel; given some, a cell may raise before
        their cell runs. Every papermill execution has one, failed ones too."""
        if self.runner is not None:  # (None under nbtrack's pipelines)
            self._parent()

    def saw_defaults(self, source: str) -> None:
        """The parameters cell ran (or had run before ``%load_ext``): its literal values."""
        values = capture.literal_assignments(python(source))
        if values and not self.launched_by_nbtrack():  # (whose notebook run holds them)
            self._parent().log_params(values, source="default")

    def _parent(self) -> tracking.RunWriter:
        """The notebook run of the papermill execution this kernel runs, opened once."""
        if self._parent_writer is None:
            nb = self.notebook_path()
            self._parent_writer = tracking.RunWriter.start(
                self.project(),
                kind="notebook",
                name=Path(nb).stem if nb else "papermill",
                notebook_path=nb,
                background=True,
                kernel_name=sessioncode.kernel_name(),
                executable=sessioncode.executable(),
                cwd=self.relative_cwd(self.project()),
            )
            self.parent_id = self._parent_writer.run_id
            import atexit

            atexit.register(self._finish_parent)
        return self._parent_writer

    def cell_raised(self, count: int, error: BaseException) -> None:
        """Cell ``In[count]`` raised ``error``: a replay lets it raise again, and the
        notebook run papermill is executing failed (papermill stops at that cell)."""
        self.raised.add(count)
        if self.failure is None and not stopped_on_purpose(error):
            what = traceback.format_exception_only(type(error), error)[-1].strip()
            what += launcher.interrupted(error)
            self.failure = raised(f"In[{count}]", what)[: tracking.ERROR_LIMIT]

    @staticmethod
    def error_text(error: BaseException) -> str:
        """The error a failed run records, as IPython shows it: a syntax error's place is
        ``Cell In[n], line 3``, not the temporary file IPython compiled the cell as."""
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        name = getattr(error, "filename", None) if isinstance(error, SyntaxError) else None
        shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
        label = shell.compile.format_code_name(name) if name and shell is not None else None
        text = text.replace(f'File "{name}"', " ".join(label)) if label else text
        return text + launcher.interrupted(error)

    def _finish_parent(self) -> None:
        if self._parent_writer is not None:
            if self.failure is None:
                self._parent_writer.finish("finished")
            else:
                self._parent_writer.finish("failed", self.failure)
            ingest.ingestor().at_exit(10.0)


def stopped_on_purpose(error: BaseException | None) -> bool:
    """``sys.exit(0)``/``raise SystemExit``: code that ends a notebook early on purpose,
    a success to papermill (and to a shell), so no failure of the run it ends."""
    return isinstance(error, SystemExit) and error.code in (None, 0)


def python(source: str) -> str:
    """A cell as IPython runs it: ``%load_ext nbtrack`` beside the parameters (a line magic
    is no Python) must not hide their values."""
    if "%" not in source and "!" not in source:
        return source
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # IPython's own syntax errors: the source as it is
        return source


def after_reply(fn: Callable[[], object]) -> None:
    """Run ``fn`` on this thread once the kernel has replied to the cell and gone idle.

    ipykernel runs a cell inside its event loop, which takes the next callback only
    after the reply and the idle status are sent; with no running loop (a terminal,
    a script) ``fn`` runs now.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        fn()
        return
    loop.call_soon(fn)
