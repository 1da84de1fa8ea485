"""The code a kernel session ran before a run: cell sources in execution order, kept once.

IPython's input history (``In``, raw form: ``%%track`` lines and ``!shell`` lines as
typed) is the source of truth, not the notebook file: cells run out of order, cells
edited after they ran and papermill's injected-parameters cell are all there as they ran.

Stored content-addressed in the blob cache: each cell source is one blob (a cell that
many runs of a session share is kept once), and a run's code is a cache *manifest*
(``cell-000001.py`` -> that blob, sorted by execution order) referenced by the run's
``code_hash``. gc, push/pull and bundles already follow manifests to their blobs.

Also here: the kernel's name (from the connection file its kernel manager wrote) and
interpreter, which ``nbtrack rerun`` uses to pick the kernel again.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NamedTuple

from .exceptions import BlobMissingError, PipelineError

if TYPE_CHECKING:
    from .cache import Cache

# A cell that raised is kept as `cell-000003.raised.py`: a replay lets it raise again
# and goes on, as the session did.
_ENTRY = "cell-{:06d}{}.py"
_RAISED = ".raised"
# Per cache root: (source, digest) of cells already stored, so a session stores each once.
_stored: dict[str, dict[str, str]] = {}


class SessionCell(NamedTuple):
    """One cell the session ran: its raw source, and whether it raised (as far as
    nbtrack saw: cells before ``%load_ext nbtrack`` count as not raising)."""

    source: str
    raised: bool = False


def store_code(cache: Cache, cells: list[SessionCell]) -> str:
    """Store ``cells`` (in execution order); returns the manifest hash."""
    from .cache import ManifestEntry

    known = _stored.setdefault(str(cache.root), {})
    entries = []
    for i, cell in enumerate(cells, start=1):
        digest = known.get(cell.source)
        data = cell.source.encode("utf-8")
        if digest is None or not cache.has(digest):
            digest = known[cell.source] = cache.put_bytes(data)
        name = _ENTRY.format(i, _RAISED if cell.raised else "")
        entries.append(ManifestEntry(name, digest, len(data)))
    return cache.put_manifest(entries)


def read_code(cache: Cache, code_hash: str) -> list[SessionCell]:
    """The cells of a stored session code, in execution order.

    Raises ``PipelineError`` naming what is missing when the manifest or a cell is gone.
    """
    try:
        entries = cache.read_manifest(code_hash)
        return [
            SessionCell(cache.read_bytes(e.hash).decode("utf-8"), e.path.endswith(_RAISED + ".py"))
            for e in entries
        ]
    except BlobMissingError as exc:
        raise PipelineError(
            f"the session code {code_hash} is not complete in the cache ({exc}); "
            "`nbtrack pull` brings it from a remote"
        ) from None


def session_cells(history: list[str], current: str, raised: set[int]) -> list[SessionCell]:
    """The cells to record for a cell about to run: ``In[1:]`` then the cell itself.

    IPython adds a cell to its history after ``pre_run_cell``; ``raised`` holds the
    execution counts of cells that raised. Empty entries (cells that held nothing)
    are left out.
    """
    cells = [SessionCell(c, n in raised) for n, c in enumerate(history) if n > 0]
    cells.append(SessionCell(current))
    return [c for c in cells if c.source.strip()]


_kernel: tuple[str | None] | None = None


def kernel_name() -> str | None:
    """The kernelspec name this kernel was started with, or None outside a kernel.

    jupyter_client writes it into the connection file (``kernel_name``), for JupyterLab,
    papermill, nbclient and ``jupyter execute`` alike.
    """
    global _kernel
    if _kernel is None:
        name: str | None = None
        try:
            from ipykernel.connect import get_connection_info

            info = json.loads(str(get_connection_info()))
            name = str(info.get("kernel_name") or "") or None
        except Exception:  # not in a kernel, or an ipykernel without the helper
            name = None
        _kernel = (name,)
    return _kernel[0]


def executable() -> str:
    """This interpreter (a kernel's ``sys.executable``)."""
    return sys.executable
