"""Content hashes of files and bytes, and the stat cache that makes re-checks cheap.

The hash (documented in docs/data.md, "How a file is hashed"):

* content of at most ``CHUNK_SIZE`` (4 MiB) bytes: ``xxh3:`` + the plain XXH3-128 of
  the content (seed 0), the same value ``xxhsum -H2`` prints;
* longer content: split into ``CHUNK_SIZE`` chunks, XXH3-128 of each chunk (16-byte
  canonical digests), then ``xxh3:`` + XXH3-128 of the concatenated chunk digests
  with the content length as seed. The seed keeps the two forms apart.

Chunks are hashed on ``HASH_THREADS`` threads: ``xxhash`` releases the GIL while it
hashes a buffer and ``os.preadv`` releases it while it reads, so two threads read and
hash two chunks at once. A 4 MiB buffer per thread stays in the CPU caches, which
measured faster here than larger chunks or an mmap of the whole file.

The stat cache remembers ``path -> (inode, size, mtime_ns, hash)`` in a small JSON
file under ``.nbtrack/`` (never in runs.duckdb: only one process may open that).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

PREFIX = "xxh3:"
CHUNK_SIZE = 4 << 20
HASH_THREADS = 2

# A file whose mtime is this close to "now" may still be written within the same
# filesystem timestamp tick, so an unchanged stat would not prove unchanged bytes
# ("racily clean" in git's words). Such hashes are used but not remembered.
RACY_WINDOW_NS = 100_000_000

STAT_CACHE_FORMAT = 1
RELOAD_INTERVAL = 1.0


@dataclass(frozen=True)
class FileHash:
    """The hash of one file with the stat it was computed for."""

    hash: str
    size: int
    mtime_ns: int
    inode: int


def _combine(chunk_digests: list[bytes], total_size: int) -> str:
    if total_size <= CHUNK_SIZE:
        return PREFIX + chunk_digests[0].hex() if chunk_digests else hash_bytes(b"")
    return PREFIX + xxhash.xxh3_128_hexdigest(b"".join(chunk_digests), seed=total_size)


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hash in-memory content the same way a file with that content hashes.

    >>> hash_bytes(b"")
    'xxh3:99aa06d3014798d86001c324468d497f'
    """
    view = memoryview(data).cast("B")
    size = view.nbytes
    if size <= CHUNK_SIZE:
        return PREFIX + xxhash.xxh3_128_hexdigest(view)
    digests = [xxhash.xxh3_128_digest(view[o : o + CHUNK_SIZE]) for o in range(0, size, CHUNK_SIZE)]
    return _combine(digests, size)


class HashStream:
    """Incremental form of the hash, for content produced piece by piece.

    >>> s = HashStream(); s.update(b"ab"); s.update(b"c"); s.hexdigest() == hash_bytes(b"abc")
    True
    """

    def __init__(self) -> None:
        self._pending = xxhash.xxh3_128()
        self._pending_size = 0
        self._digests: list[bytes] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.size += view.nbytes
        while view.nbytes:
            take = min(CHUNK_SIZE - self._pending_size, view.nbytes)
            self._pending.update(view[:take])
            self._pending_size += take
            view = view[take:]
            if self._pending_size == CHUNK_SIZE:
                self._digests.append(self._pending.digest())
                self._pending = xxhash.xxh3_128()
                self._pending_size = 0

    def hexdigest(self) -> str:
        """The ``xxh3:...`` hash of everything passed to :meth:`update`."""
        digests = list(self._digests)
        if self._pending_size or not digests:
            digests.append(self._pending.digest())
        return _combine(digests, self.size)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _thread_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        # A forked child inherits the pool object but not its threads: work sent to
        # it would wait forever, so a new process makes its own pool.
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="nbtrack-hash")
            _pool_pid = os.getpid()
        return _pool


_buffers = threading.local()


def _chunk_buffer() -> bytearray:
    buf: bytearray | None = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(CHUNK_SIZE)
    return buf


def hash_fd(
    fd: int,
    size: int,
    on_chunk: Callable[[int, memoryview], None] | None = None,
) -> str:
    """Hash ``size`` bytes of an open file descriptor, chunks on two threads.

    ``on_chunk(offset, data)`` is called from the hashing thread with the exact bytes
    that were hashed (the cache writes them to its temporary blob, so what is stored
    is what was hashed). Raises ``OSError`` if the file is shorter than ``size``.
    """

    def read_chunk(offset: int) -> bytes:
        want = min(CHUNK_SIZE, size - offset)
        buf = _chunk_buffer()
        view = memoryview(buf)[:want]
        got = 0
        while got < want:
            n = os.preadv(fd, [view[got:]], offset + got)
            if n == 0:
                raise OSError(f"file shrank while it was read (at byte {offset + got})")
            got += n
        digest = xxhash.xxh3_128_digest(view)
        if on_chunk is not None:
            on_chunk(offset, view)
        return digest

    if size <= CHUNK_SIZE:
        digests = [read_chunk(0)] if size else []
    else:
        digests = list(_thread_pool().map(read_chunk, range(0, size, CHUNK_SIZE)))
    return _combine(digests, size)


def hash_regular(path: str | os.PathLike[str]) -> str | None:
    """The hash of the regular file at ``path`` (a link followed), or None when
    something else is there: a folder, a link to itself or to nowhere. Raises
    ``FileNotFoundError`` when nothing is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) or os.path.lexists(path):
            return None
        raise
    try:
        st = os.fstat(fd)
        return hash_fd(fd, st.st_size) if stat.S_ISREG(st.st_mode) else None
    finally:
        os.close(fd)


def hash_file(path: str | os.PathLike[str]) -> str:
    """Full-content hash of one file, streamed (memory use: one chunk per thread)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return hash_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def is_racy(st: os.stat_result, now_ns: int | None = None) -> bool:
    """True when a write in the same timestamp tick could leave this stat unchanged."""
    now = time.time_ns() if now_ns is None else now_ns
    return now - st.st_mtime_ns < RACY_WINDOW_NS


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class StatCache:
    """Remembers hashes by (path, inode, size, mtime) so an unchanged file is not re-read.

    With a ``path`` the entries persist across processes in that JSON file. Saving
    merges with what other processes saved meanwhile (under an ``flock``) and
    replaces the file atomically, so readers never see half a file; losing a race
    only costs a re-hash, never a wrong hash, because every entry is checked
    against the file's current stat before it is used.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, list[Any]] = {}
        self._dirty: dict[str, list[Any]] = {}
        self._loaded_stamp: tuple[int, int] | None = None
        self._loaded = self.path is None
        self._checked_at = 0.0

    @classmethod
    def for_folder(cls, folder: str | os.PathLike[str]) -> StatCache:
        """The stat cache of a store folder (``.nbtrack/``)."""
        return cls(Path(folder) / "statcache.json")

    # -- persistence -------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _read_file(self) -> dict[str, list[Any]]:
        assert self.path is not None
        try:
            raw = json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        if not isinstance(raw, dict) or raw.get("format") != STAT_CACHE_FORMAT:
            return {}
        entries = raw.get("entries", {})
        # Values stay the JSON lists [inode, size, mtime_ns, hash]: converting ten
        # thousand of them to tuples would cost more than the whole re-check.
        return entries if isinstance(entries, dict) else {}

    def _load(self) -> None:
        if self.path is None:
            return
        stamp = self._file_stamp()
        if self._loaded and stamp == self._loaded_stamp:
            return
        self._entries = self._read_file()
        self._entries.update(self._dirty)
        self._loaded_stamp = stamp
        self._loaded = True

    def save(self) -> None:
        """Persist the entries learnt since the last save (no-op without a path)."""
        if self.path is None or not self._dirty:
            return
        # Taken first: a kernel saves on its helper thread while the next cell may
        # already remember new entries (they wait for the next save).
        dirty, self._dirty = self._dirty, {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(self.path.with_name(self.path.name + ".lock")):
                merged = self._read_file()
                merged.update(dirty)
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                body = {"format": STAT_CACHE_FORMAT, "entries": merged}
                tmp.write_text(json.dumps(body, separators=(",", ":")))
                os.replace(tmp, self.path)
                merged.update(self._dirty)
                self._entries = merged
                self._loaded_stamp = self._file_stamp()
        except BaseException:
            self._dirty = {**dirty, **self._dirty}
            raise

    # -- lookups -----------------------------------------------------------------
    def lookup(self, key: str, st: os.stat_result) -> str | None:
        """The remembered hash of ``key`` if its stat still matches ``st``."""
        if not self._loaded:
            self._load()
        known = self._entries.get(key)
        if known is None and self.path is not None:
            # Another process may have learnt it since we loaded; look (a stat of the
            # file) at most once a second, not once per miss.
            now = time.monotonic()
            if now - self._checked_at > RELOAD_INTERVAL:
                self._checked_at = now
                self._load()
                known = self._entries.get(key)
        if known is None:
            return None
        try:
            if known[2] == st.st_mtime_ns and known[1] == st.st_size and known[0] == st.st_ino:
                return str(known[3])
        except (TypeError, IndexError, KeyError):  # a hand-edited or foreign entry
            pass
        return None

    def remember(self, key: str, st: os.stat_result, digest: str) -> None:
        """Record ``digest`` for ``key`` at stat ``st`` (skipped when the stat is racy)."""
        if is_racy(st):
            return
        entry = [st.st_ino, st.st_size, st.st_mtime_ns, digest]
        if self._entries.get(key) != entry:
            self._entries[key] = entry
            self._dirty[key] = entry

    def hash(self, path: str | os.PathLike[str]) -> FileHash:
        """Hash of ``path``, read from disk only when its stat changed."""
        key = str(Path(path).resolve())
        st = os.stat(key)
        digest = self.lookup(key, st)
        if digest is None:
            digest = hash_file(key)
            after = os.stat(key)
            if (after.st_ino, after.st_size, after.st_mtime_ns) == (
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
            ):
                self.remember(key, st, digest)
        return FileHash(digest, st.st_size, st.st_mtime_ns, st.st_ino)
