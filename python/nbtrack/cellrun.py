"""One execution of a ``%%track`` cell, from its first line to its summary."""

from __future__ import annotations

import json
import logging
import os
import traceback
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import capture, filewatch, ingest, sysmetrics, tracking
from .client import Client
from .diff import RunDiff, diff_runs
from .exceptions import NbtrackError, UsageError
from .hashing import StatCache
from .models import DataVersion, Run
from .project import Project, resolve_project

log = logging.getLogger("nbtrack")

ENV_PARENT = "NBTRACK_PARENT_RUN"
ENV_PARAMS = "NBTRACK_PARAMS"
PAPERMILL_HEADER = "# Parameters"
ERROR_LIMIT = 20_000
PREVIOUS_WAIT = 3.0  # seconds the summary waits for the previous run of the cell


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


@dataclass
class CellOutcome:
    """What the summary under the cell shows."""

    run: Run
    previous: Run | None
    diff: RunDiff | None
    warnings: list[str]
    note: str | None = None  # said instead of the comparison when there is none
    alerts: list[str] = field(default_factory=list)  # inputs that drifted since the previous run


class KernelSession:
    """Per-kernel state: the session id, the papermill parent run, the last run of each cell."""

    def __init__(self, user_ns: dict[str, Any]) -> None:
        self.user_ns = user_ns
        self.session_id = uuid.uuid4().hex
        self._stat_caches: dict[Path, StatCache] = {}
        self.last_by_cell: dict[tuple[Any, ...], Run] = {}
        self.papermill_params: dict[str, Any] = {}
        self.parent_id: str | None = os.environ.get(ENV_PARENT) or None
        self._parent_writer: tracking.RunWriter | None = None
        self._ignored: list[str] | None = None
        env_params = os.environ.get(ENV_PARAMS)
        if env_params:
            try:
                self.papermill_params = dict(json.loads(env_params))
            except (ValueError, TypeError):
                log.warning("nbtrack: %s is not a JSON object; ignored", ENV_PARAMS)

    # ---------------------------------------------------------------- where
    def notebook_path(self) -> str | None:
        return capture.kernel_notebook_path(self.user_ns)

    def project(self) -> Project:
        nb = self.notebook_path()
        return resolve_project(Path(nb).parent if nb else None)

    def stat_cache(self, project: Project) -> StatCache:
        """One stat cache per store, persisted in its folder, loaded once per kernel."""
        cache = self._stat_caches.get(project.folder)
        if cache is None:
            cache = self._stat_caches[project.folder] = StatCache.for_folder(project.folder)
        return cache

    def ignored(self) -> list[str]:
        if self._ignored is None:
            self._ignored = filewatch.ignored_prefixes()
        return self._ignored

    # ---------------------------------------------------------------- papermill
    def saw_cell(self, source: str) -> None:
        """Notice papermill's injected-parameters cell when nbtrack did not launch it.

        papermill writes the injected values as a cell that starts with
        ``# Parameters``; its literal assignments are the execution's parameters,
        and a notebook run is opened to hold them and parent the cell runs.
        """
        if self.parent_id and self._parent_writer is None and os.environ.get(ENV_PARENT):
            return  # launched by nbtrack's pipelines: the parent already exists
        if not source.lstrip().startswith(PAPERMILL_HEADER):
            return
        values = capture.literal_assignments(source)
        if not values:
            return
        self.papermill_params.update(values)
        if self._parent_writer is None:
            nb = self.notebook_path()
            self._parent_writer = tracking.RunWriter.start(
                self.project(),
                kind="notebook",
                name=Path(nb).stem if nb else "papermill",
                params=values,
                param_source="papermill",
                notebook_path=nb,
                background=True,
            )
            self.parent_id = self._parent_writer.run_id
            import atexit

            atexit.register(self._finish_parent)
        else:
            self._parent_writer.log_params(values, source="papermill")

    def _finish_parent(self) -> None:
        if self._parent_writer is not None:
            self._parent_writer.finish("finished")
            ingest.ingestor().drain(10.0)


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
    ) -> None:
        self.session = session
        self.opts = opts
        self.source = source
        self.warnings: list[str] = []
        self.project = session.project()
        self.client = Client(self.project)
        nb = session.notebook_path()
        params: dict[str, Any] = dict(session.papermill_params)
        sources = dict.fromkeys(params, "papermill")
        if opts.auto:
            auto = capture.literal_assignments(transformed)
            params.update(auto)
            sources.update(dict.fromkeys(auto, "auto"))
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
        )
        for src in ("papermill", "auto"):
            chunk = {k: v for k, v in params.items() if sources[k] == src}
            if chunk:
                self.writer.log_params(chunk, source=src)
        if opts.tags:
            self.writer.set_tags(opts.tags)
        self.key = (self.writer.snapshot.notebook_path, cell_id or opts.name or source)
        self._context = self._start_context(nb, cell_id)
        self._previous = self._start_previous()
        self.watcher = filewatch.FileWatcher(
            self.project.root, self.project.folder, session.ignored()
        )
        self.watcher.before_overwrite = self._version_before_overwrite
        self._early: dict[str, DataVersion] = {}
        tracking.set_active(self.writer)
        if opts.auto:
            filewatch.arm(self.watcher)
        # -- system metrics (sysmetrics.py): sampled from here to the start of end()
        self._system = sysmetrics.start(self.writer, opts.system_interval)

    # ---------------------------------------------------------------- background facts
    def _start_context(self, nb: str | None, cell_id: str | None) -> Future[Any]:
        """Git state and the notebook snapshot, gathered while the cell runs."""
        writer, cache, root = self.writer, self.client.cache, self.project.root
        source = self.source

        def gather() -> None:
            fields: dict[str, Any] = dict(capture.git_state(Path(nb).parent if nb else root))
            if nb and os.path.isfile(nb):
                data = Path(nb).read_bytes()
                fields["notebook_hash"] = cache.put_bytes(data)
                found_id, matches = capture.match_cell(data, source, cell_id)
                fields["code_matches_notebook"] = matches
                if found_id and not cell_id:
                    fields["cell_id"] = found_id
            writer.update(**fields)

        writer.hold()
        fut = ingest.background(gather)
        fut.add_done_callback(lambda f: writer.release())
        return fut

    def _start_previous(self) -> Future[Any] | None:
        if self.key in self.session.last_by_cell or os.environ.get(ENV_PARENT):
            # In a pipeline's execution every cell runs once per kernel: its summary
            # names the notebook run rather than wait on a store busy with the
            # sweep's other executions (nbtrack diff compares them afterwards).
            return None
        if not self.project.db_path.exists():
            return None  # a new store: nothing ran before
        snap = self.writer.snapshot
        probe = Run(
            run_id=snap.run_id,
            notebook_path=snap.notebook_path,
            cell_id=snap.cell_id,
            name=snap.name,
            source=snap.source,
        )
        return ingest.background(self.client.previous_run, probe)

    # ---------------------------------------------------------------- data versions
    def _version(self, path: str, role: str) -> DataVersion | None:
        from .versioning import max_blob_size_from_env, version_path

        if not os.path.exists(path):
            return None  # a temporary file the cell removed again
        limit = self.opts.max_blob_size
        try:
            return version_path(
                self.project,
                path,
                role,
                cache=self.client.cache if self.opts.cache else None,
                stat_cache=self.session.stat_cache(self.project),
                max_blob_size=limit if limit is not None else max_blob_size_from_env(),
            )
        except (OSError, NbtrackError) as exc:
            self.warnings.append(f"could not version {path}: {exc}")
            return None

    def _version_before_overwrite(self, path: str) -> None:
        v = self._version(path, "input")
        if v is not None:
            self._early[path] = v

    def _data_versions(self) -> list[DataVersion]:
        out: dict[tuple[str, str], DataVersion] = {}
        reads = dict.fromkeys(self.watcher.reads)
        writes = dict.fromkeys(self.watcher.writes)
        for p in self.opts.inputs:
            reads[os.path.realpath(p)] = None
        for p in self.opts.outputs:
            writes[os.path.realpath(p)] = None
        for p in reads:
            v = self._early.get(p) or self._version(p, "input")
            if v is not None:
                out[(v.path, "input")] = v
        for p in writes:
            v = self._version(p, "output")
            if v is not None:
                out[(v.path, "output")] = v
        for p in [*self.opts.inputs, *self.opts.outputs]:
            if not os.path.exists(p):
                self.warnings.append(f"{p} does not exist, so it has no version")
        return list(out.values())

    # ---------------------------------------------------------------- the end
    def end(self, user_ns: dict[str, Any], error: BaseException | None) -> CellOutcome:
        sysmetrics.stop(self._system)  # -- system metrics: peaks logged, thread joined
        filewatch.disarm()
        tracking.set_active(None)
        w = self.writer
        try:
            flagged: dict[str, Any] = {}
            for var in self.opts.params:
                if var in user_ns:
                    flagged[var] = user_ns[var]
                else:
                    self.warnings.append(f"-p {var}: no variable {var!r} after the cell")
            if flagged:
                w.log_params(flagged, source="flag")
            for var in self.opts.metrics:
                if var not in user_ns:
                    self.warnings.append(f"-m {var}: no variable {var!r} after the cell")
                    continue
                try:
                    w.log_metric(var, user_ns[var])
                except UsageError as exc:
                    self.warnings.append(f"-m {var}: {exc}")
            w.log_data(self._data_versions())
        finally:
            if error is None:
                w.finish("finished")
            else:
                text = "".join(traceback.format_exception_only(type(error), error)).strip()
                w.finish("failed", text[:ERROR_LIMIT])
            ingest.ingestor().kick()
        previous = self._previous_run()
        run = w.snapshot
        self.session.last_by_cell[self.key] = _copy(run)
        d = diff_runs(previous, run) if previous is not None else None
        note = None
        if previous is None and os.environ.get(ENV_PARENT) and run.parent_id:
            note = f"part of notebook run {run.parent_id[:8]}"
        outcome = CellOutcome(run=run, previous=previous, diff=d, warnings=self.warnings, note=note)
        if d is not None and any(dc.role == "input" for dc in d.data):
            from .driftreport import alerts  # -- drift alerts on the inputs that changed

            outcome.alerts = alerts(self.client, previous, run)
        return outcome

    def _previous_run(self) -> Run | None:
        if self._previous is None:
            return self.session.last_by_cell.get(self.key)
        try:
            # The store may be busy with other writers; the summary waits a little.
            return self._previous.result(timeout=PREVIOUS_WAIT)
        except FutureTimeout:
            self.warnings.append("the previous run of this cell was not read in time")
        except Exception as exc:
            self.warnings.append(f"could not read the previous run: {exc}")
        return None


def _copy(run: Run) -> Run:
    return replace(
        run,
        params=dict(run.params),
        param_sources=dict(run.param_sources),
        metrics=dict(run.metrics),
        data=list(run.data),
        tags=dict(run.tags),
    )
