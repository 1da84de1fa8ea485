"""What a reader brings in before it reads, and what ``recover`` brings in whole.

A reader (``reading``) brings in the runs that ended before it looked, so a run is
visible the moment its cell returns: its own process's itself, the others' handed
to the store's ingestion process when one runs (``hand_over``: it stores every
kernel's runs in one transaction), or else one bounded slice of them. ``recover``
(export, gc, push, doctor) needs every ended run in, and hands over the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import time
from collections.abc import Collection, Iterator
from pathlib import Path

from . import ingestlink
from .ingestlink import BATCH_DELAY
from .spool import wrote_here
from .spools import (
    READ_SLICE_POINTS,
    READ_SLICE_SECONDS,
    SLICE_RUNS,
    Reader,
    RunSink,
    Spool,
    ingest,
    parent_of,
    scan,
    warm_up,
)

# A reader that finds other processes' ended runs while the store's ingestion process
# runs asks it to hurry and waits this long for them (its round stores every kernel's
# runs in one transaction), polling every 2-20 ms; what is still out then, it brings
# in itself (the bounded slice above). More than HANDOFF_MAX of them is a backlog the
# process is working through (a storm of kernels): the reader leaves it all to the
# process and reads at once (a slice of it would not make its view whole either).
HANDOFF_WAIT = 0.5
HANDOFF_MAX = 20
HANDOFF_POLL = 0.002, 0.02
HANDOFF_PATIENCE = 60.0  # a process working that long on a backlog is left to it no more
BACKLOG_STALL = BATCH_DELAY + HANDOFF_WAIT  # nothing in nor CPU spent: stopped or hung
# Inside ``one_look``: False until its first read has caught up, then True.
_one_look: contextvars.ContextVar[bool | None] = contextvars.ContextVar("one_look", default=None)
MAX_RECOVER_SLICES = 10_000  # then what is left comes in whole (it always ends)


def ended(spool_dir: Path) -> list[Spool]:
    """The oldest spools of runs that ended (in any process) or whose writer died: what
    a reader brings in before it reads (read-your-writes); a run still going is left to
    its own process."""
    return [sp for sp in scan(spool_dir) if sp.dead or sp.ended]


def _own(sp: Spool) -> bool:
    """Whether this process wrote ``sp``."""
    header = sp.header or {}
    return header.get("pid") == os.getpid() and header.get("host") == socket.gethostname()


def to_catch_up(spool_dir: Path, folder: Path) -> list[Spool]:
    """The ended spools a reader of the store in ``folder`` brings in before it reads:
    its own, and those of other processes that the store's ingestion process, asked to
    hurry, did not bring in (``hand_over``; all of them when none runs; none
    when there are more than ``HANDOFF_MAX``: the process is working through them).

    Handing them over saves a reader that would write an attachment for writing, its
    inserts, a commit and a checkpoint (~0.2-0.5 s at load 5 for two runs); the
    process stores every kernel's runs in one transaction for all readers at once."""
    # A backlog is the process's work already: a reader only checks that it runs (a
    # probe), and does not hurry it (its hurried rounds queue in order, not behind readers).
    crowded = not wrote_here() and _count(spool_dir) > HANDOFF_MAX
    if crowded and ingestlink.hurry(folder, ingestlink.PROBE):
        return []  # all another's: no need to open each (~1 ms a spool at load 8)
    return hand_over(ended(spool_dir), folder)


def hand_over(todo: list[Spool], folder: Path, *, backlog: bool = True) -> list[Spool]:
    """Of ``todo``, what this process brings in itself, its ingestion modules loaded
    (before any turn: nobody waits on them): its own spools, and the others' unless the
    store's ingestion process, asked to hurry, brought them in (``_handed_in``).
    More than ``HANDOFF_MAX`` are its backlog, left to it when it runs (``backlog``) or
    else brought in here: the caller needs every one (``recover``)."""
    theirs = {sp.path for sp in todo if not _own(sp)}
    left = [sp for sp in todo if sp.path not in theirs]
    crowd = len(theirs) > HANDOFF_MAX  # hurried rounds queue in order, not behind readers
    if crowd and backlog:
        left = left if ingestlink.hurry(folder, ingestlink.PROBE) else todo
    elif theirs:
        seen = ingestlink.rounds(folder)  # before the hurry: see ``wait_in``
        handed = [sp for sp in todo if sp.path in theirs]
        # A hurried process starts a round at once; one only probed, within BATCH_DELAY.
        byte, stall = (ingestlink.PROBE, BACKLOG_STALL) if crowd else (ingestlink.HURRY, 0.0)
        if not ingestlink.hurry(folder, byte) or not _handed_in(handed, folder, seen, stall):
            left = [sp for sp in todo if sp.path.exists()]
    if left:
        warm_up()
    return left


def _handed_in(
    handed: list[Spool], folder: Path, seen: tuple[int, int] | None, stall: float
) -> bool:
    """``wait_in`` for as long as the ingestion process works, up to ``HANDOFF_PATIENCE``:
    it brings some of ``handed`` in, or spends CPU (one round may hold many runs in one
    transaction), at least once every ``stall`` seconds. A backlog comes in faster by
    its hands than by two processes taking turns at the store; one stopped or hung
    spends none, and then this process brings the rest in itself."""
    deadline = time.monotonic() + HANDOFF_PATIENCE
    cpu = ingestlink.cpu_seconds(folder)
    moved = time.monotonic()
    while not wait_in(handed, folder, seen, HANDOFF_WAIT):
        going = [sp for sp in handed if sp.path.exists()]
        now = ingestlink.cpu_seconds(folder)
        if len(going) < len(handed) or (now is not None and cpu is not None and now > cpu):
            moved = time.monotonic()
        if time.monotonic() - moved > stall or time.monotonic() > deadline:
            return False
        handed, cpu = going, now
    return True


def _count(spool_dir: Path) -> int:
    try:
        return sum(1 for name in os.listdir(spool_dir) if name.endswith(".spool"))
    except OSError:
        return 0


def wait_in(todo: list[Spool], folder: Path, seen: tuple[int, int] | None, timeout: float) -> bool:
    """Wait up to ``timeout`` for the ingestion process to bring ``todo`` in; whether it
    did. Either it removed them (all of a sealed spool is in), or a round that started
    after ``seen`` (its ``ingestlink.rounds`` before these were handed over) brought in
    everything it found: that round scanned the folder after these ended, and a spool
    still being finished (its writer gathering a last fact) is in as far as it ended."""
    deadline = time.monotonic() + timeout
    delay = HANDOFF_POLL[0]
    paths = [sp.path for sp in todo]
    while True:
        paths = [p for p in paths if os.path.exists(p)]
        if not paths:
            return True
        now = ingestlink.rounds(folder)
        if seen is not None and now is not None and now[1] > seen[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, HANDOFF_POLL[1])


def catch_up(store: RunSink, todo: list[Spool]) -> None:
    """A reader's catch-up: this process's own ended runs whole (what it wrote, it
    reads: a kernel's ``nbtrack.runs()`` right after its cells, however long the
    ingestion process's backlog), and one bounded slice of the others'."""
    own = [sp for sp in todo if _own(sp)]
    others = [sp for sp in todo if not _own(sp)][:SLICE_RUNS]
    if others:
        ingest(store, others, max_points=READ_SLICE_POINTS, max_seconds=READ_SLICE_SECONDS)
    for i in range(0, len(own), SLICE_RUNS):
        ingest(store, own[i : i + SLICE_RUNS])


@contextlib.contextmanager
def one_look() -> Iterator[None]:
    """Reads inside see the store as the first of them found it: a command's several
    reads (an export's runs, their cells, their rows) catch up once, not each (every
    catch-up may wait up to ``HANDOFF_WAIT`` for the ingestion process)."""
    token = _one_look.set(False)
    try:
        yield
    finally:
        _one_look.reset(token)


@contextlib.contextmanager
def reading(store: Reader, spool_dir: Path, folder: Path) -> Iterator[None]:
    """A reader's turn at the store (``folder`` is the store's): the ended spools it
    brings in (``to_catch_up``, ``catch_up``), then its read. The spool folder is looked
    at, and the modules ingestion needs are loaded, before the turn: nobody waits on them.

    While the store's ingestion process runs, what the catch-up wrote stays in DuckDB's
    write-ahead log when the turn ends, and the process checkpoints it in its next round:
    a checkpoint rewrites whole row groups and indexes (~50-80 ms of a 10,000-run store
    however few runs came in), the largest part of a read right after a stream of runs."""
    looked = _one_look.get()
    todo = [] if looked else to_catch_up(spool_dir, folder)
    if looked is False:
        _one_look.set(True)
    elsewhere = bool(todo) and ingestlink.hurry(folder, ingestlink.PROBE)
    try:
        with store.turn(checkpoint=not elsewhere):
            catch_up(store, todo)
            yield
    finally:
        if elsewhere and not ingestlink.hurry(folder, ingestlink.KICK):
            store.checkpoint()  # it left meanwhile: the log is not left behind


def recover(
    store: RunSink, spool_dir: Path, folder: Path, runs: Collection[str] | None = None
) -> list[str]:
    """Bring in, whole, every spooled run that ended or whose process died (marking
    those ``crashed``), in bounded slices, each its own turn (others get the store in
    between), or see the store's ingestion process (``folder`` is the store's) do it
    (``hand_over``); the ids brought in. With ``runs`` (ids or id prefixes), only the
    runs of dead processes, those runs and their cell runs: what an export of them
    needs, however long a backlog the ingestion process has of others' runs."""
    found = [sp for sp in scan(spool_dir) if (sp.dead or sp.ended) and _wanted(sp, runs)]
    todo = hand_over(found, folder, backlog=False)
    mine = {sp.path for sp in todo}
    done = [sp.run_id for sp in found if sp.path not in mine]  # the ingestion process's
    for _ in range(MAX_RECOVER_SLICES):
        if not todo:
            return done
        complete = set(
            ingest(
                store,
                todo[:SLICE_RUNS],
                max_points=READ_SLICE_POINTS,
                max_seconds=READ_SLICE_SECONDS,
            )
        )
        done.extend(sp.run_id for sp in todo if sp.run_id in complete)
        todo = [sp for sp in todo if sp.run_id not in complete]
    for i in range(0, len(todo), SLICE_RUNS):  # what the slices did not finish: whole
        done.extend(ingest(store, todo[i : i + SLICE_RUNS]))
    return done


def _wanted(sp: Spool, runs: Collection[str] | None) -> bool:
    if runs is None or not sp.writer_alive:
        return True
    prefixes = tuple(runs)
    return bool(prefixes) and (sp.run_id.startswith(prefixes) or _parent_in(sp, prefixes))


def _parent_in(sp: Spool, prefixes: tuple[str, ...]) -> bool:
    parent = parent_of(sp)
    return parent is not None and parent.startswith(prefixes)
