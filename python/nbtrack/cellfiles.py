"""The data versions of the files one tracked cell read and wrote.

``filewatch`` says which paths; this module decides their versions at the cell's end:

* a file the cell wrote is versioned as it is now (role ``output``);
* a file the cell read is versioned as it was when read: as it is now if unchanged
  since, else from the stat cache (the hash known for the status it had when read),
  else from the copy taken just before the cell overwrote it; a file the cell made
  itself before reading it is its output, not an input;
* a file outside the project is recorded with its hash and size, and its bytes are
  kept only when the cell named it (``-i``/``-o``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .cache import Cache
from .filewatch import FileWatcher
from .hashing import StatCache
from .models import DataVersion
from .project import Project

# (path, role, keep the bytes in the cache) -> its version, or None when it is gone
Versioner = Callable[[str, str, bool], "DataVersion | None"]


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def data_versions(
    watcher: FileWatcher | None,
    named_inputs: list[str],
    named_outputs: list[str],
    early: dict[str, DataVersion],
    version: Versioner,
    *,
    project: Project,
    stat_cache: StatCache,
    cache: Cache | None,
) -> tuple[list[DataVersion], list[str]]:
    """The versions to record, and what could not be recorded (for the summary)."""
    warnings: list[str] = []
    out: dict[tuple[str, str], DataVersion] = {}
    reads = dict(watcher.reads) if watcher is not None else {}
    writes = dict.fromkeys(watcher.writes) if watcher is not None else {}
    named = {os.path.realpath(p) for p in [*named_inputs, *named_outputs]}
    for p in named_inputs:
        reads[os.path.realpath(p)] = None
    for p in named_outputs:
        writes[os.path.realpath(p)] = None

    def keep_bytes(path: str) -> bool:
        return path in named or (watcher is not None and watcher.inside(path))

    for p, st in reads.items():
        if watcher is not None and p not in named and watcher.written_before_read(p):
            continue  # the cell's own output, read back
        v = early.get(p)
        if v is None:
            v = _as_read(p, st, version, keep_bytes(p), project, stat_cache, cache)
            if v is None and st is not None and watcher is not None and watcher.inside(p):
                rel = project.relative(p)[0]
                warnings.append(
                    f"{rel} was read, then changed by the cell: the version read is unknown"
                )
        if v is not None:
            out[(v.path, "input")] = v
    for p in writes:
        v = version(p, "output", keep_bytes(p))
        if v is not None:
            out[(v.path, "output")] = v
    for p in [*named_inputs, *named_outputs]:
        if not os.path.exists(p):
            warnings.append(f"{p} does not exist, so it has no version")
    return list(out.values()), warnings


def _as_read(
    path: str,
    st: os.stat_result | None,
    version: Versioner,
    keep: bool,
    project: Project,
    stat_cache: StatCache,
    cache: Cache | None,
) -> DataVersion | None:
    if st is None:  # named with -i
        return version(path, "input", keep)
    try:
        if _same(st, os.stat(path)):
            return version(path, "input", keep)
    except OSError:
        pass  # removed since: known only if its hash was
    digest = stat_cache.lookup(path, st)
    if digest is None:
        return None
    recorded, in_project = project.relative(path)
    return DataVersion(
        path=recorded,
        role="input",
        hash=digest,
        size=st.st_size,
        in_project=in_project,
        cached=bool(keep and cache is not None and cache.has(digest)),
        mtime=st.st_mtime,
    )
