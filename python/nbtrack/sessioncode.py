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
import os
import sys
import time
from typing import TYPE_CHECKING, NamedTuple

from .exceptions import BlobMissingError, PipelineError

if TYPE_CHECKING:
    from .cache import Cache

# A cell that raised is kept as `cell-000003.raised.py`: a replay lets it raise again
# and goes on, as the session did.
_ENTRY = "cell-{:06d}{}.py"
_RAISED = ".raised"
# Per cache root: source -> (digest, when it was last stored or touched), so a session
# stores each cell once and does not stat every earlier cell again for every run.
_stored: dict[str, dict[str, tuple[str, float]]] = {}
# A blob stored or touched this recently is still there: gc keeps unreferenced blobs
# for GC_GRACE_SECONDS (600 s) after their last touch. Older ones are stored again
# (a stat and a touch when present, the bytes when gc took them).
REFRESH_SECONDS = 300.0


class SessionCell(NamedTuple):
    """One cell the session ran: its raw source, and whether it raised (as far as
    nbtrack saw: cells before ``%load_ext nbtrack`` count as not raising)."""

    source: str
    raised: bool = False


def store_code(cache: Cache, cells: list[SessionCell]) -> str:
    """Store ``cells`` (in execution order); returns the manifest hash.

    Once per run, on nbtrack's helper thread, for a session that only grows: the
    entries of the cells the last run of this store stored are kept with their JSON,
    so a run adds the cells new since (and any whose flag changed: a cell seen
    running is seen raising afterwards), not the whole session again (the manifest
    of a 600-cell session cost ~2 ms per run, growing with every cell).
    """
    root = str(cache.root)
    _forget_if_remade(root)
    known = _stored.setdefault(root, {})
    now = time.monotonic()
    last = _manifests.get(root)
    same, oldest = 0, now
    # A blob stored or touched longer ago than REFRESH_SECONDS: every cell is looked
    # at again (a stat and a touch), as each was when first stored.
    if last is not None and now - last[2] <= REFRESH_SECONDS:
        same, oldest = _common_prefix(last[0], cells), last[2]
    rows = last[1][:same] if last is not None else []
    for i in range(same + 1, len(cells) + 1):
        cell = cells[i - 1]
        found = known.get(cell.source)
        data = cell.source.encode("utf-8")
        if found is None or now - found[1] > REFRESH_SECONDS:
            found = known[cell.source] = (cache.put_bytes(data), now)
        oldest = min(oldest, found[1])
        name = _ENTRY.format(i, _RAISED if cell.raised else "")
        rows.append(_row(name, found[0], len(data)))
    if len(cells) >= _PADDED:  # entry names no longer sort in execution order
        return _store_sorted(cache, cells, known)
    _manifests[root] = (list(cells), rows, oldest)
    data = _manifest_bytes(rows)
    return cache.put_bytes(data, cache.manifest_hash(data))


def _forget_if_remade(root: str) -> None:
    # The store folder deleted under the kernel (and made again by the next run): what
    # was stored in it is gone, so the memos go too. Before, the next runs' session
    # code listed the earlier cells' blobs as kept, and doctor found them missing.
    try:
        ino: int | None = os.stat(root).st_ino
    except OSError:
        ino = None
    if _roots.get(root, ino) != ino:
        _stored.pop(root, None)
        _manifests.pop(root, None)
    _roots[root] = ino


# Per cache root: its folder's inode when the memos above and below were made.
_roots: dict[str, int | None] = {}
# Per cache root: the cells the last manifest listed, its rows (JSON, one a cell) and
# when the least recently stored or touched of their blobs was.
_manifests: dict[str, tuple[list[SessionCell], list[str], float]] = {}
_PADDED = 10**6  # _ENTRY's width: past it, names sort differently from cell order


def _common_prefix(a: list[SessionCell], b: list[SessionCell]) -> int:
    """How many first cells ``a`` and ``b`` share (compared in C when all of ``a`` is)."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    if a[: n - 1] == b[: n - 1]:  # the usual case: all but the last run's own cell
        return n if a[n - 1] == b[n - 1] else n - 1
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _row(name: str, digest: str, size: int) -> str:
    return json.dumps([name, digest, size], separators=(",", ":"), ensure_ascii=False)


def _manifest_bytes(rows: list[str]) -> bytes:
    """``Cache.manifest_bytes`` of these rows, already in path order (a test holds
    the two byte for byte)."""
    from .cache import MANIFEST_FORMAT

    head = json.dumps({"format": MANIFEST_FORMAT}, separators=(",", ":"), ensure_ascii=False)
    return (head[:-1] + ',"entries":[' + ",".join(rows) + "]}").encode()


def _store_sorted(
    cache: Cache, cells: list[SessionCell], known: dict[str, tuple[str, float]]
) -> str:
    from .cache import ManifestEntry

    entries = [
        ManifestEntry(
            _ENTRY.format(i, _RAISED if c.raised else ""),
            known[c.source][0],
            len(c.source.encode("utf-8")),
        )
        for i, c in enumerate(cells, start=1)
    ]
    _manifests.pop(str(cache.root), None)
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
    are left out. The cells made from the history last time are reused when the
    history only grew since and no earlier cell was newly seen raising.
    """
    global _made
    cells: list[SessionCell] = []
    start = 1
    if _made is not None:
        n, tail, seen, made = _made
        if (
            len(history) >= n
            and history[n - 1] is tail
            and seen <= raised
            and all(i >= n for i in raised - seen)
        ):
            cells, start = list(made), n
    cells.extend(
        SessionCell(c, n in raised) for n, c in enumerate(history[start:], start) if c.strip()
    )
    if len(history) > 1:
        _made = (len(history), history[-1], frozenset(raised), cells[:])
    if current.strip():
        cells.append(SessionCell(current))
    return cells


# The last history made into cells: (its length, its last entry, the raised counts
# then, the cells); the history of a session only grows.
_made: tuple[int, str, frozenset[int], list[SessionCell]] | None = None


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
