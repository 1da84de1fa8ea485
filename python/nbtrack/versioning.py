"""Turn a path (file or folder) or an in-memory DataFrame into a data version.

``version_path`` is the one function the recorder calls for every path a run read or
wrote. A file gets its content hash (from the stat cache when its stat is unchanged)
and, unless caching is off or the file is over the size limit, its bytes go into the
cache in the same pass. A folder becomes a manifest, like DVC's ``.dir`` objects: the
sorted list of ``[relative path, hash, size]`` of its files, stored as a blob; the
folder's hash is the manifest's hash with a ``.dir`` suffix.
"""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import Cache, ManifestEntry
from .exceptions import CacheError, UsageError
from .hashing import HashStream, StatCache, hash_bytes, hash_file
from .models import DataVersion

if TYPE_CHECKING:
    import pandas as pd

    from .project import Project

# Files up to this size in a folder are read whole (one read, no chunking).
SMALL_FILE = 1 << 20
FOLDER_THREADS = min(4, os.cpu_count() or 2)  # more threads than cores only contend for the GIL
# Never part of a folder version: the store itself and git's own files.
SKIPPED_NAMES = frozenset({".nbtrack", ".git"})


def _fits(size: int, max_blob_size: int | None) -> bool:
    return max_blob_size is None or size <= max_blob_size


def _stat_same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def _special_kind(mode: int) -> str:
    """What a path that is neither a file nor a folder is, in a user's words."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file"


def _version_file(
    real: str,
    st: os.stat_result,
    cache: Cache | None,
    stat_cache: StatCache,
    max_blob_size: int | None,
) -> tuple[str, int, bool]:
    """(hash, size, cached) of one file, caching its bytes when asked."""
    keep = cache is not None and _fits(st.st_size, max_blob_size)
    digest = stat_cache.lookup(real, st)
    if digest is not None:
        if not keep:
            return digest, st.st_size, False
        assert cache is not None
        if cache.put_file(real, digest):
            return digest, st.st_size, True
        # put_file refused: the bytes no longer hash to what the stat cache said.
    if st.st_size <= SMALL_FILE:
        # One read, and the stat after it from the same descriptor: the cheapest way
        # to know the bytes we hashed are the bytes that stat describes.
        fd = os.open(real, os.O_RDONLY)
        try:
            data = _read_all(fd, st.st_size)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        digest = cache.put_bytes(data) if keep and cache is not None else hash_bytes(data)
        size = len(data)
    else:
        if keep and cache is not None:
            digest, size = cache.add_file(real)
        else:
            digest, size = hash_file(real), st.st_size
        after = os.stat(real)
    if _stat_same(st, after) and size == st.st_size:
        stat_cache.remember(real, st, digest)
    return digest, size, keep


def _read_all(fd: int, expected: int) -> bytes:
    """Everything up to end of file (a file may have grown since its stat).

    Asking for one byte more than expected makes the usual case one read: exactly
    the size ``stat`` gave. Anything else (a short read on a network filesystem, a
    file that grew) reads on to end of file; the caller compares the stat after.
    """
    first = os.read(fd, expected + 1)
    if len(first) == expected:
        return first
    chunks = [first]
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _walk(root: str) -> list[tuple[str, str, os.stat_result]]:
    """Every regular file under ``root`` as (relative POSIX path, real path, stat).

    Symlinks to files are followed (their content is versioned); symlinked folders are
    not descended into, so a link loop cannot hang a run.
    """
    out: list[tuple[str, str, os.stat_result]] = []
    stack = [("", root)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            for entry in it:
                if entry.name in SKIPPED_NAMES:
                    continue
                rel = f"{rel_dir}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", entry.path))
                elif entry.is_file():
                    out.append((rel, entry.path, entry.stat()))
    return out


def _version_folder(
    root: str,
    cache: Cache | None,
    stat_cache: StatCache,
    max_blob_size: int | None,
) -> tuple[str, int, bool]:
    files = _walk(root)
    entries: list[ManifestEntry] = []
    pending: list[tuple[str, str, os.stat_result]] = []
    for rel, real, st in files:
        digest = stat_cache.lookup(real, st)
        if digest is None:
            pending.append((rel, real, st))
        else:
            entries.append(ManifestEntry(rel, digest, st.st_size))
    all_cached = cache is not None
    if cache is not None and entries:
        # Known files: their blobs may have gone since (gc, a corrupt blob moved
        # aside), so look at each one (a stat) and cache again what is missing.
        sizes = cache.sizes_of([e.hash for e in entries])
        missing = [e for e, size in zip(entries, sizes, strict=True) if size != e.size]
        if missing:
            by_rel = {rel: (real, st) for rel, real, st in files}
            fixed: dict[str, ManifestEntry] = {}
            for e in missing:
                real, st = by_rel[e.path]
                digest, size, cached = _version_file(real, st, cache, stat_cache, max_blob_size)
                fixed[e.path] = ManifestEntry(e.path, digest, size)
                all_cached &= cached
            entries = [fixed.get(e.path, e) for e in entries]

    def version_some(
        items: list[tuple[str, str, os.stat_result]],
    ) -> list[tuple[str, str, int, bool]]:
        return [
            (rel, *_version_file(real, st, cache, stat_cache, max_blob_size))
            for rel, real, st in items
        ]

    # Opening, reading and creating files release the GIL: a few threads overlap the
    # filesystem's latency (most of the cost for small files). One batch per thread,
    # not one task per file: handing over ten thousand tasks costs more than it saves.
    threads = min(FOLDER_THREADS, len(pending) // 16)
    if threads > 1:
        batches = [pending[i::threads] for i in range(threads)]
        with ThreadPoolExecutor(threads, thread_name_prefix="nbtrack-folder") as pool:
            done = [row for batch in pool.map(version_some, batches) for row in batch]
    else:
        done = version_some(pending)
    for rel, digest, size, cached in done:
        entries.append(ManifestEntry(rel, digest, size))
        all_cached &= cached
    data = Cache.manifest_bytes(entries)
    folder_hash = Cache.manifest_hash(data)
    if cache is not None:
        cache.put_bytes(data, folder_hash)
    return folder_hash, sum(e.size for e in entries), all_cached


def version_path(
    project: Project,
    path: str | os.PathLike[str],
    role: str,
    *,
    cache: Cache | None,
    stat_cache: StatCache,
    max_blob_size: int | None = None,
    save_stat_cache: bool = True,
) -> DataVersion:
    """The data version of a file or folder as it is now.

    ``cache=None`` (``--no-cache``) records the hash without keeping the bytes; a file
    over ``max_blob_size`` bytes is hashed but not cached. Raises ``UsageError`` when
    the path does not exist. ``save_stat_cache=False`` leaves persisting the hashes
    learnt to the caller (a tracked cell saves once, off its main thread).

    >>> v = version_path(project, "data/train.csv", "input", cache=client.cache,
    ...                  stat_cache=StatCache.for_folder(project.folder))  # doctest: +SKIP
    >>> v.kind, v.cached
    ('file', True)
    """
    if role not in ("input", "output"):
        raise UsageError(f"a data role is 'input' or 'output', not {role!r}")
    p = Path(path)
    if not p.is_absolute():
        p = Path.cwd() / p
    real = os.path.realpath(p)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise UsageError(f"{os.fspath(path)}: no such file or folder to version") from None
    except NotADirectoryError:
        raise UsageError(f"{os.fspath(path)}: not a file or folder") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        # A FIFO's open waited for a writer for ever (the kernel hung at the cell's
        # end); /dev/zero was read until memory ran out.
        raise UsageError(f"{os.fspath(path)}: {_special_kind(st.st_mode)}, not a file or folder")
    recorded, in_project = project.relative_real(real)
    try:
        if os.path.isdir(real):
            digest, size, cached = _version_folder(real, cache, stat_cache, max_blob_size)
            kind = "dir"
        else:
            digest, size, cached = _version_file(real, st, cache, stat_cache, max_blob_size)
            kind = "file"
    except PermissionError as exc:
        raise UsageError(f"{os.fspath(path)}: cannot be read ({exc.strerror})") from None
    except CacheError as exc:
        raise UsageError(f"{os.fspath(path)}: {exc}") from None
    finally:
        if save_stat_cache:
            stat_cache.save()
    return DataVersion(
        path=recorded,
        role=role,
        hash=digest,
        size=size,
        kind=kind,
        in_project=in_project,
        cached=cached,
        mtime=st.st_mtime,
    )


# -- DataFrames ---------------------------------------------------------------------


def _column_bytes(values: Any) -> bytes:
    """Exact bytes for plain numeric columns; pandas' stable per-row hash otherwise."""
    import numpy as np
    import pandas as pd

    if isinstance(values, np.ndarray) and values.dtype.kind in "biufcmM":
        return bytes(np.ascontiguousarray(values).view(np.uint8))
    hashed = pd.util.hash_pandas_object(pd.Series(values), index=False)
    return bytes(hashed.to_numpy(dtype="uint64").view(np.uint8))


def dataframe_hash(df: pd.DataFrame) -> str:
    """Full-content hash of a DataFrame: schema, index and every value.

    Stable across processes and machines (no Python ``hash()`` is involved): the
    schema (column names, dtypes, index names) is hashed as JSON, then each column's
    values: the raw bytes of numeric, boolean and datetime columns, pandas'
    ``hash_pandas_object`` (fixed key) for the others.
    """
    schema = {
        "columns": [str(c) for c in df.columns],
        "dtypes": [str(t) for t in df.dtypes],
        "index": [str(n) for n in df.index.names],
        "index_dtypes": [str(df.index.get_level_values(i).dtype) for i in range(df.index.nlevels)],
        "rows": len(df),
    }
    stream = HashStream()
    stream.update(json.dumps(schema, sort_keys=True).encode())
    for level in range(df.index.nlevels):
        stream.update(_column_bytes(df.index.get_level_values(level).to_numpy()))
    for i in range(df.shape[1]):
        column = df.iloc[:, i]
        stream.update(
            _column_bytes(column.to_numpy() if column.dtype.kind in "biufcmM" else column)
        )
    return stream.hexdigest()


def version_dataframe(
    df: pd.DataFrame, name: str, *, cache: Cache | None = None
) -> tuple[DataVersion, dict[str, Any]]:
    """The data version of an in-memory DataFrame and its profile.

    The version's path is ``name``, its kind ``"dataframe"``; its bytes are not kept
    (``cached`` is False: a DataFrame has no file form whose hash is this one). The
    cache argument is accepted so a later version may keep a Parquet copy.
    """
    import pandas as pd

    from .profile import profile_frame

    if not isinstance(df, pd.DataFrame):
        raise UsageError(f"log_dataset needs a pandas DataFrame, got {type(df).__name__}")
    digest = dataframe_hash(df)
    profile = profile_frame(df)
    version = DataVersion(
        path=name,
        role="input",
        hash=digest,
        size=int(df.memory_usage(index=True, deep=False).sum()),
        kind="dataframe",
        in_project=True,
        cached=False,
        mtime=None,
    )
    return version, profile


__all__ = [
    "dataframe_hash",
    "hash_bytes",
    "version_dataframe",
    "version_path",
]
