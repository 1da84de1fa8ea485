"""The spool folder of a store: which spools are there, whose, and bringing them in.

``scan`` says of each spool who wrote it, whether its run ended and whether its
writer is dead (or sealed it: done with it); ``ingest`` brings spools into the
store, reading each from the
positions the store holds for its run inside the write transaction, so the run's
own process, a reader catching up and recovery after a death may all do it at once
and every record is stored once. The format of one spool is in ``spool.py``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .exceptions import StoreError
from .leftovers import remove_if_abandoned
from .models import Batch
from .spool import EVENT, FRAME, SEALED, points_path, read_spool, start_ticks

UNREADABLE_GRACE = 60.0  # seconds before a spool without a readable header counts as dead
# A reader brings in runs that ended (or whose writer died) before it reads, so a run
# is visible the moment its cell returns; but at most this many metric points and
# this long per call, so a reader never spends long on another process's backlog.
READ_SLICE_POINTS = 100_000
READ_SLICE_SECONDS = 0.1
SLICE_RUNS = 500  # runs per ingestion transaction


def owner_alive(header: dict[str, Any] | None) -> bool:
    """Whether the process that wrote a spool still runs (pid reuse is ruled out)."""
    if not header:
        return False
    if header.get("host") != socket.gethostname():
        return True  # another machine on a shared folder: not ours to judge
    import psutil  # here, not at the top: a command that finds no spool never needs it

    try:
        proc = psutil.Process(int(header["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, and its parent (a Jupyter server) has not reaped it yet
        ticks = header.get("pid_ticks")
        if isinstance(ticks, int) and (now := start_ticks(proc.pid)) is not None:
            return now == ticks  # immune to the wall clock being set or a resume
        return abs(proc.create_time() - float(header["pid_start"])) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


@dataclass
class Spool:
    """One run's spool as a reader found it (see ``scan``)."""

    path: Path
    run_id: str
    header: dict[str, Any] | None
    ended: bool  # its end event is in the file
    dead: bool  # its writer is gone or sealed it: nothing more will be appended
    mtime: float
    writer_alive: bool = True  # its writing process still runs (``owner_alive``)


class RunSink(Protocol):
    """Where spooled runs go (the store)."""

    def ingest(
        self,
        run_ids: Sequence[str],
        build: Callable[[dict[str, tuple[int, int, str | None]]], list[Batch]],
        *,
        background: bool = False,
    ) -> None: ...


class Reader(RunSink, Protocol):
    """A store a reader catches up and reads in one turn."""

    def turn(self, *, checkpoint: bool = True) -> contextlib.AbstractContextManager[None]: ...

    def checkpoint(self) -> bool: ...


def _peek(path: Path) -> tuple[dict[str, Any] | None, bool, bool, float]:
    """``(header, ended, sealed, mtime)`` from frame heads only: a few reads, whatever
    the size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        size, pos = st.st_size, 0
        header: dict[str, Any] | None = None
        ended = sealed = False
        while pos + FRAME.size <= size:
            length, kind = FRAME.unpack(os.pread(fd, FRAME.size, pos))
            start = pos + FRAME.size
            if start + length > size:
                break
            if pos == 0 and kind == EVENT:
                with contextlib.suppress(ValueError):
                    ev = json.loads(os.pread(fd, length, start))
                    header = ev if ev.get("e") == "header" else None
            elif kind == EVENT and length >= len(_END):
                head = os.pread(fd, len(_END), start)
                if head == _END:
                    ended = True
                elif length == len(SEALED) and head == SEALED[: len(_END)]:
                    sealed = True
            pos = start + length
        return header, ended, sealed, st.st_mtime
    finally:
        os.close(fd)


_END = b'{"e": "end"'  # how json.dumps writes an end event's first key


def scan(spool_dir: Path) -> list[Spool]:
    """The spools in ``spool_dir``, oldest first; removes temporary files of dead writers."""
    try:
        names = os.listdir(spool_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []  # no spools yet, or `.nbtrack` is not a folder (the store says so)
    except PermissionError as exc:  # (another user's store, or a `chmod 000`)
        raise StoreError(f"cannot read {spool_dir}: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return []  # `.nbtrack` is a link that loops (the store says so)
    found = []
    alive: dict[tuple[Any, ...], bool] = {}  # one look per writing process, not per spool
    for name in names:
        path = spool_dir / name
        if name.startswith(".") and name.endswith(".tmp"):
            _remove_dead_tmp(path)
            continue
        if not name.endswith(".spool"):
            continue
        try:
            header, ended, sealed, mtime = _peek(path)
        except FileNotFoundError:
            continue
        if header is None and time.time() - mtime < UNREADABLE_GRACE:
            continue  # cannot tell whose it is yet: leave it to a later look
        who = (header.get("host"), header.get("pid"), header.get("pid_start")) if header else ()
        if who not in alive:
            alive[who] = owner_alive(header)
        # A sealed spool gets nothing more: like a dead writer's, it is removed once all in.
        dead = sealed or not alive[who]
        found.append(Spool(path, name[: -len(".spool")], header, ended, dead, mtime, alive[who]))
    found.sort(key=lambda sp: sp.mtime)
    return found


def _remove_dead_tmp(path: Path) -> None:
    # ".<run>.spool.<pid>.tmp": a writer killed (or out of space) while creating its spool.
    try:
        pid = int(path.name.rsplit(".", 2)[-2])
    except ValueError:
        return
    remove_if_abandoned(path, pid, UNREADABLE_GRACE)


def remove(path: Path) -> None:
    """Delete a fully ingested spool and its point log."""
    for p in (path, points_path(path)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def warm_up() -> None:
    """Load what reading a point log needs (numpy, Arrow, and pandas, which Arrow loads
    the first time it converts an array: ~1.5 s of CPU on a busy machine). Called before
    taking the store's turn, so nobody waits for a process's imports."""
    import numpy  # noqa: F401
    import pyarrow as pa

    pa.array(numpy.zeros(1))


def ingest(
    store: RunSink,
    spools: Sequence[Spool],
    *,
    max_points: int | None = None,
    max_seconds: float | None = None,
    background: bool = False,
    give_way: Callable[[], bool] | None = None,
) -> list[str]:
    """Bring ``spools`` into the store in one transaction; the ids of runs now all in.

    Each spool is read from the positions the store holds for its run, inside the
    transaction, so any number of processes may ingest the same spool at once and a
    record is stored exactly once. ``max_points`` bounds the points read and
    ``max_seconds`` the time spent reading (a slice); what is left is read by a later
    call. ``give_way`` (asked before each spool after the first) ends the slice early
    when it says yes: a background ingester stops reading the moment a reader queues
    for the store, stores what it read and passes the turn on, so the reader waits
    for one spool's reading and a short write, not a whole slice. A run whose writer died without an end
    becomes ``crashed``. Spools of dead writers and sealed spools are removed once
    all in; a live writer that did not seal its spool removes it itself.
    """
    if not spools:
        return []
    warm_up()
    complete: list[str] = []

    def build(positions: dict[str, tuple[int, int, str | None]]) -> list[Batch]:
        batches: list[Batch] = []
        budget = max_points
        complete.clear()
        stop_at = None if max_seconds is None else time.monotonic() + max_seconds
        for i, sp in enumerate(spools):
            if stop_at is not None and batches and time.monotonic() > stop_at:
                break
            if i and give_way is not None and give_way():
                break  # a reader waits: what is read so far is stored, the rest later
            offset, points, status = positions.get(sp.run_id, (0, 0, None))
            done = status not in (None, "running")
            try:
                batch, state = read_spool(
                    sp.path, sp.run_id, offset, points, final=sp.dead or done, limit=budget
                )
            except FileNotFoundError:
                # Another process brought it in and removed it (a spool is removed only
                # once all in): all in, or a caller would wait for it for ever.
                complete.append(sp.run_id)
                continue
            if budget is not None:
                budget = max(0, budget - state["points"])
            if batch.run is None and status is None:
                if not sp.dead:
                    continue
                if not (state["damaged"] or state["torn"]):
                    complete.append(sp.run_id)  # died before its first record: nothing to keep
                    continue
                batch.run = _unnamed_run(sp)  # its first record lost, not the rest
            if sp.dead and not state["ended"] and status in (None, "running"):
                pid = sp.header.get("pid") if sp.header else "?"
                batch.update.update(
                    status="crashed",
                    error=f"the process recording this run (pid {pid}) died before the run finished"
                    + _damage(state),
                    ended_at=datetime.fromtimestamp(sp.mtime, timezone.utc).replace(tzinfo=None),
                )
            if not state["more"]:
                complete.append(sp.run_id)
            if (batch.spool_offset or 0) > offset or batch.points_offset != points or batch.update:
                batches.append(batch)  # else nothing new: no write (updated_at stays)
        return batches

    store.ingest([sp.run_id for sp in spools], build, background=background)
    for sp in spools:
        if sp.dead and sp.run_id in complete:
            remove(sp.path)
    return list(complete)


def _damage(state: dict[str, Any]) -> str:
    records, torn = state["damaged"], state["torn"]
    said = f"; {records} damaged spool records skipped" if records else ""
    return said + ("; its spool was cut short in a record" if torn else "")


def _unnamed_run(sp: Spool) -> dict[str, Any]:
    """The row of a dead writer's run whose start record (name, code, environment) is
    damaged or cut short: what the spool's header says, so that the parameters, tags
    and points after it are kept, not removed with a spool taken for an empty one."""
    header = sp.header or {}
    return {
        "run_id": sp.run_id,
        "kind": "cell",
        "status": "running",
        "started_at": datetime.fromtimestamp(sp.mtime, timezone.utc).replace(tzinfo=None),
        "host": header.get("host"),
        "pid": header.get("pid"),
    }


def parent_of(sp: Spool) -> str | None:
    """The run ``sp``'s run is part of (a cell run's notebook run), as its start event
    says: the frame after the header, read alone (a whole spool may hold megabytes)."""
    try:
        with open(sp.path, "rb") as f:
            for _ in range(2):
                length, kind = FRAME.unpack(f.read(FRAME.size))
                payload = f.read(length)
        event = json.loads(payload) if kind == EVENT else None
        if isinstance(event, dict) and event.get("e") == "start":
            return (event.get("run") or {}).get("parent_id")
        batch, _ = read_spool(sp.path, sp.run_id, points=False)  # not where it should be
    except (OSError, ValueError, struct.error, AttributeError):
        return None  # gone (all in), or damaged
    return (batch.run or {}).get("parent_id")


def spooled_hashes(spool_dir: Path) -> set[str]:
    """Blob hashes named by spooled runs not yet in the store (gc keeps them)."""
    found: set[str] = set()
    for sp in scan(spool_dir):
        try:
            batch, _ = read_spool(sp.path, sp.run_id, points=False)
        except FileNotFoundError:
            continue
        found.update(d.hash for d in batch.data if d.hash)
        for key in ("notebook_hash", "code_hash"):
            value = batch.update.get(key) or (batch.run or {}).get(key)
            if value:
                found.add(str(value))
    return found
