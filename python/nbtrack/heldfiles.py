"""Files this process already holds open for writing when a cell starts.

A log file an earlier cell opened (``logging.basicConfig(filename="train.log")``, an
``open(path, "a")`` kept in a variable) is written by the tracked cell with no
``open``, ``close`` or ``rename`` to see: the audit hook sees no open, and the project
watch (inotify) listens for closes and renames, not for every ``write``. So the cell's
start lists the process's descriptors open for writing on regular files, with their
status; a file whose status changed by the cell's end was written by it.

The kernel's parent (papermill, ``jupyter execute``, a Jupyter server) writes its own
log while cells run: ``papermill nb.ipynb out.ipynb --log-output > run.log 2>&1``,
``--stdout-file so.txt``, ``nohup``. Another process's writes, seen by the project
watch and in the copy of its standard output ipykernel keeps: ``launcher_logs`` lists them
(once per kernel), and no cell claims them.

Linux only (``/proc/self/fd``); elsewhere nothing is listed. An ``fstat`` a descriptor
(a kernel holds 40-80: its sockets and pipes, the history database), then a look at
the few regular files' paths and flags.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable

_FD = "/proc/self/fd"
_STANDARD = frozenset({"0", "1", "2"})


def held_for_writing(keep: Callable[[str], bool]) -> dict[str, os.stat_result]:
    """``{real path: status}`` of the regular files this process holds open for
    writing, among the paths ``keep`` accepts."""
    found: dict[str, os.stat_result] = {}
    try:
        names = os.listdir(_FD)
    except OSError:
        return found
    for name in names:
        if name in _STANDARD:
            continue  # the kernel's own output, redirected (``nohup jupyter lab``: nohup.out)
        try:
            st = os.fstat(int(name))  # (cheaper than a readlink: most are sockets, pipes)
            if not stat.S_ISREG(st.st_mode):
                continue
            path = os.readlink(f"{_FD}/{name}")
            if path in found or not keep(path) or not _writable(name):
                continue
        except (OSError, ValueError):
            continue  # closed meanwhile (the listing's own descriptor among them)
        found[path] = st
    return found


@functools.cache
def launcher_logs() -> frozenset[str]:
    """The regular files this kernel's parent process holds open for writing (real
    paths): the runner's log, its standard streams included."""
    folder, found = f"/proc/{os.getppid()}/fd", set()
    try:
        names = os.listdir(folder)
    except OSError:
        return frozenset()
    for name in names:
        try:
            path = os.readlink(f"{folder}/{name}")  # (sockets and pipes: no path)
            if path.startswith("/") and _writable(name, folder) and os.path.isfile(path):
                found.add(path)
        except (OSError, ValueError):
            continue
    return frozenset(found)


def _writable(fd: str, folder: str = _FD) -> bool:
    with open(f"{folder[: -len('fd')]}fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return False
