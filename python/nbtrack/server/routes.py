"""The one route table of the REST API (documented in docs/openapi.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join

from nbtrack.server import handlers, viewhandlers
from nbtrack.server.jobs import RerunJobs
from nbtrack.server.stores import StoreLocator

#: A run reference: a full id, a unique prefix or "last" (validated by the client).
_REF = r"(?P<ref>[^/]+)"
#: A content hash (``xxh128:<hex>``; routes match the raw path, so ``:`` may come as
#: ``%3A``): nothing else names a blob, so no path reaches the disk.
_DIGEST = r"(?P<digest>[a-z0-9]+(?::|%3[aA])[0-9a-f]{8,128})"
#: A model name and an alias (validated by the registry).
_MODEL = r"(?P<name>[^/]+)"
_ALIAS = r"(?P<alias>[^/]+)"

ROUTES: list[tuple[str, type[handlers.NbtrackHandler]]] = [
    ("status", handlers.StatusHandler),
    ("runs", handlers.RunsHandler),
    (f"runs/{_REF}", handlers.RunHandler),
    (f"runs/{_REF}/metrics", handlers.RunMetricsHandler),
    (f"runs/{_REF}/rerun", handlers.RerunHandler),
    ("diff", handlers.DiffHandler),
    ("compare", handlers.CompareHandler),
    (r"jobs/(?P<job_id>[0-9a-f]+)", handlers.JobHandler),
    (f"runs/{_REF}/lineage", viewhandlers.RunLineageHandler),
    (f"runs/{_REF}/images", viewhandlers.RunImagesHandler),
    (f"runs/{_REF}/images/{_DIGEST}", viewhandlers.RunImageHandler),
    ("models", viewhandlers.ModelsHandler),
    (f"models/{_MODEL}", viewhandlers.ModelHandler),
    (f"models/{_MODEL}/aliases/{_ALIAS}", viewhandlers.ModelAliasHandler),
    ("drift", viewhandlers.DriftHandler),
]


def setup_routes(server_app: Any) -> None:
    """Add the nbtrack handlers under ``<base_url>/nbtrack/api/`` to the server's web app."""
    web_app = server_app.web_app
    web_app.settings["nbtrack_locator"] = StoreLocator(Path(server_app.root_dir))
    web_app.settings["nbtrack_jobs"] = RerunJobs()
    prefix = url_path_join(web_app.settings["base_url"], "nbtrack", "api")
    web_app.add_handlers(
        ".*$", [(url_path_join(prefix, pattern) + "/?$", handler) for pattern, handler in ROUTES]
    )
