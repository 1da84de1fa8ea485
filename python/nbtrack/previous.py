"""The previous run of each cell, read from the store once per kernel and notebook.

The summary under a tracked cell compares the run with the previous run of the
same cell. Asking the store for it in every cell cost a DuckDB connection per
cell, queued behind the background ingestion, and the cell's end waited for it
(0.3-0.8 s per cell under papermill). Instead the newest run of every cell of
the notebook is read once, in the background, when the extension loads; runs of
this kernel are remembered as they end (``KernelSession.last_by_cell``). A run
that another kernel records meanwhile for the same cell is not seen by the summary
(``nbtrack diff`` sees it).

The read runs in a child process (``python -m nbtrack.previous``), not on a thread
of the kernel: it imports DuckDB and attaches the store, ~0.2 s of CPU that a thread
would take from the setup cell's own imports (one GIL, one import lock), and on two
cores the child runs beside them instead. Where no child can start, the kernel reads
the store itself on its helper thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ingest
from .client import Client
from .exceptions import NbtrackError
from .models import Run
from .project import Project

if TYPE_CHECKING:
    from .session import KernelSession

Key = tuple[str, str]
WAIT = 3.0  # seconds the summary of the first cell waits for the runs to be read
CHILD_TIMEOUT = 120.0  # seconds the child may wait its turn on a busy store
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


def remember(memory: dict[Any, Run], key: Any, run: Run) -> None:
    """Keep ``run`` as the one the cell's next run is compared with: its newest finished
    run, a failed or interrupted one only while it has none. A re-run after an error is
    compared with the run before the error, not with the error (the fourteenth trial's
    said "metric acc: added, status: failed → finished" of a run like the last good one)."""
    kept = memory.get(key)
    if kept is None or (
        (run.status == "finished", str(run.started_at))
        >= (kept.status == "finished", str(kept.started_at))
    ):
        memory[key] = run


def recall(
    memory: dict[Any, Run],
    key: tuple[Any, ...],
    name: str | None,
    store: PreviousRuns | None,
    store_key: Key,
    warnings: list[str],
) -> Run | None:
    """The run a cell is compared with: of its key (this session's, else the store's),
    else of its name. A cell the user named is that name too: cut and pasted (JupyterLab
    gives it a new id), the fourteenth trial's ``%%track tr`` said "first run of this
    cell". ``store``: None when this session's runs are all there is to ask."""
    found, said = memory.get(key), len(warnings)
    if found is None and store is not None:
        found = store.find(store_key, warnings)
    if found is None and name:
        found = memory.get((key[0], "name", name))
        if found is None and store is not None and len(warnings) == said:  # (not read in time)
            found = store.find(("name", name), warnings)
    return found


def remember_cell(memory: dict[Any, Run], key: tuple[Any, ...], name: str | None, run: Run) -> None:
    """``remember`` the run under the cell's key, and under its name if it has one."""
    remember(memory, key, run)
    if name:
        remember(memory, (key[0], "name", name), run)


class PreviousRuns:
    """The newest finished run of each cell of one notebook, loading in the background."""

    def __init__(self, client: Client, notebook_path: str | None, session_id: str) -> None:
        # The read may come after this kernel's first runs are stored (a busy store):
        # a cell's own run is not its previous one ("same as the previous run <itself>").
        self._index: Future[dict[Key, Run]] = ingest.read_in_background(
            self._load, client, notebook_path, session_id
        )
        self._wait = WAIT

    @staticmethod
    def _load(client: Client, notebook_path: str | None, session_id: str) -> dict[Key, Run]:
        if not client.project.db_path.exists():
            return {}  # a new store: nothing ran before
        index: dict[Key, Run] = {}
        runs = _read_in_child(client.project, notebook_path, session_id)
        if runs is None:
            runs = client.latest_cell_runs(notebook_path, not_session=session_id)
        for run in runs:
            for key in (("id", run.cell_id), ("name", run.name), ("source", run.source)):
                if key[1]:
                    remember(index, key, run)
        return index

    def find(self, key: Key, warnings: list[str]) -> Run | None:
        """The newest run of the cell, or None (with the reason in ``warnings`` if not known)."""
        try:
            return self._index.result(timeout=self._wait).get(key)
        except FutureTimeout:
            # Waited once: a store held for minutes (a notebook's own `duckdb.connect`)
            # cost every tracked cell these 3 s before
            self._wait = 0.0
            warnings.append("the previous run of this cell was not read in time")
        except Exception as exc:
            warnings.append(f"could not read the previous run: {exc}")
        return None


def _read_in_child(
    project: Project, notebook_path: str | None, session_id: str
) -> list[Run] | None:
    """``latest_cell_runs`` read by a child process; None when no child can start."""
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    where = [str(project.root), str(project.folder), str(project.db_path)]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "nbtrack.previous", *where, notebook_path or "", session_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NbtrackError(f"the store did not answer in {CHILD_TIMEOUT:.0f} s") from exc
    except OSError:
        return None
    try:
        answer: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return None  # not our child's answer (an odd interpreter): read here instead
    if "error" in answer:
        raise NbtrackError(answer["error"])
    return [Run.from_dict(d) for d in answer["runs"]]


def _child(argv: list[str]) -> int:
    """``python -m nbtrack.previous ROOT FOLDER DB NOTEBOOK SESSION``: print the runs as JSON."""
    root, folder, db_path, notebook_path, session_id = argv
    project = Project(root=Path(root), folder=Path(folder), db_path=Path(db_path))
    try:
        runs = Client(project).latest_cell_runs(notebook_path or None, not_session=session_id)
        answer: dict[str, Any] = {"runs": [r.to_dict() for r in runs]}
    except Exception as exc:  # what the kernel's summary says it could not read
        answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
