"""The per-run write-ahead spool: what a run logged is on disk before it is in DuckDB.

A run appends framed records to ``.nbtrack/spool/<run_id>.spool`` as they happen
and its metric points to ``<run_id>.points`` (``points.py``). Whoever ingests —
the run's own process, a reader catching up, recovery after the writer died —
reads both from the positions the store holds for the run, inside the write
transaction (``ingest``), so a record is stored once however many try. A torn last
record (killed mid-write) is ignored; a run whose writer died without an end
becomes ``crashed``.

A writer that is done appends a last ``sealed`` event once its run's end and every
fact gathered in the background are in the file: then whoever stored it all removes it.

Record: ``u32 length | u8 kind | payload``. Kind 1 is a JSON event; kind 2 a chunk
of metric points (written by older versions, and read still): ``u32 header length |
header JSON {"keys": [...]} | u32 n | key index u32[n] | step i64[n] | value f64[n] |
ts f64[n]``; kind 3 names point-log series, ``{"name": index}``, written before the
series' first point.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import threading
import weakref
from array import array
from datetime import datetime
from pathlib import Path
from typing import Any

from .models import Batch, DataVersion, Environment, NamedInput
from .points import put_back, read_points
from .validation import storable

EVENT = 1
METRICS = 2
KEYS = 3  # {"series name": index} for the point log, written before the series' first point
FRAME = struct.Struct("<IB")
SEALED = b'{"e": "sealed"}'  # the writer's last record (see ``SpoolWriter.seal``)
_U32 = struct.Struct("<I")
#: What decoding a damaged record raises (UnicodeDecodeError and JSONDecodeError are
#: ValueErrors; an event of the wrong shape is a KeyError, TypeError or AttributeError).
DAMAGE = (ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error)


_start_times: dict[int, tuple[float, int | None]] = {}


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux; else None).

    Unlike a start time on the wall clock (psutil's ``create_time`` adds the boot time,
    which moves when the clock is set or a suspended machine resumes), no clock jump
    moves it: with the pid, it names one process for as long as the machine is up.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # Fields after the command name (which may hold spaces and parentheses):
        # the state is field 3, the start time field 22.
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _own_start() -> tuple[float, int | None]:
    # Constant for a process, but psutil reads /proc each time: once per pid, not per run.
    pid = os.getpid()
    if pid not in _start_times:
        import psutil  # only a writer needs it: readers (the CLI) start faster without

        _start_times[pid] = psutil.Process(pid).create_time(), start_ticks(pid)
    return _start_times[pid]


_wrote = False  # whether this process ever started a spool (``wrote_here``)


def wrote_here() -> bool:
    """Whether this process ever started a spool: one that never did (a Jupyter server,
    ``nbtrack ls``) knows every spool is another process's without opening any."""
    return _wrote


class SpoolWriter:
    """Appends records to one run's spool file (thread-safe, one write call per record).

    A record that cannot be written (a full disk) is kept in memory, in order, and
    written by the next ``retry`` or record once there is room; a partly written
    record is cut off first, so the file only ever holds whole records.
    """

    def __init__(self, path: Path, run_id: str) -> None:
        global _wrote
        _wrote = True
        self.path = path
        self._forked = False
        _writers.add(self)
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._closed = False
        self._queued: list[bytes] = []
        self.error: OSError | None = None  # the last write that failed, while any is queued
        header = {
            "e": "header",
            "run_id": run_id,
            "pid": os.getpid(),
            "pid_start": _own_start()[0],  # the wall clock's, for readers without /proc
            "pid_ticks": _own_start()[1],
            "host": socket.gethostname(),
        }
        self._header = _frame(EVENT, json.dumps(header).encode())
        with self._lock:
            self._open()

    def _open(self) -> bool:
        # The file appears under its name with its header already in it: a process
        # recovering orphans never sees a spool it cannot attribute to a writer.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC
        try:
            try:
                fd = os.open(tmp, flags, 0o644)
            except FileNotFoundError:  # the folder's first spool (or it was removed)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, flags, 0o644)
        except OSError as exc:
            self.error = exc
            return False
        try:
            _write_all(fd, self._header)
            os.rename(tmp, self.path)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.error = exc
            return False
        self._fd, self._size = fd, len(self._header)
        return True

    def _append(self, frame: bytes) -> None:
        try:
            _write_all(self._fd, frame)
        except OSError:
            if not self._forked:  # (a child's size is stale: it would cut the parent's)
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)  # no torn record before the next one
            raise
        self._size += len(frame)

    def _flush_queue(self) -> bool:
        if self._fd < 0 and not self._open():
            return False
        try:
            while self._queued:
                self._append(self._queued[0])
                self._queued.pop(0)
        except OSError as exc:
            self.error = exc
            return False
        self.error = None
        return True

    def _write(self, kind: int, payload: bytes) -> None:
        frame = _frame(kind, payload)
        with self._lock:
            if self._closed:
                raise ValueError("spool is closed")
            self._queued.append(frame)
            self._flush_queue()

    def retry(self) -> bool:
        """Write what a full disk held back; True when nothing is left in memory."""
        with self._lock:
            if self._closed:  # never re-created once closed (its reader may have removed it)
                return not self._queued
            return self._flush_queue() if self._queued or self._fd < 0 else True

    @property
    def on_disk(self) -> bool:
        """Everything written so far is in the file."""
        return (self._fd >= 0 or self._closed) and not self._queued

    def keys(self, keys: dict[str, int]) -> None:
        self._write(KEYS, json.dumps(keys).encode())

    def event(self, event: dict[str, Any], **encoded: str) -> None:
        """Append ``event``; ``encoded`` adds fields already encoded as JSON, last (a
        run's environment, the same for every run of a process, is encoded once)."""
        text = json.dumps(event, default=str, allow_nan=True)
        if encoded:
            text = text[:-1] + "".join(f", {json.dumps(k)}: {v}" for k, v in encoded.items()) + "}"
        self._write(EVENT, text.encode())

    def seal(self) -> None:
        """The last record (its ingester then removes it); one deleted before is put back."""
        with self._lock:
            self._fd = put_back(self._fd, self.path, os.O_WRONLY | os.O_APPEND)
        self._write(EVENT, SEALED)

    def metrics_flat(self, flat: list[Any]) -> None:
        """Append points given flat (key, value, step, ts, key, ...) as one binary chunk."""
        if not flat:
            return
        names = flat[0::4]
        index = {k: i for i, k in enumerate(dict.fromkeys(names))}
        keys = array("I", map(index.__getitem__, names))
        values = array("d", flat[1::4])
        steps = array("q", flat[2::4])
        ts = array("d", flat[3::4])
        header = json.dumps({"keys": list(index)}).encode()
        payload = b"".join(
            (
                _U32.pack(len(header)),
                header,
                _U32.pack(len(names)),
                keys.tobytes(),
                steps.tobytes(),
                values.tobytes(),
                ts.tobytes(),
            )
        )
        self._write(METRICS, payload)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


_writers: weakref.WeakSet[SpoolWriter] = weakref.WeakSet()


def _after_fork() -> None:
    # A forked child appends to the parent's spool (O_APPEND: whole records) under a
    # lock of its own: the parent's may have been held by another thread at the fork.
    for w in list(_writers):
        w._lock, w._forked = threading.Lock(), True


os.register_at_fork(after_in_child=_after_fork)


def _frame(kind: int, payload: bytes) -> bytes:
    return FRAME.pack(len(payload), kind) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _decode_metrics(payload: bytes, batch: Batch) -> None:
    # Straight into Arrow columns: decoding a million points into Python lists held
    # the GIL for longer than logging them took, and the cell's loop waited for it.
    import pyarrow as pa

    (hlen,) = _U32.unpack_from(payload, 0)
    keys = _loads(payload[4 : 4 + hlen])["keys"]
    pos = 4 + hlen
    (n,) = _U32.unpack_from(payload, pos)
    pos += 4

    def column(kind: Any, width: int) -> Any:
        nonlocal pos
        # bytes() copies the slice into a fresh, aligned buffer Arrow can own.
        data = pa.py_buffer(bytes(payload[pos : pos + width * n]))
        pos += width * n
        return pa.Array.from_buffers(kind, n, [None, data])

    index = column(pa.uint32(), 4)
    names = pa.DictionaryArray.from_arrays(index, pa.array(keys, pa.string())).dictionary_decode()
    steps = column(pa.int64(), 8)
    values = column(pa.float64(), 8)
    ts = column(pa.float64(), 8)
    batch.metric_chunks.append(pa.table({"key": names, "step": steps, "value": values, "ts": ts}))


def _loads(payload: bytes) -> Any:
    """A record's JSON. One string no UTF-8 can carry stopped every reader of the store
    with a traceback, so records holding a surrogate escape are made storable (a
    non-BMP character is one too, so only those records pay for the walk)."""
    obj = json.loads(payload)
    return storable(obj) if b"\\ud" in payload else obj


_JSON_FRAME = re.compile(rb'[\x01\x03]\{"')  # a JSON record's kind and first byte


def _next_frame(data: bytes, pos: int) -> int | None:
    """Where the first whole JSON record at or after ``pos`` starts, or None (no JSON
    text holds a byte below 0x20: none is found inside a JSON record)."""
    for m in _JSON_FRAME.finditer(data, pos + FRAME.size - 1):
        at = m.start() - _U32.size
        end = at + FRAME.size + _U32.unpack_from(data, at)[0]
        with contextlib.suppress(ValueError):
            if end <= len(data) and json.loads(data[at + FRAME.size : end]) is not None:
                return at
    return None


def _apply_event(ev: dict[str, Any], batch: Batch, state: dict[str, Any]) -> None:
    kind = ev["e"]
    if kind == "header":
        return
    if kind == "start":
        run = dict(ev["run"])
        run["started_at"] = datetime.fromisoformat(run["started_at"])
        batch.run = run
        if ev.get("environment"):
            batch.environment = Environment.from_dict(ev["environment"])
    elif kind == "update":
        batch.update.update(ev["fields"])
    elif kind == "params":
        batch.params.extend((p[0], p[1], p[2], p[3], p[4]) for p in ev["params"])
    elif kind == "data":
        batch.data.extend(DataVersion.from_dict(d) for d in ev["data"])
    elif kind == "tags":
        batch.tags.update(ev["tags"])
    elif kind == "inputs":
        batch.named_inputs.extend(NamedInput.from_dict(d) for d in ev["inputs"])
    elif kind == "profiles":
        batch.profiles.update(ev["profiles"])
    elif kind == "end":
        batch.update.update(
            status=ev["status"],
            error=ev.get("error"),
            ended_at=datetime.fromisoformat(ev["ended_at"]),
        )
        state["ended"] = True


def points_path(spool_path: Path) -> Path:
    """The run's metric point log beside its spool (see ``points.py``)."""
    return spool_path.with_suffix(".points")


def read_spool(
    path: Path,
    run_id: str,
    offset: int = 0,
    points_offset: int = 0,
    *,
    final: bool = False,
    limit: int | None = None,
    points: bool = True,
) -> tuple[Batch, dict[str, Any]]:
    """What was spooled since ``(offset, points_offset)``, as one batch, and what was seen.

    ``offset`` is a record boundary of the event spool, ``points_offset`` a record
    index of the point log; the batch carries the new positions. ``final``: the
    writer is done or dead (also true once the run's end is read), so every complete
    point counts. ``limit`` bounds the points read (a bounded ingestion slice). A
    torn record at the end (its writer was killed mid-write) is left unread. The
    state says whether the run's end was read, how many points were, whether
    ``limit`` left ``more``, how many records were ``damaged`` and whether the last
    was ``torn``.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    batch = Batch(run_id=run_id)
    state: dict[str, Any] = {"ended": False, "points": 0, "more": False, "damaged": 0}
    names: dict[int, str] = {}
    pos = 0
    end = len(data)
    while pos + FRAME.size <= end:
        length, kind = FRAME.unpack_from(data, pos)
        start = pos + FRAME.size
        if start + length > end:
            after = _next_frame(data, start) if final else None
            if after is None:
                break  # the writer's last record, cut short
            state["damaged"] += pos >= offset  # a length no record has (a flipped bit)
            pos = after
            continue
        try:
            if kind == KEYS:  # series names are needed whatever was read before
                names.update((i, k) for k, i in _loads(data[start : start + length]).items())
            elif pos >= offset:
                payload = data[start : start + length]
                if kind == EVENT:
                    _apply_event(_loads(payload), batch, state)
                elif kind == METRICS:
                    _decode_metrics(payload, batch)
        except DAMAGE:
            # A damaged record (a bad sector, bytes written into the file by something
            # else) is skipped, the next frame read: it stopped every reader of the store.
            if kind == KEYS or pos >= offset:
                state["damaged"] += 1
        pos = start + length
    batch.spool_offset = max(offset, pos)
    state["torn"] = pos < end  # a record cut short at the end: its writer's last, or not yet whole
    if not points:
        return batch, state
    recs, batch.points_offset, state["more"] = read_points(
        points_path(path), points_offset, final=final or state["ended"], limit=limit
    )
    if len(recs):
        state["points"] = _add_points(batch, recs, names, points_offset)
    return batch, state


#: A spool with at most this many new points (a cell's ``-m`` metrics, a few logged
#: values) adds them to the batch as Python lists, which ``writes`` turns into one Arrow
#: table for all such runs: three Arrow arrays per spool cost more than its points.
SMALL_POINTS = 64


def _add_points(batch: Batch, recs: Any, names: dict[int, str], start: int) -> int:
    import numpy as np
    import pyarrow as pa

    index = recs["key"] - 1
    known = index < len(names)
    if not known.all():
        # A series named after the spool was read: its points wait for the next read.
        cut = int(np.flatnonzero(~known)[0])
        recs, index = recs[:cut], index[:cut]
        batch.points_offset = start + cut
    if len(recs) <= SMALL_POINTS:
        batch.metric_keys += [names[i] for i in index.tolist()]
        batch.metric_steps += recs["step"].tolist()
        batch.metric_values += recs["value"].tolist()
        batch.metric_ts += recs["ts"].tolist()
        return len(recs)
    keys = pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32)), pa.array([names[i] for i in range(len(names))])
    ).dictionary_decode()
    batch.metric_chunks.append(
        pa.table(
            {
                "key": keys,
                "step": pa.array(np.ascontiguousarray(recs["step"])),
                "value": pa.array(np.ascontiguousarray(recs["value"])),
                "ts": pa.array(np.ascontiguousarray(recs["ts"])),
            }
        )
    )
    return len(recs)
