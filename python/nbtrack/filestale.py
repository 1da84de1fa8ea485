"""Stale through a file: a tracked cell reads a file (or a value) an earlier run of this
kernel made from a file that another run wrote again since.

The eighteenth trial's chain of three tracked cells, ``data`` writing ``clean.parquet``,
``features`` reading it and writing ``X.parquet``, ``model`` reading that: after ``data``
ran again with another threshold, ``model`` re-run read the old features and its summary
said "same as the previous run", where a name made the same way (``X`` kept in memory)
would have been a stale input. The kernel remembers, for each file its tracked runs
wrote, the version written and the file versions that run read; a run reading that
version of it (or a value that run made) is warned when one of those was written again.
Files written outside tracked runs are not seen here (their versions are not known).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import Run

#: Files remembered per kernel (the oldest forgotten first): a bound on memory.
LIMIT = 10_000


@dataclass
class _Writer:
    run: str  # "5bf4d57c (features)"
    read: dict[str, str | None] = field(default_factory=dict)  # path -> hash it read


class FileWriters:
    """What this kernel's tracked runs wrote, and from what (see the module docstring)."""

    def __init__(self) -> None:
        self._written: dict[str, tuple[str | None, _Writer]] = {}  # path -> (hash, writer)
        self._by_run: dict[str, _Writer] = {}

    def stale(self, run: Run, reads: list[Any]) -> list[str]:
        """Why the inputs ``run`` read (files, and ``reads``: the names, by their run) are
        stale, one line each: ``X.parquet was written by run 5bf4d57c (features) from
        clean.parquet, which run 3e7896a2 (data) wrote again since``."""
        out: list[str] = []
        for d in run.inputs:
            hit = self._written.get(d.path)
            if hit is not None and d.hash is not None and hit[0] == d.hash:
                out += self._why(f"{d.path} was written by run {hit[1].run}", hit[1])
        for r in reads:
            writer = self._by_run.get(getattr(r.producer, "run_id", None) or "")
            if writer is not None and r.stale is None:
                out += self._why(f"{r.name} was made by run {writer.run}", writer)
        return out

    def _why(self, what: str, writer: _Writer) -> list[str]:
        for path, was in writer.read.items():
            now = self._written.get(path)
            if now is not None and was is not None and now[0] != was and now[1] is not writer:
                return [f"{what} from {path}, which run {now[1].run} wrote again since"]
        return []

    def note(self, run: Run) -> None:
        """Remember what ``run`` (just ended) wrote and read."""
        writer = _Writer(f"{run.run_id[:8]} ({run.name})" if run.name else run.run_id[:8])
        writer.read = {d.path: d.hash for d in run.inputs}
        self._by_run[run.run_id] = writer
        for d in run.outputs:
            self._written.pop(d.path, None)
            self._written[d.path] = (d.hash, writer)
        for kept in (self._written, self._by_run):
            while len(kept) > LIMIT:
                del kept[next(iter(kept))]
