"""The per-run write-ahead spool: what a run logged is on disk before it is in DuckDB.

A run appends framed records to ``.nbtrack/spool/<run_id>.spool`` as they happen;
a background thread ingests them into the store. If the writing process dies, the
next process that opens the store ingests what was spooled and marks the run
``crashed``. A torn last record (killed mid-write) is ignored.

Record: ``u32 length | u8 kind | payload``. Kind 1 is a JSON event; kind 2 a chunk
of metric points: ``u32 header length | header JSON {"keys": [...]} | u32 n |
key index u32[n] | step i64[n] | value f64[n] | ts f64[n]``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import struct
import threading
import time
from array import array
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import psutil

from .models import Batch, DataVersion, Environment, NamedInput

UNREADABLE_GRACE = 60.0  # seconds before a spool without a readable header counts as dead
EVENT = 1
METRICS = 2
_FRAME = struct.Struct("<IB")
_U32 = struct.Struct("<I")


_start_times: dict[int, float] = {}


def _own_start_time() -> float:
    # Constant for a process, but psutil reads /proc each time: once per pid, not per run.
    pid = os.getpid()
    if pid not in _start_times:
        _start_times[pid] = psutil.Process(pid).create_time()
    return _start_times[pid]


class SpoolWriter:
    """Appends records to one run's spool file (thread-safe, one write call per record)."""

    def __init__(self, path: Path, run_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # The file appears under its name with its header already in it: a process
        # recovering orphans never sees a spool it cannot attribute to a writer.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        self.event(
            {
                "e": "header",
                "run_id": run_id,
                "pid": os.getpid(),
                "pid_start": _own_start_time(),
                "host": socket.gethostname(),
            }
        )
        os.rename(tmp, path)

    def _write(self, kind: int, payload: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                raise ValueError("spool is closed")
            os.write(self._fd, _FRAME.pack(len(payload), kind) + payload)

    def event(self, event: dict[str, Any]) -> None:
        self._write(EVENT, json.dumps(event, default=str, allow_nan=True).encode())

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
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _decode_metrics(payload: bytes, batch: Batch) -> None:
    # Straight into Arrow columns: decoding a million points into Python lists held
    # the GIL for longer than logging them took, and the cell's loop waited for it.
    import pyarrow as pa

    (hlen,) = _U32.unpack_from(payload, 0)
    keys = json.loads(payload[4 : 4 + hlen])["keys"]
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


def read_spool(path: Path, run_id: str, offset: int = 0) -> tuple[Batch, int, dict[str, Any]]:
    """Everything spooled from ``offset`` on, as one batch; the new offset; what was seen.

    ``offset`` is always a record boundary this module produced. A torn record at
    the end (its writer was killed mid-write) is left unread.
    """
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    batch = Batch(run_id=run_id)
    state: dict[str, Any] = {"ended": False}
    pos = 0
    end = len(data)
    while pos + _FRAME.size <= end:
        length, kind = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        if start + length > end:
            break
        payload = data[start : start + length]
        if kind == EVENT:
            _apply_event(json.loads(payload), batch, state)
        elif kind == METRICS:
            _decode_metrics(payload, batch)
        pos = start + length
    batch.spool_offset = offset + pos
    return batch, offset + pos, state


def owner_alive(header: dict[str, Any] | None) -> bool:
    """Whether the process that wrote a spool still runs (pid reuse is ruled out)."""
    if not header:
        return False
    if header.get("host") != socket.gethostname():
        return True  # another machine on a shared folder: not ours to judge
    try:
        proc = psutil.Process(int(header["pid"]))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False  # killed, and its parent (a Jupyter server) has not reaped it yet
        return abs(proc.create_time() - float(header["pid_start"])) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return False


def _header_of(path: Path) -> dict[str, Any] | None:
    with open(path, "rb") as fh:
        head = fh.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return None
        length, kind = _FRAME.unpack(head)
        payload = fh.read(length)
    if kind != EVENT or len(payload) < length:
        return None
    ev = json.loads(payload)
    return ev if ev.get("e") == "header" else None


class RunSink(Protocol):
    """Where recovered runs go (the store)."""

    def run_state(self, run_id: str) -> tuple[int, str | None]: ...

    def write(self, batches: Sequence[Batch]) -> None: ...


def recover_orphans(store: RunSink, spool_dir: Path) -> list[str]:
    """Ingest the spools of dead processes; runs left without an end become ``crashed``.

    Safe to call from many processes at once: a spool is recovered under an
    exclusive lock on the file, and only once.
    """
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return []
    recovered = []
    for name in names:
        if not name.endswith(".spool"):
            continue
        path = spool_dir / name
        try:
            header = _header_of(path)
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        if header is None and age < UNREADABLE_GRACE:
            continue  # cannot tell whose it is yet: leave it to a later look
        if owner_alive(header):
            continue
        run_id = name[: -len(".spool")]
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if os.fstat(fd).st_nlink == 0:
                continue  # another process recovered it while we waited
            offset, status = store.run_state(run_id)
            batch, _, state = read_spool(path, run_id, offset)
            if batch.run is None and status is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # died before its first record: nothing to keep
                continue
            if not state["ended"] and status in (None, "running"):
                pid = header.get("pid") if header else "?"
                batch.update.update(
                    status="crashed",
                    error=f"the process running this cell (pid {pid}) died before it finished",
                    ended_at=datetime.fromtimestamp(os.fstat(fd).st_mtime, timezone.utc).replace(
                        tzinfo=None
                    ),
                )
            store.write([batch])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            recovered.append(run_id)
        finally:
            os.close(fd)
    return recovered
