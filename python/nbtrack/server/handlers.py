"""HTTP handlers of the REST API: thin doors into the client.

Every verb is ``@tornado.web.authenticated``. Errors raised by the core
(``nbtrack.exceptions``) become ``{"error": {"type", "message"}}`` with the error's
``http_status`` here, in ``NbtrackHandler.write_error`` and nowhere else. Every call
into the store runs in a worker thread: DuckDB calls block, the event loop must not.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler

from nbtrack.exceptions import NbtrackError, RunNotFoundError, UsageError
from nbtrack.models import MAX_PAGE, RUN_KINDS, RUN_STATUSES
from nbtrack.server.jobs import RerunJobs
from nbtrack.server.stores import StoreLocator

if TYPE_CHECKING:
    from nbtrack.client import Client
    from nbtrack.project import Project

T = TypeVar("T")

#: Largest page the list route serves; the panel asks for 200 at a time.
#: Most runs one compare request may name.
MAX_COMPARE = 20
#: Fields of a run that the list view needs; the heavy ones (code, git diff,
#: packages, data versions) are left to ``GET runs/{id}``.
SUMMARY_FIELDS = (
    "run_id",
    "kind",
    "name",
    "status",
    "error",
    "started_at",
    "ended_at",
    "duration",
    "parent_id",
    "rerun_of",
    "rerun_verdict",
    "notebook_path",
    "cell_id",
    "execution_count",
    "params",
    "metrics",
    "tags",
)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


def run_summary(run_dict: dict[str, Any]) -> dict[str, Any]:
    """The list view of a run: its ``to_dict()`` less the heavy fields."""
    return {key: run_dict.get(key) for key in SUMMARY_FIELDS}


class NbtrackHandler(APIHandler):
    """Base of every nbtrack route: JSON in, JSON out, errors in one shape."""

    @property
    def locator(self) -> StoreLocator:
        """Finds the store of the notebook a request names."""
        locator: StoreLocator = self.settings["nbtrack_locator"]
        return locator

    @property
    def jobs(self) -> RerunJobs:
        """The server's background re-run jobs."""
        jobs: RerunJobs = self.settings["nbtrack_jobs"]
        return jobs

    async def in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking call (DuckDB, file hashing) off the event loop."""
        return await asyncio.to_thread(func, *args)

    def reply(self, payload: Any, status: int = 200) -> None:
        """Finish with ``payload`` as strict JSON (NaN is a bug upstream, not a number here)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, allow_nan=False))

    # ----- query parameters: a bad value is a UsageError, hence 400 -----
    def str_arg(self, name: str, default: str | None = None) -> str | None:
        """A text parameter; empty counts as absent."""
        value = self.get_query_argument(name, default=None)
        return value if value else default

    def int_arg(self, name: str, default: int, minimum: int, maximum: int) -> int:
        """An integer parameter within [minimum, maximum]."""
        raw = self.get_query_argument(name, default=None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise UsageError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def bool_arg(self, name: str, default: bool) -> bool:
        """A yes/no parameter (true/false, 1/0, yes/no)."""
        raw = self.get_query_argument(name, default=None)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise UsageError(f"{name} must be true or false, got {raw!r}")

    def choice_arg(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        """A parameter that must be one of ``choices``."""
        value = self.str_arg(name)
        if value is None:
            return default
        if value not in choices:
            raise UsageError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        return value

    def project(self) -> Project:
        """The project of the notebook named by the ``path`` parameter."""
        return self.locator.project_for(self.str_arg("path"))

    def client(self) -> Client:
        """A client over the requested store; 404 when that store has no run yet."""
        project = self.project()
        client = self.locator.client_for(project)
        if client is None:
            raise RunNotFoundError(f"no nbtrack store at {project.folder} yet: no run recorded")
        return client

    # ----- errors -----
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error, ours or the server's (403, 404 ...), as ``{"error": {...}}``."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, NbtrackError):
            status_code = exc.http_status
            error = {"type": type(exc).__name__, "message": str(exc)}
        elif isinstance(exc, tornado.web.HTTPError):
            reason = exc.reason or HTTPStatus(status_code).phrase
            error = {"type": reason.replace(" ", ""), "message": exc.log_message or reason}
        else:
            error = {
                "type": "InternalError",
                "message": "unexpected server error (see the server log)",
            }
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": error}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Expected errors (bad ids, bad queries) are one warning line, not a traceback."""
        if isinstance(value, NbtrackError) and value.http_status < 500:
            self.log.warning("%d %s: %s", value.http_status, self._request_summary(), value)
            return
        super().log_exception(typ, value, tb)


class StatusHandler(NbtrackHandler):
    """``GET status``: where the store is and a token that changes with its content."""

    @tornado.web.authenticated
    async def get(self) -> None:
        project = self.project()
        client = self.locator.client_for(project)
        token = await self.in_thread(client.change_token) if client is not None else ""
        self.reply(
            {
                "project_root": str(project.root),
                "project_path": self.locator.relative_to_root(project.root),
                "store_path": str(project.db_path),
                "exists": client is not None,
                "change_token": token,
                # Every build has the pipelines; the panel still reads the flag.
                "rerun_available": True,
            }
        )


class RunsHandler(NbtrackHandler):
    """``GET runs``: one page of runs, filtered and sorted by the store."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from nbtrack.models import RunQuery

        kind = self.choice_arg("kind", (*RUN_KINDS, "all"), "cell")
        query = RunQuery(
            where=self.str_arg("where"),
            text=self.str_arg("text"),
            sort=self.str_arg("sort", "started_at") or "started_at",
            descending=self.bool_arg("descending", True),
            limit=self.int_arg("limit", 50, 1, MAX_PAGE),
            offset=self.int_arg("offset", 0, 0, 2**62),
            kind=None if kind == "all" else kind,
            parent_id=self.str_arg("parent_id"),
            # A sweep's id: its notebook runs and their cell runs (``ls --parent SWEEP``).
            sweep=self.str_arg("sweep"),
            status=self.choice_arg("status", RUN_STATUSES, None),
        )
        project = self.project()
        if self.bool_arg("notebook", False):
            # Only the runs of the notebook named by ``path``, as its kernel recorded it.
            notebook = self.locator.recorded_notebook(project, self.str_arg("path"))
            query = dataclasses.replace(query, notebook_path=notebook)
        client = self.locator.client_for(project)
        if client is None:
            self.reply(
                {"runs": [], "total": 0, "param_keys": [], "metric_keys": [], **_paging(query)}
            )
            return
        # Built by DuckDB (as `ls --json`): a page of 10,000 runs took seconds as Python
        # objects and json.dumps, and the panel's grouping asks for several.
        chunks = await self.in_thread(
            lambda: client.list_runs_json(
                query, safe=True, fields=SUMMARY_FIELDS, extra=_paging(query)
            )
        )
        self.set_header("Content-Type", "application/json")
        for chunk in chunks:
            self.write(chunk)
        self.finish()


class RunHandler(NbtrackHandler):
    """``GET runs/{ref}``: everything about one run (and the cell runs of a notebook run)."""

    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        client = self.client()

        def load() -> dict[str, Any]:
            run = client.get_run(ref)
            payload = run.to_dict()
            if run.kind == "notebook":
                payload["children"] = [
                    run_summary(c.to_dict()) for c in client.children(run.run_id)
                ]
            return payload

        self.reply(await self.in_thread(load))


class RunMetricsHandler(NbtrackHandler):
    """``GET runs/{ref}/metrics``: the step series of a run's metrics."""

    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        client = self.client()
        keys_arg = self.str_arg("keys")
        keys = [k for k in keys_arg.split(",") if k] if keys_arg else None

        def load() -> dict[str, Any]:
            run_id = client.resolve(ref)
            series = client.metric_series(run_id, keys=keys)
            return {
                "run_id": run_id,
                "series": {
                    key: [_point_dict(point) for point in points] for key, points in series.items()
                },
            }

        self.reply(await self.in_thread(load))


class DiffHandler(NbtrackHandler):
    """``GET diff?a=&b=``: what differs between two runs."""

    @tornado.web.authenticated
    async def get(self) -> None:
        a, b = self.str_arg("a"), self.str_arg("b")
        if a is None or b is None:
            raise UsageError("diff needs two runs: ?a=RUN&b=RUN")
        show_all = self.bool_arg("all", False)
        client = self.client()

        def load() -> dict[str, Any]:
            # The diff resolves both references itself; resolving here too would
            # cost two more store connections.
            diff = client.diff(a, b, all=show_all)
            return {"a": diff.a, "b": diff.b, "diff": diff.to_dict()}

        self.reply(await self.in_thread(load))


class CompareHandler(NbtrackHandler):
    """``GET compare?ids=a,b,c``: several runs side by side, each diffed against the first (the baseline)."""

    @tornado.web.authenticated
    async def get(self) -> None:
        ids_arg = self.str_arg("ids") or ""
        refs = [ref for ref in ids_arg.split(",") if ref]
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise UsageError(f"compare needs 2 to {MAX_COMPARE} runs: ?ids=RUN,RUN[,RUN...]")
        show_all = self.bool_arg("all", False)
        client = self.client()

        self.reply(await self.in_thread(lambda: client.compare(refs, all=show_all)))


class RerunHandler(NbtrackHandler):
    """``POST runs/{ref}/rerun``: start re-running a run; 202 with the job at once.

    The re-run is planned here (run found, notebook snapshot readable), so what makes
    it impossible comes back as an error now; only the execution runs in the background.
    """

    @tornado.web.authenticated
    async def post(self, ref: str) -> None:
        from nbtrack.pipelines import rerun

        client = self.client()
        store = client.project.db_path
        run_id = await self.in_thread(client.resolve, ref)
        job = self.jobs.active(store, run_id)
        created = False
        if job is None:
            plan = await self.in_thread(rerun.plan_rerun, client, run_id)
            job, created = self.jobs.submit(
                store, run_id, lambda: rerun.execute_plan(client.project, plan)
            )
        self.reply({**job.to_dict(), "created": created}, status=202)


class JobHandler(NbtrackHandler):
    """``GET jobs/{id}``: the state of a re-run job (and its outcome when done)."""

    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            raise tornado.web.HTTPError(404, f"no re-run job {job_id!r}", reason="Not Found")
        self.reply(job.to_dict())


def _paging(query: Any) -> dict[str, int]:
    return {"limit": query.limit, "offset": query.offset}


def _point_dict(point: Any) -> dict[str, Any]:
    if hasattr(point, "to_dict"):
        as_dict: dict[str, Any] = point.to_dict()
        return as_dict
    return {"step": point.step, "value": point.value, "ts": point.ts}
