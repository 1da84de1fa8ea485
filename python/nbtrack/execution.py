"""How a ``%%track`` cell executes: IPython runs it as the cell itself, nbtrack only watches.

``%%track`` is not executed as a cell magic. An input transformer (it runs
before IPython's own cell-magic transformer) turns the ``%%track ...`` first line
into a comment, so IPython compiles and runs the rest exactly as it would run the
same cell untracked: top-level ``await``, ``!shell`` and ``%magic`` lines, stacked
cell magics, the last-expression echo with ``;`` and ``ast_node_interactivity``,
KeyboardInterrupt and the traceback (``Cell In[n]``, the cell's own line numbers,
no nbtrack frame). The run starts in the ``pre_run_cell`` event and ends in
``post_run_cell`` with the cell's error, if any; the summary is displayed there,
after everything the cell displayed.

The line may also follow one of the cell magics that only measure their body
(``%%time``, ``%%timeit``, ``%%prun``): it is then removed, and the run spans that
magic. Anywhere else (inside a cell magic that runs its body through
``run_cell``, or ``run_cell_magic("track", ...)`` called by code) the ``%%track``
magic itself runs the body, as plain Python code run by a magic: see
:func:`run_in_magic`.
"""

from __future__ import annotations

import ast
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from .cellrun import CellRun, TrackOptions
from .exceptions import NbtrackError
from .session import stopped_on_purpose
from .sessioncode import SessionCell
from .summary import show

log = logging.getLogger("nbtrack")

MAGIC = "%%track"
# Cell magics that may stand above %%track: they run their body in the kernel and
# only measure it, so a run spanning the whole cell records the same thing.
MEASURING = ("time", "timeit", "prun")
# Below %%track, %%capture runs its body as a cell too: what the cell reads is in it.
BODY_RUNNING = (*MEASURING, "capture")


def _magic_name(line: str) -> str:
    return line[2:].split(None, 1)[0] if line.startswith("%%") and len(line) > 2 else ""


class TrackedCells:
    """The input transformer and the two events that make a ``%%track`` cell a run."""

    def __init__(self, magics: Any) -> None:  # magics.TrackMagics (which imports this module)
        self.magics = magics
        self.shell: Any = magics.shell
        # ExecutionInfo of each cell running now: a cell may run another (%%capture).
        self._executing: list[Any] = []
        # What the transformer took off the cell about to run: (line, options).
        self._pending: tuple[str, TrackOptions] | None = None
        self._count_seen: int | None = None
        self.count: int | None = None  # the In [n] of the cell running now
        self._run: CellRun | None = None
        self.tracked: Any = None  # the ExecutionInfo of the last cell that became a run
        self._loading = False  # the cell running %load_ext: its pre_run_cell came before us

    # ---------------------------------------------------------------- wiring
    def register(self) -> None:
        shell = self.shell
        shell.input_transformers_cleanup.append(self.transform)
        shell.events.register("pre_run_cell", self.pre_run_cell)
        shell.events.register("post_run_cell", self.post_run_cell)
        self._loading = True

    def unregister(self) -> None:
        shell = self.shell
        if self.transform in shell.input_transformers_cleanup:
            shell.input_transformers_cleanup.remove(self.transform)
        shell.events.unregister("pre_run_cell", self.pre_run_cell)
        shell.events.unregister("post_run_cell", self.post_run_cell)

    def _start_last(self) -> None:
        """Keep the run's start after the other ``pre_run_cell`` hooks, from the next cell
        on: ``%autoreload`` reloads the edited modules in its hook, and a run started
        before it read them as stale (the fourteenth trial)."""
        hooks = self.shell.events.callbacks["pre_run_cell"]
        if hooks and hooks[-1] != self.pre_run_cell and self.pre_run_cell in hooks:
            hooks.remove(self.pre_run_cell)
            hooks.append(self.pre_run_cell)

    # ---------------------------------------------------------------- the transformer
    def transform(self, lines: list[str]) -> list[str]:
        """Take the ``%%track`` line off a cell that is about to run (a pure rewrite).

        IPython also transforms cells it does not run (completeness checks, the
        body of ``%%time``): the options are only noted here, and the run starts
        when ``pre_run_cell`` sees the same line at the top of the cell that runs.
        Inside a running cell nothing is rewritten: the magic runs the body then.
        """
        if self._executing or not lines:
            return lines
        # IPython numbers a cell after transforming it (9.x: before running it).
        self._count_seen = self.shell.execution_count
        at = 1 if _magic_name(lines[0]) in MEASURING and len(lines) > 1 else 0
        line = lines[at]
        if _magic_name(line) != "track":
            return lines
        body = "".join(lines[at + 1 :])
        try:
            opts = self.magics._options(line[len(MAGIC) :].strip(), body)
        except UsageError:
            return lines  # left to the magic, which reports the usage error
        self._pending = (line.rstrip("\n"), opts)
        rest = lines[at + 1 :]
        if at == 0 and not _magic_name(next((ln for ln in rest if ln.strip()), "")):
            # A comment keeps the cell's line numbers (tracebacks point at the line
            # the user sees) and shows the line in the traceback's context.
            return ["# " + line if line.endswith("\n") else "# " + line + "\n", *rest]
        # Another cell magic must stay the first line; below %%time the body must
        # be exactly the user's, as it would be untracked.
        if at == 0:
            while rest and not rest[0].strip():
                rest.pop(0)
        return [*lines[:at], *rest]

    # ---------------------------------------------------------------- the events
    def pre_run_cell(self, info: Any) -> None:
        self._executing.append(info)
        pending, self._pending = self._pending, None
        if len(self._executing) > 1:
            return
        self.count = self._count_seen if getattr(info, "store_history", True) else None
        if pending is None:
            return
        line, opts = pending
        raw = (getattr(info, "raw_cell", "") or "").strip("\n")
        if line.strip() not in (ln.strip() for ln in raw.splitlines()[:2]):
            return  # the transformer saw another cell (a completeness check)
        transformed = getattr(info, "transformed_cell", None) or raw
        measured = _measured_body(raw, line)
        if measured is not None:
            # IPython's code for the cell is one run_cell_magic('time', ...) call: what
            # the cell reads and binds is in the body the magic runs.
            try:
                transformed = self.shell.transform_cell(measured)
            except Exception:
                log.debug("nbtrack: could not transform a measured body", exc_info=True)
        cell_id = getattr(info, "cell_id", None) or _cell_id(self.shell)
        history = _history(self.shell, raw, self.magics.session.raised)
        try:
            self._run = CellRun(
                self.magics.session, opts, raw, transformed, cell_id, self.count, history
            )
            self.tracked = info
        except NbtrackError as exc:
            _warn(f"nbtrack could not start a run, the cell runs untracked: {exc}")
        except Exception:  # never let nbtrack stop or change the user's cell
            log.exception("nbtrack: could not start a run")

    def post_run_cell(self, result: Any) -> None:
        loading, self._loading = self._loading, False
        self._start_last()
        if not self._executing:
            if loading and result is not None:  # `%load_ext nbtrack` then a failing import
                raised = result.error_before_exec or result.error_in_exec
                count = getattr(result, "execution_count", None)
                if raised is not None and count is not None:
                    self.magics.session.cell_raised(count, raised)
            return
        if result is not None and result.info is not self._executing[-1]:
            return  # an empty cell: IPython skipped pre_run_cell for it
        self._executing.pop()
        top = not self._executing and self.count is not None and result is not None
        if top and (result.error_before_exec or result.error_in_exec):
            self.magics.session.cell_raised(
                self.count, result.error_before_exec or result.error_in_exec
            )
        if self._executing or self._run is None:
            return
        run, self._run = self._run, None
        if result is None:  # the kernel cancelled the cell (an interrupt)
            error: BaseException | None = KeyboardInterrupt()
        else:
            error = result.error_before_exec or result.error_in_exec
            error = None if stopped_on_purpose(error) else error
        try:
            outcome = run.end(self.shell.user_ns, error)
            if self.magics.show_summary:
                show(outcome, self.shell)
        except Exception as exc:
            log.debug("nbtrack: ending the run failed", exc_info=True)
            _warn(f"nbtrack could not finish the run: {exc}")


def _measured_body(raw: str, line: str) -> str | None:
    """The body of a ``%%time``/``%%timeit``/``%%prun`` stacked with the ``%%track``
    ``line`` (above or below it), or of a ``%%capture`` below it, in ``raw``; None when no
    such magic is stacked."""
    lines = raw.splitlines()
    at = next((i for i, ln in enumerate(lines[:2]) if ln.strip() == line.strip()), None)
    if at is None:
        return None
    rest = lines[at + 1 :]
    while rest and not rest[0].strip():
        rest.pop(0)
    if at == 1 and _magic_name(lines[0]) in MEASURING:
        return "\n".join(rest) + "\n"
    if at == 0 and rest and _magic_name(rest[0]) in BODY_RUNNING:
        return "\n".join(rest[1:]) + "\n"
    return None


def _history(shell: Any, raw: str, raised: set[int]) -> Callable[[], list[SessionCell]] | None:
    """The raw cells this session ran, then ``raw`` (IPython stores it after this event):
    copied now, made into cells on the helper thread (``session_cells`` is O(cells))."""
    from .sessioncode import session_cells

    manager = getattr(shell, "history_manager", None)
    if manager is None:
        return None
    return functools.partial(session_cells, list(manager.input_hist_raw), raw, set(raised))


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


def _warn(text: str) -> None:
    sys.stderr.write(text + "\n")


def run_in_magic(magics: Any, opts: TrackOptions, line: str, cell: str) -> Any:
    """``%%track`` where IPython runs it as a magic: the body runs here, as plain Python.

    Only reached inside a cell magic that runs its body through ``run_cell``
    (``%%capture``) or when code calls ``run_cell_magic("track", ...)``. The
    value of a last expression is returned (the caller decides whether to show
    it); an error is raised with nbtrack's own frames hidden from IPython's
    traceback. Top-level ``await`` is not available here.
    """
    __tracebackhide__ = True
    shell: Any = magics.shell
    transformed = shell.transform_cell(cell)
    count = magics.cells.count if magics.cells.count is not None else shell.execution_count
    filename = shell.compile.cache(transformed, count, raw_code=cell)
    tree = shell.transform_ast(shell.compile.ast_parse(transformed, filename=filename))
    tail = (
        ast.Expression(tree.body.pop().value)
        if tree.body and isinstance(tree.body[-1], ast.Expr)
        else None
    )
    flags = shell.compile.flags
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    last = compile(tail, filename, "eval", flags=flags, dont_inherit=True) if tail else None
    try:
        raw = f"{MAGIC} {line}".rstrip() + "\n" + cell
        # The cell holding this magic is already in the history.
        history = _history(shell, "", magics.session.raised)
        run = CellRun(magics.session, opts, raw, transformed, _cell_id(shell), count, history)
    except NbtrackError as exc:
        raise UsageError(f"nbtrack could not start a run: {exc}") from exc
    error: BaseException | None = None
    value = None
    try:
        exec(body, shell.user_global_ns, shell.user_ns)
        if last is not None:
            value = eval(last, shell.user_global_ns, shell.user_ns)
    except BaseException as exc:
        error = exc
    outcome = run.end(shell.user_ns, error)
    if magics.show_summary:
        show(outcome, shell)
    if error is not None:
        raise error.with_traceback(_user_frames(error.__traceback__))
    return value


def _user_frames(tb: Any) -> Any:
    """The traceback from the first frame of the user's code on (drops this module's)."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb
