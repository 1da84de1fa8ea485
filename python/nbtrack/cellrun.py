"""One execution of a ``%%track`` cell, from its first line to its summary."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from errno import EROFS
from pathlib import Path
from typing import Any

from . import (
    capture,
    cellfiles,
    dataflow,
    endparams,
    filewatch,
    ingest,
    ingestlink,
    previous,
    sessioncode,
    settings,
    shellreads,
    sysmetrics,
    tracking,
)
from .client import Client
from .exceptions import NO_SPACE, CaptureError, NbtrackError, UsageError, why_unwritable
from .gitstate import git_state
from .lineage import Read, producer_key
from .metricvalues import MetricVars, metric_values, stopped_at
from .models import DataVersion, Run, warning_tag
from .previous import PreviousRuns, cell_key, recall, remember_cell
from .rundiff import RunDiff, diff_runs
from .session import KernelSession, after_reply

log = logging.getLogger("nbtrack")

# Seconds the helper thread waits before gathering a running cell's git state, saved
# notebook and session code: a cell that ends sooner has them after its reply, not beside
# the user's code (a fit on 2 cores stalls when another thread takes a core or the GIL).
# The system sampler's thread, queued on the helper before them, starts no later.
GATHER_DELAY = 1.0


@dataclass
class TrackOptions:
    """What the ``%%track`` line asked for."""

    name: str | None = None
    params: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    auto: bool = True
    cache: bool = True
    max_blob_size: int | None = None
    system_interval: float | None = None  # seconds between system samples; 0: off

    def copy(self) -> TrackOptions:
        """A copy whose lists and tags a run may change without changing this one."""
        c = replace(self, tags=dict(self.tags))
        c.params, c.metrics = list(self.params), list(self.metrics)
        c.inputs, c.outputs = list(self.inputs), list(self.outputs)
        return c


@dataclass
class CellOutcome:
    """What the summary under the cell shows."""

    run: Run
    previous: Run | None
    diff: RunDiff | None
    warnings: list[str]
    note: str | None = None  # said instead of the comparison when there is none
    alerts: list[str] = field(default_factory=list)  # inputs that drifted since the previous run


class CellRun:
    """A ``%%track`` cell while it runs."""

    def __init__(
        self,
        session: KernelSession,
        opts: TrackOptions,
        source: str,
        transformed: str,
        cell_id: str | None,
        execution_count: int | None,
        history: list[sessioncode.SessionCell]
        | Callable[[], list[sessioncode.SessionCell]]
        | None = None,
    ) -> None:
        self.session = session
        # The code the session ran up to and including this cell (sessioncode.py).
        self.history = history
        self.opts = opts
        self.source = source
        self.warnings: list[str] = []
        self.project = session.project()
        self.client = Client(self.project)
        nb = session.notebook_path()
        self.transformed = transformed
        # What the cell reads (names; files its shell lines name), as now, before it runs.
        self.flow = dataflow.analyze(transformed)
        self._shell = shellreads.named_files(transformed, os.getcwd()) if opts.auto else {}
        self.reads: list[Read] = []
        if opts.auto:
            try:
                cell = producer_key(cell_id, transformed)
                self.reads = session.lineage.reads(self.flow, exclude=opts.metrics, cell=cell)
                self.reads += session.seeds.reads(transformed, self.flow, self.reads)
            except Exception as exc:  # a hostile object must not stop the user's cell
                self.warnings.append(f"could not read the cell's inputs: {exc!r}")
        self._metric_vars = MetricVars(opts.metrics, session.lineage.ns, transformed)
        self.writer = tracking.RunWriter.start(
            self.project,
            kind="cell",
            name=opts.name,
            parent_id=session.parent_id,
            notebook_path=nb,
            background=True,
            source=source,
            cell_id=cell_id,
            execution_count=execution_count,
            session_id=session.session_id,
            kernel_name=sessioncode.kernel_name(),
            executable=sessioncode.executable(),
            cwd=session.relative_cwd(self.project),
        )
        by_origin: dict[str, dict[str, Any]] = {}
        for r in self.reads:
            if r.is_param:
                by_origin.setdefault(r.origin, {})[r.name] = r.value
            if r.stale:
                self.warnings.append(f"stale input: {r.stale}")
        for origin, chunk in by_origin.items():
            self.writer.log_params(chunk, source=origin)
        self.warnings += endparams.overridden_injections(self.reads, session.papermill_params)
        self.writer.log_inputs([r.record() for r in self.reads])
        # What the cell's literal names held at its start: one still held at a failure
        # was never reached (end_literals).
        self._held = {
            k: session.lineage.ns[k] for k in self.flow.literals if k in session.lineage.ns
        }
        if opts.auto and self.flow.literals:
            # The literals as written, now: a cell killed mid-way still records them;
            # the end of the cell replaces them with their final values (n *= 2).
            early = endparams.at_start(self.flow, transformed, opts.metrics)
            if early:
                self.writer.log_params(early, source="auto")
        if opts.tags:
            self.writer.set_tags(opts.tags)
        self.key = (self.writer.snapshot.notebook_path, cell_id or opts.name or source)
        self._ended = threading.Event()  # set once the cell has replied
        session.cell_started()
        snap = self.writer.snapshot
        self._cell_key = cell_key(snap.cell_id, snap.name, snap.source)
        self._previous = self._start_previous()
        self.watcher = filewatch.FileWatcher(
            self.project.root, self.project.folder, session.ignored(), notebook=nb
        )
        self.watcher.before_overwrite = self._version_before_overwrite
        self._early: dict[str, DataVersion] = {}
        self._not_cached: list[tuple[str, BaseException]] = []  # no space for their bytes
        # -- system metrics (sysmetrics.py): sampled from here to the start of end();
        # started before the file watcher is armed, which would look at its /proc reads
        self._system = sysmetrics.start(self.writer, opts.system_interval)
        self._start_context(nb, cell_id)  # (queued after the sampler's start: see GATHER_DELAY)
        tracking.set_active(self.writer)
        if opts.auto:  # (a database connection or a module the cell reads: its file)
            used = [session.lineage.ns.get(r.name) for r in self.reads]
            filewatch.arm(self.watcher, used + session.lineage.modules_read)

    # ---------------------------------------------------------------- background facts
    def _start_context(self, nb: str | None, cell_id: str | None) -> None:
        """Git state and the notebook snapshot, gathered while the cell runs.

        Nobody waits for them, so a fact that cannot be gathered is not raised: it is
        logged and recorded on the run as a warning (tag ``nbtrack.warning.git`` or
        ``nbtrack.warning.notebook``, see ``Run.warnings``), and the other facts are kept.
        """
        writer, cache, root = self.writer, self.client.cache, self.project.root
        source, history = self.source, self.history

        ended, started = self._ended, time.monotonic()

        def gather() -> None:
            # A short cell replies first: its facts are gathered once the kernel is idle.
            ended.wait(max(0.0, started + GATHER_DELAY - time.monotonic()))
            fields: dict[str, Any] = {}
            warnings: dict[str, str] = {}
            quiet: set[str] = set()
            if history is not None:
                try:
                    ran = history() if callable(history) else history
                    fields["code_hash"] = sessioncode.store_code(cache, ran)
                except (OSError, NbtrackError) as exc:
                    warnings["code"] = f"no session code kept: {exc}"
                    if _disk_full(exc):  # the cell's one "no space left" line says it
                        quiet.add("code")
            try:
                fields.update(git_state(Path(nb).parent if nb else root))
            except CaptureError as exc:
                warnings["git"] = f"no git state recorded: {exc}"
            if nb and os.path.isfile(nb):
                try:
                    digest, cells, not_kept = capture.notebook_snapshot(nb, cache)
                except OSError as exc:
                    warnings["notebook"] = f"no notebook snapshot recorded: {exc}"
                    if _disk_full(exc):
                        quiet.add("notebook")
                else:
                    found_id, matches = capture.match_cell(cells, source, cell_id)
                    fields["code_matches_notebook"] = matches
                    if found_id and not cell_id:
                        fields["cell_id"] = found_id
                    if not_kept is None:
                        fields["notebook_hash"] = digest
                    else:
                        warnings["notebook"] = f"no notebook snapshot kept: {not_kept}"
            writer.update(**fields)
            if warnings:
                _record_warnings(writer, warnings, quiet)

        def done(fut: Future[None]) -> None:
            writer.release()
            exc = None if fut.cancelled() else fut.exception()
            if exc is not None:  # the spool itself failed: nothing more can be recorded
                log.warning(
                    "nbtrack: run %s: git state and notebook snapshot not recorded: %s",
                    writer.run_id[:8],
                    exc,
                )

        writer.hold()
        ingest.background(gather).add_done_callback(done)

    def _start_previous(self) -> PreviousRuns | None:
        if self.key in self.session.last_by_cell or settings.parent_run():
            # In a pipeline's execution every cell runs once per kernel: its summary
            # names the notebook run rather than wait on a store busy with the
            # sweep's other executions (nbtrack diff compares them afterwards).
            return None
        return previous.for_notebook(self.project, self.session)

    # ---------------------------------------------------------------- data versions
    def _version(self, path: str, role: str, keep_bytes: bool = True) -> DataVersion | None:
        from .versioning import version_path

        try:
            os.stat(path)
        except OSError as exc:  # gone: a temporary file the cell removed again
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # past PATH_MAX
                self.warnings.append(f"could not version …{path[-80:]}: {exc.strerror}")
            return None
        limit = self.opts.max_blob_size
        cache = self.client.cache if self.opts.cache and keep_bytes else None
        while True:
            try:
                return version_path(
                    self.project,
                    path,
                    role,
                    cache=cache,
                    stat_cache=self.session.stat_cache(self.project),
                    max_blob_size=limit if limit is not None else settings.max_blob_size(),
                    save_stat_cache=False,  # once per cell, in the background (end)
                )
            except (OSError, NbtrackError) as exc:
                if cache is not None and _disk_full(exc):
                    # No room for a copy: the file is recorded by its hash alone, and
                    # the cell's one "no space left" line says so.
                    self._not_cached.append((path, exc))
                    cache = None
                    continue
                self.warnings.append(f"could not version {path}: {exc}")
                return None

    def _version_before_overwrite(self, path: str) -> None:
        v = self._version(path, "input", self.watcher.inside(path))
        if v is not None:
            self._early[path] = v

    def _data_versions(self) -> list[DataVersion]:
        versions, warnings = cellfiles.data_versions(
            self.watcher if self.opts.auto else None,
            self.opts.inputs,
            self.opts.outputs,
            self._early,
            self._version,
            self.project,
            self._shell,
        )
        self.warnings.extend(warnings)
        return versions

    # ---------------------------------------------------------------- the end
    def end(self, user_ns: dict[str, Any], error: BaseException | None) -> CellOutcome:
        filewatch.disarm(endparams.bound_values(self.flow, self.transformed, user_ns))
        tracking.set_active(None)
        # -- system metrics: peaks logged; the thread is woken to end after the reply
        sysmetrics.stop(self._system, after_reply)
        w = self.writer
        try:
            flagged = endparams.flagged(self.opts.params, self.reads, user_ns, self.warnings)
            held, self._held = self._held, {}
            if self.opts.auto:
                for src, chunk in endparams.at_end(
                    self.flow, self.transformed, user_ns, self.session.lineage, self.reads,
                    held, failed=error is not None, skip={*flagged, *self.opts.metrics},
                    warnings=self.warnings,
                ).items():  # fmt: skip
                    w.log_params(chunk, source=src)
            if flagged:
                w.log_params(flagged, source="flag")
            self._log_metric_vars(user_ns, error is None, stopped_at(error, user_ns))
            w.log_data(self._data_versions())
        finally:
            if error is None:
                w.finish("finished")
            else:
                w.finish("failed", self.session.error_text(error)[: tracking.ERROR_LIMIT])
            # Once the cell has replied, none of it before: the background threads
            # woken here would take the GIL from the cell's end.
            self.session.cell_replied(self._ended, self.session.stat_cache(self.project))
        try:
            self.session.lineage.after_cell(
                self.transformed,
                w.snapshot.execution_count,
                w.snapshot.cell_id,
                w.run_id,
                self.flow,
            )
            self.session.seeds.after_cell(self.transformed)
        except Exception as exc:
            self.warnings.append(f"could not note what the cell bound: {exc!r}")
        self._say_what_is_not_stored()
        previous = self._previous_run()
        run = w.snapshot
        files = self.session.file_writers  # (stale through a file an earlier run wrote)
        self.warnings += [f"stale input: {why}" for why in files.stale(run, self.reads)]
        files.note(run)
        remember_cell(self.session.last_by_cell, self.key, self.opts.name, _copy(run))
        d = diff_runs(previous, run) if previous is not None else None
        note = None
        if previous is None and settings.parent_run() and run.parent_id:
            note = f"part of notebook run {run.parent_id[:8]}"
        outcome = CellOutcome(run=run, previous=previous, diff=d, warnings=self.warnings, note=note)
        if d is not None and any(dc.role == "input" for dc in d.data):
            from .driftreport import alerts  # -- drift alerts on the inputs that changed

            outcome.alerts = alerts(self.client, previous, run)
        return outcome

    def _log_metric_vars(self, user_ns: dict[str, Any], finished: bool, line: int | None) -> None:
        """``-m``: a number, a dict (``report.f1``), numbers (a series, and its mean: folds)."""
        w = self.writer
        for var in self.opts.metrics:
            bound = var in self.flow.assigns
            skip = self._metric_vars.why_not(var, user_ns, bound, finished, line)
            if skip is not None:
                self.warnings.append(f"-m {var}: {skip}")
                continue
            scalars, series, why = metric_values(var, user_ns[var])
            scalars.update({f"{k}.mean": sum(p) / len(p) for k, p in series.items() if p})
            if why is not None:
                self.warnings.append(f"-m {var}: not a metric: {why}")
            try:
                if scalars:  # logged once, at the end: one spool record, no point log
                    w.log_metrics_once(scalars)
                for key, points in series.items():
                    for step, value in enumerate(points):
                        w.log_metric(key, value, step)
            except UsageError as exc:
                self.warnings.append(f"-m {var}: {exc}")

    def _say_what_is_not_stored(self) -> None:
        # One line under the cell, not a traceback: the user's code ran and its run is
        # kept (in memory, or in its spool) until the disk or the store lets it in.
        err = self.writer.disk_error
        problem: object = ingest.ingestor().problems.get(str(self.project.db_path))
        if problem is None and err is None:  # the store's ingestion process's, if any
            problem = ingestlink.problem(self.project.folder)
        uncached = ""
        if self._not_cached:
            names = ", ".join(self.project.relative(p)[0] for p, _ in self._not_cached[:3])
            more = len(self._not_cached) - 3
            uncached = f"{names}{f' and {more} more' if more > 0 else ''} recorded by hash only"
        if err is not None:
            self.warnings.append(
                f"{why_unwritable(err)}: it is kept in memory and stored as soon as it can be"
                + (f"; {uncached}" if uncached else "")
            )
        elif uncached:
            first = self._not_cached[0][1]
            why = first.strerror if isinstance(first, OSError) else None
            self.warnings.append(
                f"no space left to keep a copy of the cell's files ({why or first}): {uncached}"
            )
        elif problem is not None:
            self.warnings.append(
                f"runs are not in the store yet ({problem}); kept, stored once that is fixed"
            )

    def _previous_run(self) -> Run | None:
        memory, name = self.session.last_by_cell, self.opts.name
        return recall(memory, self.key, name, self._previous, self._cell_key, self.warnings)


def _disk_full(exc: BaseException | None) -> bool:
    while exc is not None:  # the cache may wrap the OSError in one of ours
        if isinstance(exc, OSError) and exc.errno in (*NO_SPACE, EROFS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _record_warnings(
    writer: tracking.RunWriter, warnings: dict[str, str], quiet: Collection[str] = ()
) -> None:
    """Log each background failure and keep it on the run, one line per tag. ``quiet``
    ones are only logged at debug level: a full disk, which the cell's one "no space
    left" line already says (and a tag could not be written anyway)."""
    lines = {what: " ".join(message.split()) for what, message in warnings.items()}
    for what, line in lines.items():
        (log.debug if what in quiet else log.warning)(
            "nbtrack: run %s: %s", writer.run_id[:8], line
        )
    tags = {warning_tag(what): line for what, line in lines.items() if what not in quiet}
    if tags:
        writer.set_tags(tags)


def _copy(run: Run) -> Run:
    return replace(
        run,
        params=dict(run.params),
        param_sources=dict(run.param_sources),
        metrics=dict(run.metrics),
        data=list(run.data),
        tags=dict(run.tags),
        named_inputs=list(run.named_inputs),
    )
