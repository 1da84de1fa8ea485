"""Which process wrote a file: claims that tell concurrent kernels' writes apart.

The project watch (fswatch.py, inotify) sees every file written in the project, but not
who wrote it: with two kernels running tracked cells at once (``nbtrack sweep -j 2``,
two notebooks open), each cell was credited with the other's files, and a sweep point
recorded its neighbour's model as its own output. A kernel knows the writes of its own
Python code for sure (the audit hook and the wrapped native writers, filewatch.py): it
*claims* each such path, as it opens it, in a file of its own under
``.nbtrack/claims/<pid>.claims`` (one line per write: the time in ns and the path). At
the end of a cell, a write that only the project watch saw (no hook of this process saw
it) is left out when another process claimed that path while the cell ran.

Limits: a file written by another kernel's shell line or subprocess is not claimed (no
hook sees it) and is still credited to every cell running at the time; both kernels
writing the same path credit it to both.
"""

from __future__ import annotations

import os
import time

CLAIMS = "claims"
#: A claims file untouched this long belongs to a kernel that is idle or gone.
PRUNE_AFTER_S = 3600.0


class Claims:
    """This process's claims, for one cell (``claim`` while it runs, ``close`` at its end)."""

    def __init__(self, store_folder: str) -> None:
        self.folder = os.path.join(store_folder, CLAIMS)
        self._fd: int | None = None

    def claim(self, path: str) -> None:
        """This process is about to write ``path``."""
        try:
            if self._fd is None:
                os.makedirs(self.folder, exist_ok=True)
                name = os.path.join(self.folder, f"{os.getpid()}.claims")
                self._fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            line = f"{time.time_ns()} {path}\n".encode("utf-8", "surrogateescape")
            os.write(self._fd, line)  # one write: another process never reads half a line
        except OSError:
            pass  # a full disk: a claim is a hint, the cell's own record comes first

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def by_others(self, since_ns: int) -> set[str]:
        """The paths other processes claimed since ``since_ns``; prunes stale claims files."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return set()
        mine = f"{os.getpid()}.claims"
        now = time.time()
        found: set[str] = set()
        for name in names:
            if name == mine or not name.endswith(".claims"):
                continue
            path = os.path.join(self.folder, name)
            try:
                st = os.stat(path)
                if now - st.st_mtime > PRUNE_AFTER_S:
                    os.unlink(path)
                    continue
                if st.st_mtime_ns < since_ns:
                    continue  # nothing claimed while this cell ran
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "surrogateescape")
            except OSError:
                continue
            for line in text.splitlines():
                when, _, claimed = line.partition(" ")
                if claimed and when.isdigit() and int(when) >= since_ns:
                    found.add(claimed)
        return found
