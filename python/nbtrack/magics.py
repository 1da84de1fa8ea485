"""``%%track`` and ``%track <verb>``: a thin door into the run machinery."""

from __future__ import annotations

import logging
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_magic,
    magics_class,
    output_can_be_silenced,
)
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Integer

from . import dataflow, filewatch, previous, settings, sysmetrics
from .cellrun import TrackOptions
from .exceptions import NbtrackError
from .lineage import PAPERMILL_HEADER, TreeRecorder
from .session import KernelSession

USAGE = (
    "usage: %%track [NAME] [-p VAR ...] [-m VAR ...] [-i PATH ...] [-o PATH ...]\n"
    "               [-t KEY=VALUE ...] [--no-auto] [--no-cache] [--no-system]\n"
    "(%%track? shows the help)"
)
_TAG = re.compile(r"([\w.\-/]+)=(.*)\Z", re.S)


def _extend(values: list[list[str]] | None) -> list[str]:
    return [v for group in values or [] for v in group]


@magics_class
class TrackMagics(Magics):
    """Track cell executions as runs in the project's ``.nbtrack/runs.duckdb``."""

    show_summary = Bool(True, help="Show the run summary under each tracked cell.").tag(config=True)
    auto_detect = Bool(
        True, help="Record literal assignments and the files a cell opens (else only -p/-m/-i/-o)."
    ).tag(config=True)
    max_blob_size = Integer(
        0, help="Files larger than this many bytes are hashed but not cached (0: no limit)."
    ).tag(config=True)

    system_interval = Float(
        None,
        allow_none=True,
        help="Seconds between samples of CPU, memory, disk and GPU (0: off; "
        "default: $NBTRACK_SYSTEM_INTERVAL, else 2).",
    ).tag(config=True)

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = KernelSession(shell.user_ns)
        self._parsed: dict[tuple[Any, ...], TrackOptions] = {}
        self.trees = TreeRecorder()
        from .execution import TrackedCells

        self.cells = TrackedCells(self)

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="a name for the runs of this cell")
    @argument("-p", "--param", dest="params", nargs="+", action="append", metavar="VAR",
              help="record these variables (their values after the cell) as parameters")  # fmt: skip
    @argument("-m", "--metric", dest="metrics", nargs="+", action="append", metavar="VAR",
              help="record these variables (their values after the cell) as metrics")  # fmt: skip
    @argument("-i", "--input", dest="inputs", nargs="+", action="append", metavar="PATH",
              help="files or folders the cell reads (beyond those detected)")  # fmt: skip
    @argument("-o", "--output", dest="outputs", nargs="+", action="append", metavar="PATH",
              help="files or folders the cell writes (beyond those detected)")  # fmt: skip
    @argument("-t", "--tag", dest="tags", nargs="+", action="append", metavar="KEY=VALUE",
              help="tags for the run")  # fmt: skip
    @argument("--no-auto", action="store_true",
              help="do not record literal assignments and opened files automatically")  # fmt: skip
    @argument("--no-cache", action="store_true",
              help="record data hashes but keep no copy of the bytes in .nbtrack/cache")  # fmt: skip
    @argument("--no-system", action="store_true",
              help="do not sample CPU, memory, disk and GPU use for this run")  # fmt: skip
    @output_can_be_silenced
    @cell_magic
    def track(self, line: str, cell: str) -> Any:
        """Record each execution of this cell as a run.

        %%track [NAME] [-p VAR ...] [-m VAR ...] [-i PATH ...] [-o PATH ...]
                [-t KEY=VALUE ...] [--no-auto] [--no-cache] [--no-system]

        Parameters: literal assignments (``lr = 0.01``), papermill parameters and
        -p variables. Metrics: ``nbtrack.log_metric(name, value, step=None)`` calls
        and -m variables. Data: files the cell opens plus -i/-o paths, hashed and
        cached. Also the code, git state, environment and outcome.
        """
        __tracebackhide__ = True
        # A %%track first line never gets here: IPython runs such a cell itself
        # (execution.py). Here: a bad line, or %%track inside another cell magic.
        opts = self._options(line, cell)
        from .execution import run_in_magic

        return run_in_magic(self, opts, line, cell)

    def _options(self, line: str, cell: str) -> TrackOptions:
        # IPython transforms a cell twice before running it, and a notebook runs the
        # same few %%track lines again and again: each line is parsed once.
        key = (line, bool(cell.strip()), self.auto_detect, self.max_blob_size, self.system_interval)
        found = self._parsed.get(key)
        if found is None:
            found = self._parse_options(line, cell)
            if len(self._parsed) >= 256:
                self._parsed.clear()
            self._parsed[key] = found
        return found.copy()

    def _parse_options(self, line: str, cell: str) -> TrackOptions:
        usage = USAGE
        try:
            # Quotes are honoured as a shell does (-t "note=hello world"): IPython's
            # parse_argstring splits without POSIX rules and keeps them in the value.
            args = self.track.parser.parse_args(shlex.split(line))
        except UsageError as exc:
            raise UsageError(f"%%track: {exc}\n{usage}") from None
        except ValueError as exc:  # unbalanced quotes and the like
            raise UsageError(f"%%track: cannot read the line ({exc})\n{usage}") from None
        if args.name is not None and (args.name.startswith("-") or not args.name.strip()):
            raise UsageError(f"%%track: bad run name {args.name!r}\n{usage}")
        params, metrics = _extend(args.params), _extend(args.metrics)
        for flag, names in (("-p", params), ("-m", metrics)):
            for name in names:
                if not name.isidentifier():
                    last = name.rsplit(".", 1)[-1]  # -m search.best_score_: say how
                    bind = f": bind it in the cell ({last} = {name})" if last.isidentifier() else ""
                    raise UsageError(
                        f"%%track: {flag} takes variable names, not {name!r}{bind}\n{usage}"
                    )
        tags: dict[str, str] = {}
        for item in _extend(args.tags):
            m = _TAG.match(item)
            if not m:
                raise UsageError(f"%%track: -t takes KEY=VALUE, not {item!r}\n{usage}")
            tags[m.group(1)] = m.group(2)
        if not cell.strip():
            raise UsageError(f"%%track: the cell is empty, there is nothing to run\n{usage}")
        return TrackOptions(
            name=args.name,
            params=params,
            metrics=metrics,
            inputs=_extend(args.inputs),
            outputs=_extend(args.outputs),
            tags=tags,
            auto=self.auto_detect and not args.no_auto,
            cache=not args.no_cache,
            max_blob_size=self.max_blob_size or None,
            system_interval=0.0 if args.no_system else self.system_interval,
        )

    @line_magic("track")  # type: ignore[arg-type]
    def track_line(self, line: str) -> Any:
        """Query the store from the notebook: %track ls | show RUN | diff A B | sql QUERY.

        The same verbs and options as the ``nbtrack`` command line, shown as tables.
        """
        from .cli import models, runs

        try:
            words = sql_words(line) or shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%track: cannot read the line ({exc})") from None
        if words[:1] == ["autolog"]:  # %track autolog [off]
            from .autologging import autolog

            return autolog(disable=words[1:] == ["off"])
        nb = self.session.notebook_path()
        verbs = models if words and words[0] in ("models", "register") else runs
        try:
            return verbs.notebook_verb(words, start=nb)
        except NbtrackError as exc:
            raise UsageError(f"%track: {exc}") from None

    def pre_run_cell(self, info: Any) -> None:
        """Notice papermill's injected parameters cell (the cell before it: the defaults)."""
        self.trees.take()
        sysmetrics.reap()  # the last tracked cell's sampler thread, exited by now
        source = getattr(info, "raw_cell", "") or ""
        try:
            if source.lstrip().startswith(PAPERMILL_HEADER):
                hist = getattr(self.shell, "history_manager", None)
                raw = getattr(hist, "input_hist_raw", None) or []
                self.session.saw_cell(source, raw[-1] if len(raw) > 1 else None)
            elif self.session.lineage.is_defaults_cell(source):
                self.session.saw_defaults(source)
        except NbtrackError as exc:
            logging.getLogger("nbtrack").warning("nbtrack: %s", exc)

    def post_run_cell(self, result: Any) -> None:
        """After every cell: which names it bound (a tracked cell's run did that itself)."""
        info = getattr(result, "info", None)
        raw = getattr(info, "raw_cell", None) or ""
        if not raw.strip() or info is self.cells.tracked or raw.lstrip().startswith("%%track"):
            return  # a tracked cell's run did the bookkeeping (also below %%time)
        shell: Any = self.shell
        trees = self.trees.take()
        try:
            hist = shell.history_manager
            if hist.input_hist_raw and hist.input_hist_raw[-1] == raw:
                code = hist.input_hist_parsed[-1]  # transformed already
            else:
                code = shell.transform_cell(raw)
            # The trees IPython parsed (the cell's, and code its magics ran): no second parse.
            flow = dataflow.merge([dataflow.analyze_tree(t) for t in trees]) if trees else None
            self.session.lineage.after_cell(
                code, getattr(result, "execution_count", None), getattr(info, "cell_id", None),
                flow=flow,
            )  # fmt: skip
            self.session.seeds.after_cell(code)
        except Exception as exc:  # bookkeeping must never break the user's cell
            logging.getLogger("nbtrack").warning("nbtrack: after the cell: %s", exc)


_loaded: dict[int, TrackMagics] = {}


def load(ipython: Any) -> None:
    if id(ipython) in _loaded:
        return
    magics = TrackMagics(ipython)
    if magics.session.headless():
        # Nobody reads its runs cell by cell: the ingestion process starts at exit.
        from .ingest import ingestor

        ingestor().defer()
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
    ipython.events.register("post_run_cell", magics.post_run_cell)
    ipython.ast_transformers.append(magics.trees)
    history = getattr(getattr(ipython, "history_manager", None), "input_hist_parsed", None)
    if history:
        # Loaded after other cells: learn what they bound (and papermill's cell) from
        # In, all but this very cell (its own post_run_cell comes).
        try:
            magics.session.catch_up(list(history[:-1]))
            magics.session.loaded_in(history[-1])
        except Exception as exc:  # loading the extension must not fail on what ran before
            logging.getLogger("nbtrack").warning("nbtrack: %s", exc)
    try:
        magics.session.headless_start()
    except NbtrackError as exc:
        logging.getLogger("nbtrack").warning("nbtrack: %s", exc)
    magics.cells.register()
    _loaded[id(ipython)] = magics
    filewatch.install()  # (a pool a setup cell forks reports its workers' reads)
    from .capture import environment
    from .ingest import background, ingestor

    writer = ingestor()  # start the background writer now, not in the first tracked cell
    background(environment)  # list the installed packages while the user types
    try:
        project = magics.session.project()
    except NbtrackError as exc:
        logging.getLogger("nbtrack").warning("nbtrack: %s", exc)
        return
    background(writer.prepare, project.db_path)  # and the store's ingestion process
    if not settings.parent_run():
        try:  # and read what the notebook's cells last recorded, for their summaries
            previous.for_notebook(project, magics.session)
        except NbtrackError as exc:
            logging.getLogger("nbtrack").warning("nbtrack: %s", exc)


def unload(ipython: Any) -> None:
    magics = _loaded.pop(id(ipython), None)
    if magics is not None:
        ipython.events.unregister("pre_run_cell", magics.pre_run_cell)
        ipython.events.unregister("post_run_cell", magics.post_run_cell)
        if magics.trees in ipython.ast_transformers:
            ipython.ast_transformers.remove(magics.trees)
        magics.cells.unregister()


_SQL_LINE = re.compile(r"^\s*sql((?:\s+--(?:write|json|csv))*)\s+(?P<query>\S.*?)\s*$", re.DOTALL)


def sql_words(line: str) -> list[str] | None:
    """``%track sql [--write] [--json|--csv] QUERY``: the query as written, quotes kept
    (``WHERE key='x'``), or None for another verb. A query wrapped whole in one pair of
    quotes, as a shell needs it, is unwrapped."""
    match = _SQL_LINE.match(line)
    if match is None:
        return None
    query = match["query"]
    if len(query) > 1 and query[0] == query[-1] and query[0] in "\"'":
        try:
            inner = shlex.split(query)
        except ValueError:
            inner = []
        if len(inner) == 1:
            query = inner[0]
    return ["sql", *match[1].split(), query]
