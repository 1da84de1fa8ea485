"""The jupyter_server extension: the REST API under ``<base_url>/nbtrack/api/``.

``nbtrack/__init__.py`` points Jupyter here through ``_jupyter_server_extension_points``;
the handlers (and with them DuckDB and the core) are imported only when the server
loads the extension, so ``import nbtrack`` in a kernel stays light.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Let ``jpserver_extensions`` name ``nbtrack.server`` directly as well as ``nbtrack``."""
    return [{"module": "nbtrack.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the nbtrack routes on the running Jupyter server."""
    from nbtrack.server.routes import setup_routes

    setup_routes(server_app)
    server_app.log.info("nbtrack: REST API registered under %snbtrack/api/", server_app.base_url)


# jupyter_server < 2 looked for this name.
load_jupyter_server_extension = _load_jupyter_server_extension
