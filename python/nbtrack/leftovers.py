"""Temporary files whose writer died: whoever comes across one removes it.

A process killed (SIGKILL, the out-of-memory killer) between creating a temporary
file and renaming it into place leaves the file behind, and nothing else would
remove it. Its name carries the writer's pid: a file whose writer is gone, or older
than a grace period (a pid is reused in time), is a leftover.
"""

from __future__ import annotations

import contextlib
import os
import time


def remove_if_abandoned(path: str | os.PathLike[str], pid: int | None, grace: float) -> None:
    """Remove the temporary file ``path`` when its writer ``pid`` (None: not known) is
    gone or the file is older than ``grace`` seconds; a file renamed into place or
    removed meanwhile is left alone."""
    try:
        age = time.time() - os.lstat(path).st_mtime
    except OSError:
        return  # renamed into place (or removed) since the folder was listed
    import psutil  # (as spools and forkreads ask whether a writer lives)

    if (pid is not None and not psutil.pid_exists(pid)) or age > grace:
        with contextlib.suppress(OSError):
            os.unlink(path)
