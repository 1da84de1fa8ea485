"""Content-addressed blobs under ``.nbtrack/cache/``.

A blob is named by the hash of its bytes: ``<root>/xxh3/<2 hex>/<30 hex>``; a
folder manifest (see :mod:`nbtrack.versioning`) is a blob whose name ends in
``.dir``. Decisions (docs/data.md, "The cache"):

* Bytes go in by reflink (``ioctl FICLONE``: copy-on-write, instant on btrfs/XFS)
  and otherwise by a streamed copy that hashes every chunk it writes, so what is
  stored is exactly what was hashed and a 5 GiB file never sits in memory. Never by
  hardlink: a user editing the original in place would silently change the blob.
* Every write is atomic: a read-only temporary file (``.tmp-*`` beside the blob, or
  under ``<root>/tmp/`` while the hash is not known yet) is written, checked against
  the expected hash and renamed into place. A killed copy
  leaves only a temporary file (removed by gc), never a blob with the wrong content.
* A blob whose size differs from the file being put is replaced (torn write after a
  power loss); a blob found corrupt by :meth:`Cache.verify` is moved aside so the
  next put of the same content repairs it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from .copying import copy_hashing, write_all
from .exceptions import BlobCorruptError, BlobMissingError, CacheError
from .hashing import PREFIX, HashStream, hash_bytes, hash_regular

DIR_SUFFIX = ".dir"
MANIFEST_FORMAT = "nbtrack.dir/1"
# Orphan blobs (referenced by no run) younger than this are kept by gc: a run
# still being recorded has put its blobs before its rows reach the store.
GC_GRACE_SECONDS = 600
# A blob put again is touched (gc's grace starts anew) unless it was this recently:
# whoever counts on a put as a touch is off by at most this, well within the grace.
TOUCH_AFTER = 60
TMP_PREFIX = ".tmp-"
# Temporary files older than this belong to a process that died mid-write.
STALE_TMP_SECONDS = 3600

_DIGEST = re.compile(r"([a-z0-9]+):([0-9a-f]{8,128}(?:\.dir)?)")


class ManifestEntry(NamedTuple):
    """One file of a folder version (a tuple: cheap to make by the ten thousand, and
    JSON-encoded as the ``[path, hash, size]`` row of the manifest)."""

    path: str
    hash: str
    size: int


@dataclass
class GcResult:
    """What gc removed (or, with ``dry_run``, would remove)."""

    removed: list[tuple[str, int]] = field(default_factory=list)
    kept_blobs: int = 0
    kept_bytes: int = 0
    kept_recent_orphans: int = 0
    dry_run: bool = False

    @property
    def removed_bytes(self) -> int:
        return sum(size for _, size in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed": [{"hash": d, "size": s} for d, s in self.removed],
            "removed_count": len(self.removed),
            "removed_bytes": self.removed_bytes,
            "kept_count": self.kept_blobs,
            "kept_bytes": self.kept_bytes,
            "kept_recent_orphans": self.kept_recent_orphans,
        }


def is_content_hash(digest: object) -> bool:
    """True for a well-formed blob name (``algo:hex``, or a folder manifest's)."""
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


def is_manifest_hash(digest: str) -> bool:
    """True for the hash of a folder manifest (``xxh3:...dir``)."""
    return digest.endswith(DIR_SUFFIX)


class Cache:
    """A folder of blobs named by their content hash."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        # String paths on the hot path: pathlib costs more than the syscalls here.
        self._root = os.fspath(root)
        self._tmp_dir = os.path.join(self._root, "tmp")
        self._made_dirs: set[str] = set()
        self._tmp_prefix = f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-"
        self._tmp_count = itertools.count()
        self._committed: set[str] = set()

    # -- names -------------------------------------------------------------------
    def _blob(self, digest: str) -> str:
        match = _DIGEST.fullmatch(digest)
        if match is None:
            raise CacheError(f"not a content hash: {digest!r}")
        algo, hexd = match.group(1), match.group(2)
        return f"{self._root}/{algo}/{hexd[:2]}/{hexd[2:]}"

    def path_for(self, digest: str) -> Path:
        """Where the blob named ``digest`` lives (it may not exist)."""
        return Path(self._blob(digest))

    def has(self, digest: str) -> bool:
        """True when a blob named ``digest`` is present (not verified)."""
        return os.path.exists(self._blob(digest))

    def size_of(self, digest: str) -> int | None:
        """Size of the blob in bytes, or None when it is absent."""
        try:
            return os.stat(self._blob(digest)).st_size
        except FileNotFoundError:
            return None

    def sizes_of(self, digests: Iterable[str]) -> list[int | None]:
        """``size_of`` for many hashes this process computed itself (not re-validated)."""
        out: list[int | None] = []
        for digest in digests:
            algo, _, hexd = digest.partition(":")
            try:
                out.append(os.stat(f"{self._root}/{algo}/{hexd[:2]}/{hexd[2:]}").st_size)
            except FileNotFoundError:
                out.append(None)
        return out

    # -- writing -----------------------------------------------------------------
    def _ensure_dir(self, folder: str) -> None:
        if folder not in self._made_dirs:
            os.makedirs(folder, exist_ok=True)
            self._made_dirs.add(folder)

    def _new_tmp(self, folder: str | None = None) -> tuple[int, str]:
        """A new temporary file, created read-only (the open descriptor may still write).

        With the blob's name known, the temporary file goes beside it (one folder lock,
        a same-folder rename); otherwise under ``tmp/``.
        """
        folder = folder or self._tmp_dir
        tmp = f"{folder}/{self._tmp_prefix}{next(self._tmp_count)}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL
        try:  # the folder is made when missing, not asked after first (a syscall a blob)
            fd = os.open(tmp, flags, 0o444)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(tmp, flags, 0o444)
        self._made_dirs.add(folder)
        return fd, tmp

    def _commit(self, tmp: str, digest: str) -> None:
        dest = self._blob(digest)
        self._ensure_dir(os.path.dirname(dest))
        os.replace(tmp, dest)
        self._committed.add(tmp)

    def _present(self, digest: str, size: int) -> bool:
        """A blob of the right size is present; touching it tells gc it is in use
        (``TOUCH_AFTER``)."""
        path = self._blob(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_size != size:
            return False
        if time.time() - st.st_mtime > TOUCH_AFTER:  # (a cell's inputs: a metadata write
            with contextlib.suppress(OSError):  # each, every run, for gc's sake only)
                os.utime(path)
        return True

    @contextlib.contextmanager
    def _temporary(self, digest: str | None = None) -> Iterator[tuple[int, str]]:
        """An open temporary file for a blob; closed and removed unless committed."""
        fd, tmp = self._new_tmp(os.path.dirname(self._blob(digest)) if digest else None)
        try:
            yield fd, tmp
        finally:
            os.close(fd)
            # Not after a commit: even a failed unlink locks the folder, and a folder
            # version makes ten thousand of these.
            if tmp in self._committed:
                self._committed.discard(tmp)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _commit_if(self, tmp: str, digest: str, actual: str) -> bool:
        """Rename ``tmp`` to ``digest`` if its content hash ``actual`` is that name."""
        if is_manifest_hash(digest):
            actual += DIR_SUFFIX
        if actual != digest:
            return False
        self._commit(tmp, digest)
        return True

    def add_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Hash ``path`` and keep its bytes in one streamed pass; returns (hash, size).

        The hash is of the bytes actually stored, so the blob always matches its name
        even when the file is being written meanwhile.
        """
        src = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(src).st_size
            with self._temporary() as (fd, tmp):
                digest = copy_hashing(src, fd, size)
                if not self._present(digest, size):
                    self._commit(tmp, digest)
            return digest, size
        finally:
            os.close(src)

    def put_file(self, path: str | os.PathLike[str], digest: str) -> bool:
        """Keep a copy of ``path`` whose hash is ``digest``; True when it is cached.

        False when the file no longer has that hash (it changed since it was hashed):
        nothing is stored under a name that does not match.
        """
        size = os.stat(path).st_size
        if self._present(digest, size):
            return True
        src = os.open(path, os.O_RDONLY)
        try:
            with self._temporary(digest) as (fd, tmp):
                return self._commit_if(tmp, digest, copy_hashing(src, fd, size))
        finally:
            os.close(src)

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data``; returns its hash (``digest`` when given: the name to use)."""
        digest = digest or hash_bytes(data)
        if not self._present(digest, len(data)):
            with self._temporary(digest) as (fd, tmp):
                write_all(fd, data)
                self._commit(tmp, digest)
        return digest

    def put_stream(self, source: BinaryIO, digest: str) -> bool:
        """Store what ``source`` yields if it hashes to ``digest`` (remotes, bundles).

        Streamed: memory use is one read buffer. False (nothing stored) when the bytes
        do not match their name.
        """
        if self.has(digest):
            return True
        stream = HashStream()
        with self._temporary(digest) as (fd, tmp):
            while chunk := source.read(1 << 22):
                stream.update(chunk)
                write_all(fd, chunk)
            return self._commit_if(tmp, digest, stream.hexdigest())

    # -- reading -----------------------------------------------------------------
    def read_bytes(self, digest: str) -> bytes:
        """The bytes of a blob (not verified; use :meth:`verify` for that)."""
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissingError(f"{digest} is not in the cache") from None

    def _content_hash(self, digest: str) -> str:
        try:
            actual = hash_regular(self.path_for(digest))
        except FileNotFoundError:
            raise BlobMissingError(f"{digest} is not in the cache") from None
        if actual is None:
            return ""  # a folder, a broken link where the blob was: no bytes to match
        if is_manifest_hash(digest):
            actual += DIR_SUFFIX
        return actual

    def verify(self, digest: str) -> None:
        """Re-hash a blob; a corrupt one is moved aside and ``BlobCorruptError`` raised."""
        if self._content_hash(digest) != digest:
            self.quarantine(digest)
            raise BlobCorruptError(f"cached bytes of {digest} no longer match their hash")

    def matches(self, digest: str) -> bool:
        """Whether a present blob's bytes still hash to its name (nothing is moved)."""
        return self._content_hash(digest) == digest

    def stale_temporaries(self, now: float | None = None) -> list[Path]:
        """Temporary files left by writers that died mid-write (older than an hour)."""
        now = time.time() if now is None else now
        found = []
        for leftover in [*self.root.glob("tmp/*"), *self.root.glob(f"*/*/{TMP_PREFIX}*")]:
            with contextlib.suppress(FileNotFoundError):
                if now - leftover.stat().st_mtime > STALE_TMP_SECONDS:
                    found.append(leftover)
        return found

    def quarantine(self, digest: str) -> None:
        """Move a bad blob aside (``<blob>.corrupt``) so the next put stores it afresh."""
        path = self.path_for(digest)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, path.with_name(path.name + ".corrupt"))

    def copy_out(self, digest: str, dest_fd: int) -> None:
        """Write the blob into an open file, verifying its hash on the way.

        Raises ``BlobMissingError`` or ``BlobCorruptError`` (the blob is then moved
        aside); the caller discards ``dest_fd``'s file in that case.
        """
        try:
            src = os.open(self.path_for(digest), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobMissingError(f"{digest} is not in the cache") from None
        try:
            actual = copy_hashing(src, dest_fd, os.fstat(src).st_size)
        finally:
            os.close(src)
        if is_manifest_hash(digest):
            actual += DIR_SUFFIX
        if actual != digest:
            self.quarantine(digest)
            raise BlobCorruptError(f"cached bytes of {digest} no longer match their hash")

    # -- folder manifests --------------------------------------------------------
    @staticmethod
    def manifest_bytes(entries: Iterable[ManifestEntry]) -> bytes:
        """The canonical bytes of a folder manifest (entries sorted by path)."""
        # Paths are unique within a folder, so tuple order is path order.
        body = {"format": MANIFEST_FORMAT, "entries": sorted(entries)}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def manifest_hash(data: bytes) -> str:
        return hash_bytes(data) + DIR_SUFFIX

    def put_manifest(self, entries: Iterable[ManifestEntry]) -> str:
        """Store a folder manifest; returns the folder's hash (``xxh3:...dir``)."""
        data = self.manifest_bytes(entries)
        return self.put_bytes(data, self.manifest_hash(data))

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        """The files of a folder version, verified against the folder hash."""
        data = self.read_bytes(digest)
        if self.manifest_hash(data) != digest:
            self.quarantine(digest)
            raise BlobCorruptError(f"cached manifest {digest} no longer matches its hash")
        body = json.loads(data)
        return [ManifestEntry(p, h, int(s)) for p, h, s in body["entries"]]

    # -- listing and gc ----------------------------------------------------------
    def iter_blobs(self) -> Iterator[tuple[str, int, float]]:
        """Every blob as (hash, size, mtime)."""
        if not self.root.is_dir():
            return
        for algo_dir in self.root.iterdir():
            if algo_dir.name == "tmp" or not algo_dir.is_dir():
                continue
            for fan in os.scandir(algo_dir):
                if not fan.is_dir():
                    continue
                for blob in os.scandir(fan.path):
                    if blob.name.endswith(".corrupt") or blob.name.startswith(TMP_PREFIX):
                        continue
                    st = blob.stat(follow_symlinks=False)  # (a link to nowhere is listed too)
                    yield f"{algo_dir.name}:{fan.name}{blob.name}", st.st_size, st.st_mtime

    def expand(self, digests: Iterable[str]) -> set[str]:
        """``digests`` plus every file hash listed in the folder manifests among them."""
        out: set[str] = set()
        for digest in digests:
            out.add(digest)
            if is_manifest_hash(digest):
                with contextlib.suppress(CacheError, OSError, ValueError):
                    out.update(e.hash for e in self.read_manifest(digest))
        return out

    def collect_garbage(
        self,
        referenced: Iterable[str],
        *,
        dropped: Iterable[str] = (),
        dry_run: bool = False,
        grace_seconds: float = GC_GRACE_SECONDS,
    ) -> GcResult:
        """Remove blobs not in ``referenced`` (folder manifests expanded).

        Blobs of ``dropped`` runs go whatever their age. Orphans (referenced by no
        run at all) are kept while younger than ``grace_seconds``: a run still being
        recorded puts its blobs before its rows reach the store.
        """
        keep = self.expand(referenced)
        young_ok = self.expand(dropped) - keep
        result = GcResult(dry_run=dry_run)
        now = time.time()
        for digest, size, mtime in self.iter_blobs():
            if digest in keep:
                result.kept_blobs += 1
                result.kept_bytes += size
                continue
            if digest not in young_ok and now - mtime < grace_seconds:
                result.kept_recent_orphans += 1
                result.kept_blobs += 1
                result.kept_bytes += size
                continue
            result.removed.append((digest, size))
            if not dry_run:
                _discard(self._blob(digest))
        if not dry_run:
            self._remove_debris(now)
        return result

    def _remove_debris(self, now: float) -> None:
        """Temporary files of dead writers and quarantined blobs."""
        for leftover in [*self.stale_temporaries(now), *self.root.glob("*/*/*.corrupt")]:
            _discard(leftover)


def _discard(path: str | Path) -> None:
    """Remove what sits at a blob's place: a file, a link, or a folder put there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path, ignore_errors=True)


__all__ = [
    "PREFIX",
    "Cache",
    "GcResult",
    "ManifestEntry",
    "HashStream",
    "is_manifest_hash",
]
