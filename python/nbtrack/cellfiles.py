"""The data versions of the files one tracked cell read and wrote.

``filewatch`` says which paths; this module decides their versions at the cell's end:

* a file the cell wrote is versioned as it is now (role ``output``);
* a file the cell read is versioned as it was when read (``filewatch`` has the version
  taken at that moment, before the cell could overwrite it); a file the cell made
  itself before reading it is its output, not an input;
* a file outside the project is recorded with its hash and size, and its bytes are
  kept only when the cell named it (``-i``/``-o``).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .filewatch import FileWatcher, same_file
from .models import DataVersion
from .project import Project

# (path, role, keep the bytes in the cache) -> its version, or None when it is gone
Versioner = Callable[[str, str, bool], "DataVersion | None"]


def _unchanged(path: str, st: os.stat_result) -> bool:
    return os.path.exists(path) and same_file(path, st)


def data_versions(
    watcher: FileWatcher | None,
    named_inputs: list[str],
    named_outputs: list[str],
    early: dict[str, DataVersion],
    version: Versioner,
    project: Project,
    shell_reads: dict[str, os.stat_result] | None = None,
) -> tuple[list[DataVersion], list[str]]:
    """The versions to record, and what could not be recorded (for the summary).

    ``shell_reads``: files the cell's shell lines name, with their stat at its start
    (``shellreads``); inputs, but for those the cell wrote (``cp a b`` over a ``b``)."""
    warnings: list[str] = []
    out: dict[tuple[str, str], DataVersion] = {}
    reads: dict[str, os.stat_result | None] = dict(watcher.reads) if watcher is not None else {}
    writes = dict.fromkeys(watcher.writes) if watcher is not None else {}
    for path, at_start in (shell_reads or {}).items():
        if path not in writes:
            reads.setdefault(path, at_start)
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
        if v is None and (st is None or _unchanged(p, st)):
            v = version(p, "input", keep_bytes(p))  # named with -i, or not versioned when read
        elif v is None and watcher is not None and watcher.inside(p):
            rel = project.relative(p)[0]
            warnings.append(
                f"{rel} was read, then changed by the cell: the version read is unknown"
            )
        if v is not None:
            out[(v.path, "input")] = v
    for p in writes:
        v = version(p, "output", keep_bytes(p))
        if v is None:
            continue
        read = out.get((v.path, "input"))
        if read is not None and read.hash == v.hash and p not in named:
            # Opened for writing, bytes unchanged (a SQLite database only queried: it is
            # opened read-write, and closing it is a write to the file watch): the cell
            # read this version, it did not make it, so no false lineage from it.
            continue
        out[(v.path, "output")] = v
    for p in [*named_inputs, *named_outputs]:
        if not os.path.exists(p):
            warnings.append(f"{p} does not exist, so it has no version")
    watch = watcher.project_watch if watcher is not None else None
    if watch is not None and watch.unwatched and not watch.told:
        watch.told = True
        warnings.append(
            f"{len(watch.unwatched)} folders of the project are not watched (too many folders): "
            "files written there by native code or other processes are not seen; "
            "name them with -o"
        )
    return _outside_recorded_folders(list(out.values())), warnings


def _outside_recorded_folders(versions: list[DataVersion]) -> list[DataVersion]:
    """Without the files inside a folder recorded in the same role: the folder's
    version (a manifest of every file in it) holds them. A dataset written in
    partitions (pandas' ``partition_cols``: a file per partition, named anew at every
    write) is then one output, and two runs' diff compares the folders."""
    folders = [(v.role, v.path.rstrip("/") + "/") for v in versions if v.kind == "dir"]
    if not folders:
        return versions
    return [
        v
        for v in versions
        if not any(v.role == role and v.path.startswith(inside) for role, inside in folders)
    ]
