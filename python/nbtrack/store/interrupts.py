"""Ctrl-C stops a user's query: DuckDB runs it with the GIL released and never looks
at Python's signal flag, so a SIGINT to a process waiting in ``execute`` changed
nothing until the query ended (the thirteenth trial: ``nbtrack sql`` over a huge range,
Ctrl-C, still running a minute later, holding the store all that time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

T = TypeVar("T")

_POLL = 0.1  # how often the main thread looks for a Ctrl-C while the query runs


def interruptible(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """``work()`` (DuckDB calls on ``con``), stopped by Ctrl-C.

    On the main thread the work runs on a helper thread while the main thread waits in
    short joins, where Python delivers ``KeyboardInterrupt``; then ``con.interrupt()``
    stops DuckDB (the transaction rolls back), the helper ends, and the
    ``KeyboardInterrupt`` goes on to the caller. Elsewhere (a server's request thread)
    it runs as is: no signal reaches that thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return work()
    done: dict[str, Any] = {}
    # An Event, not Thread.join: a join that Ctrl-C interrupts may take the thread for
    # stopped (CPython 3.11), and the store was then detached under the running query.
    ended = threading.Event()

    def run() -> None:
        try:
            done["value"] = work()
        except BaseException as exc:  # handed to the caller's thread below
            done["error"] = exc
        finally:
            ended.set()

    threading.Thread(target=run, name="nbtrack-query", daemon=True).start()
    try:
        while not ended.wait(_POLL):
            pass
    except KeyboardInterrupt:
        con.interrupt()
        ended.wait()
        raise
    if "error" in done:
        raise done["error"]
    return done["value"]
