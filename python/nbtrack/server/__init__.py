"""The jupyter_server extension: the REST API under ``<base_url>/nbtrack/api/``.

``nbtrack/__init__.py`` points Jupyter here through ``_jupyter_server_extension_points``;
the handlers (and with them DuckDB and the core) are imported only when the server
loads the extension, so ``import nbtrack`` in a kernel stays light.
"""

from __future__ import annotations

import threading
from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Let ``jpserver_extensions`` name ``nbtrack.server`` directly as well as ``nbtrack``."""
    return [{"module": "nbtrack.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the nbtrack routes on the running Jupyter server."""
    from nbtrack.server.routes import setup_routes

    setup_routes(server_app)
    _stop_store_access_on_stop(server_app)
    # The first catch-up of a request loads numpy, Arrow and pandas (seconds on a busy
    # machine): load them now, not while a request waits.
    threading.Thread(target=_warm_up, name="nbtrack-warm-up", daemon=True).start()
    server_app.log.info("nbtrack: REST API registered under %snbtrack/api/", server_app.base_url)


def _stop_store_access_on_stop(server_app: Any) -> None:
    """On SIGTERM (or any stop), store calls still waiting for their turn give up at
    once and running queries are interrupted: the server's request threads are joined
    at exit, and one waiting for a busy store held the exit up for the lock timeout."""
    stop = server_app.stop

    def stopping(*args: Any, **kwargs: Any) -> None:
        from nbtrack.client import stop_store_access

        stop_store_access()
        stop(*args, **kwargs)

    server_app.stop = stopping


def _warm_up() -> None:
    from nbtrack import spools

    spools.warm_up()


# jupyter_server < 2 looked for this name.
load_jupyter_server_extension = _load_jupyter_server_extension
