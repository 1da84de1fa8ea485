"""The previous run of each cell, read from the store once per kernel and notebook.

The summary under a tracked cell compares the run with the previous run of the
same cell. Asking the store for it in every cell cost a DuckDB connection per
cell, queued behind the background ingestion, and the cell's end waited for it
(0.3-0.8 s per cell under papermill). Instead the newest run of every cell of
the notebook is read once, in the background, when the extension loads; runs of
this kernel are remembered as they end (``KernelSession.last_by_cell``). A run
that another kernel records meanwhile for the same cell is not seen by the summary
(``nbtrack diff`` sees it).
"""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING

from . import ingest
from .client import Client
from .models import Run
from .project import Project

if TYPE_CHECKING:
    from .session import KernelSession

Key = tuple[str, str]
WAIT = 3.0  # seconds the summary of the first cell waits for the runs to be read
_loaded: dict[tuple[Path, str | None], PreviousRuns] = {}


def for_notebook(project: Project, session: KernelSession) -> PreviousRuns:
    """The newest runs of the cells of the session's notebook in the project's store, read
    once per process; the session's own runs left out."""
    notebook_path = session.notebook_path()
    rel = project.relative(notebook_path)[0] if notebook_path else None
    found = _loaded.get((project.folder, rel))
    if found is None:
        found = PreviousRuns(Client(project), rel, session.session_id)
        _loaded[(project.folder, rel)] = found
    return found


def cell_key(cell_id: str | None, name: str | None, source: str | None) -> Key:
    """How a cell is recognised across executions: its id, else its run name, else its code."""
    if cell_id:
        return ("id", cell_id)
    if name:
        return ("name", name)
    return ("source", source or "")


class PreviousRuns:
    """The newest finished run of each cell of one notebook, loading in the background."""

    def __init__(self, client: Client, notebook_path: str | None, session_id: str) -> None:
        # The read may come after this kernel's first runs are stored (a busy store):
        # a cell's own run is not its previous one ("same as the previous run <itself>").
        self._index: Future[dict[Key, Run]] = ingest.read_in_background(
            self._load, client, notebook_path, session_id
        )

    @staticmethod
    def _load(client: Client, notebook_path: str | None, session_id: str) -> dict[Key, Run]:
        if not client.project.db_path.exists():
            return {}  # a new store: nothing ran before
        index: dict[Key, Run] = {}
        runs = client.latest_cell_runs(notebook_path, not_session=session_id)
        for run in sorted(runs, key=lambda r: str(r.started_at)):
            for key in (("id", run.cell_id), ("name", run.name), ("source", run.source)):
                if key[1]:
                    index[key] = run  # type: ignore[index]
        return index

    def find(self, key: Key, warnings: list[str]) -> Run | None:
        """The newest run of the cell, or None (with the reason in ``warnings`` if not known)."""
        try:
            return self._index.result(timeout=WAIT).get(key)
        except FutureTimeout:
            warnings.append("the previous run of this cell was not read in time")
        except Exception as exc:
            warnings.append(f"could not read the previous run: {exc}")
        return None
