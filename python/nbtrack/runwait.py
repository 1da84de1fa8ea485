"""Waiting until a run is all in the store (``RunWriter.wait``: pipelines, tests).

Bounded when the run cannot be written: a disk that stays full, a read-only
``.nbtrack/``, a file where the spool folder belongs. Such a run stays in the writer's
memory, and ``wait()`` without a timeout looped on it for ever, silent (the thirteenth
trial: ``nbtrack sweep`` with ``.nbtrack/spool`` a file, its notebooks executed, the
command still there minutes later). It now gives up after the store's patience
(``NBTRACK_LOCK_TIMEOUT``) with one line saying why.
"""

from __future__ import annotations

import time
from typing import Protocol

from . import settings
from .exceptions import NbtrackError, StoreError, why_unwritable


class RunWriter(Protocol):
    """What the wait asks of ``tracking.RunWriter``."""

    run_id: str

    @property
    def finishing(self) -> bool: ...

    @property
    def disk_error(self) -> OSError | None: ...

    def ingest(self) -> bool: ...


def wait_stored(writer: RunWriter, timeout: float | None = None) -> None:
    """Block until everything ``writer`` logged so far is in DuckDB."""
    deadline = None if timeout is None else time.monotonic() + timeout
    unwritable_since: float | None = None
    while True:
        try:
            done = writer.ingest()
        except NbtrackError:
            if deadline is not None and time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        if done or not writer.finishing:
            return
        now = time.monotonic()
        if deadline is not None and now > deadline:
            raise NbtrackError(f"run {writer.run_id[:8]} is not all in the store yet")
        error = writer.disk_error
        if error is None:
            unwritable_since = None
        elif unwritable_since is None:
            unwritable_since = now
        elif deadline is None and now - unwritable_since > (patience := settings.lock_timeout()):
            raise StoreError(
                f"run {writer.run_id[:8]} could not be written for {patience:g} s and is not "
                f"in the store: {why_unwritable(error)}"
            )
        time.sleep(0.01)  # a background fact (git state) is still being gathered
