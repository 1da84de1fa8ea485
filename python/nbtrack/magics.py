"""``%%track`` and ``%track <verb>``: a thin door into the run machinery."""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Integer

from .cellrun import CellRun, KernelSession, TrackOptions
from .exceptions import NbtrackError

USAGE = (
    "usage: %%track [NAME] [-p VAR ...] [-m VAR ...] [-i PATH ...] [-o PATH ...]\n"
    "               [-t KEY=VALUE ...] [--no-auto] [--no-cache]\n"
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

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = KernelSession(shell.user_ns)

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
    @cell_magic
    def track(self, line: str, cell: str) -> None:
        """Record each execution of this cell as a run.

        %%track [NAME] [-p VAR ...] [-m VAR ...] [-i PATH ...] [-o PATH ...]
                [-t KEY=VALUE ...] [--no-auto] [--no-cache]

        Parameters: literal assignments (``lr = 0.01``), papermill parameters and
        -p variables. Metrics: ``nbtrack.log_metric(name, value, step=None)`` calls
        and -m variables. Data: files the cell opens plus -i/-o paths, hashed and
        cached. Also the code, git state, environment and outcome.
        """
        opts = self._options(line, cell)
        shell = self.shell
        assert shell is not None  # a magic always runs inside a shell
        transformed = shell.transform_cell(cell)
        # A cell that does not compile runs nothing and records nothing.
        filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
        tree = shell.compile.ast_parse(transformed, filename=filename)
        tree = shell.transform_ast(tree)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        body = compile(tree, filename, "exec", flags=shell.compile.flags, dont_inherit=True)
        tail = (
            compile(last, filename, "eval", flags=shell.compile.flags, dont_inherit=True)
            if last is not None
            else None
        )
        cell_id = _cell_id(shell)
        try:
            raw, count = _raw_cell(shell, line, cell)
            run = CellRun(self.session, opts, raw, transformed, cell_id, count)
        except NbtrackError as exc:
            raise UsageError(f"nbtrack could not start a run: {exc}") from exc
        error: BaseException | None = None
        result = None
        try:
            exec(body, shell.user_global_ns, shell.user_ns)
            if tail is not None:
                result = eval(tail, shell.user_global_ns, shell.user_ns)
        except BaseException as exc:
            error = exc
        outcome = run.end(shell.user_ns, error)
        if error is None and result is not None and not _quiet(cell):
            shell.displayhook(result)
        if self.show_summary:
            from .summary import show

            show(outcome, shell)
        if error is not None:
            raise error

    def _options(self, line: str, cell: str) -> TrackOptions:
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
                    raise UsageError(f"%%track: {flag} takes variable names, not {name!r}\n{usage}")
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
        )

    @line_magic("track")  # type: ignore[arg-type]
    def track_line(self, line: str) -> Any:
        """Query the store from the notebook: %track ls | show RUN | diff A B | sql QUERY.

        The same verbs and options as the ``nbtrack`` command line, shown as tables.
        """
        from .cli.runs import notebook_verb

        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%track: cannot read the line ({exc})") from None
        nb = self.session.notebook_path()
        try:
            return notebook_verb(words, start=nb)
        except NbtrackError as exc:
            raise UsageError(f"%track: {exc}") from None

    def pre_run_cell(self, info: Any) -> None:
        """Notice papermill's injected parameters cell."""
        source = getattr(info, "raw_cell", "") or ""
        if source.lstrip().startswith("# Parameters"):
            try:
                self.session.saw_cell(source)
            except NbtrackError as exc:
                import logging

                logging.getLogger("nbtrack").warning("nbtrack: %s", exc)


def _cell_id(shell: Any) -> str | None:
    """The id JupyterLab sends with an execute request (papermill sends none)."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent("shell")
    except (TypeError, AttributeError):
        parent = getattr(kernel, "_parent_header", None) or {}
    meta = (parent or {}).get("metadata") or {}
    cid = meta.get("cellId")
    return str(cid) if cid else None


def _raw_cell(shell: Any, line: str, cell: str) -> tuple[str, int | None]:
    """The cell as the user wrote it (``%%track`` line included) and its ``In [n]``.

    IPython counts a cell that stores history before running it, so while it
    runs ``execution_count`` is already the next one.
    """
    hist = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if hist:
        raw = hist[-1]
        if raw.lstrip().startswith("%%track") and raw.rstrip().endswith(cell.rstrip()):
            return raw, shell.execution_count - 1
    return f"%%track {line}".rstrip() + "\n" + cell, shell.execution_count


def _quiet(cell: str) -> bool:
    lines = [ln for ln in cell.rstrip().splitlines() if ln.strip()]
    return bool(lines) and lines[-1].rstrip().endswith(";")


_loaded: dict[int, TrackMagics] = {}


def load(ipython: Any) -> None:
    if id(ipython) in _loaded:
        return
    magics = TrackMagics(ipython)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", magics.pre_run_cell)
    _loaded[id(ipython)] = magics
    from .capture import environment
    from .ingest import background, ingestor

    ingestor()  # start the background writer now, not in the first tracked cell
    background(environment)  # and list the installed packages while the user types


def unload(ipython: Any) -> None:
    magics = _loaded.pop(id(ipython), None)
    if magics is not None:
        ipython.events.unregister("pre_run_cell", magics.pre_run_cell)
