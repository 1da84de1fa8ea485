"""What a re-run executes: the saved notebook, or the code that actually ran (as executed).

Every run records the cells its kernel session ran before it, in execution order
(``sessioncode.py``). A re-run replays that code when the saved notebook is missing or
does not hold it in that order (cells run out of order, edited after they ran, a
plain ``papermill``/nbclient run whose notebook nbtrack never saw), and executes the
saved notebook (with the parameters injected again) when it matches what ran.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..exceptions import PipelineError, UsageError
from ..lineage import PAPERMILL_HEADER

if TYPE_CHECKING:
    from ..client import Client
    from ..models import Run
    from ..sessioncode import SessionCell

AS_EXECUTED = "as-executed"
AS_SAVED = "as-saved"
MODES = (AS_EXECUTED, AS_SAVED)


@dataclass
class Choice:
    """The mode chosen, and why (printed before the re-run starts)."""

    mode: str
    reason: str


def code_run(cells: list[Run]) -> Run | None:
    """The run whose recorded session code covers ``cells``: the last one that ran."""
    with_code = [c for c in cells if c.code_hash]
    if not with_code:
        return None
    return max(
        with_code,
        key=lambda c: (c.started_at.timestamp() if c.started_at else 0.0, c.execution_count or 0),
    )


def _saved_cells(notebook_text: str) -> list[str]:
    try:
        nb = json.loads(notebook_text)
    except ValueError:
        return []
    out = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            if src.strip():
                out.append(src.strip())
    return out


def matches_saved(code: list[SessionCell], notebook_text: str) -> bool:
    """True when the code ran, papermill's injected cell aside, is the saved notebook's
    code cells from the top, in order, and none of it raised."""
    if any(c.raised for c in code):
        return False  # the saved notebook would stop where the session went on
    ran = [c.source.strip() for c in code if not c.source.lstrip().startswith(PAPERMILL_HEADER)]
    saved = _saved_cells(notebook_text)
    return bool(ran) and ran == saved[: len(ran)]


def choose(
    requested: str | None,
    code: list[SessionCell] | None,
    notebook_text: str | None,
    original: str,
    notebook: str | None = None,
    tracked: bool = True,
) -> Choice:
    """``as-executed`` or ``as-saved`` for run ``original`` (a short id), with the reason.

    ``notebook``: the path the run records; ``tracked``: whether it ran a tracked cell
    (the code and the snapshot are kept with those)."""
    if requested == AS_EXECUTED:
        if code is None:
            raise UsageError(
                f"run {original} recorded no session code (made before nbtrack kept it?): "
                "it can only be re-run from its saved notebook"
            )
        return Choice(AS_EXECUTED, "asked for (--as-executed)")
    if requested == AS_SAVED:
        if notebook_text is None:
            instead = (
                "; without --as-saved, the rerun replays the code the run recorded"
                if code is not None
                else ""
            )
            raise UsageError(
                f"run {original} has no saved notebook to execute (plain papermill, nbclient "
                f"and jupyter execute keep none; gc prunes old ones){instead}"
            )
        return Choice(AS_SAVED, "asked for (--as-saved)")
    if code is None:
        if notebook_text is None and notebook and not tracked:
            raise PipelineError(
                f"run {original} of {notebook} ran no %%track cell, and nbtrack keeps the "
                "code a kernel ran and its notebook's snapshot with those: nothing recorded "
                f"to re-execute; `nbtrack rerun {original} --current` executes {notebook} "
                "as it is today"
            )
        if notebook_text is None:
            raise PipelineError(
                f"run {original} records no notebook path (was it made outside a notebook?) "
                "and no code it ran: nothing to re-execute"
            )
        return Choice(
            AS_SAVED, "the run recorded no session code; its saved notebook is all there is"
        )
    if notebook_text is None:
        return Choice(AS_EXECUTED, "no saved notebook was recorded (plain papermill, nbclient?)")
    if matches_saved(code, notebook_text):
        return Choice(AS_SAVED, "the saved notebook holds exactly the code that ran, in order")
    return Choice(
        AS_EXECUTED,
        "the code that ran differs from the saved notebook (cells run out of order, or edited)",
    )


def replay_notebook(
    code: list[SessionCell],
    overrides: Mapping[str, Any],
    kernel_name: str,
    defaults: Collection[str] = (),
) -> str:
    """A notebook of the recorded cells, one code cell each, with ``overrides`` applied.

    A cell that raised in the session is tagged ``raises-exception``: it raises again
    and the replay goes on, as the session did. Overrides go into papermill's injected
    cell when the code has one, else into a ``# Parameters`` cell right after the first
    cell assigning one of them. The cell just before that one is tagged ``parameters``,
    as papermill places its cell after the defaults: the re-run's notebook run holds
    them, as the original's did. With neither, the first cell assigning all the
    ``defaults`` (names the original held as such: papermill given no parameters) is.
    """
    import nbformat

    from ..capture import literal_assignments

    cells = [c.source for c in code]
    raised = [c.raised for c in code]
    if overrides:
        lines = "".join(f"{k} = {v!r}\n" for k, v in overrides.items())
        injected = next(
            (i for i, c in enumerate(cells) if c.lstrip().startswith(PAPERMILL_HEADER)), None
        )
        if injected is not None:
            cells[injected] = cells[injected].rstrip("\n") + "\n" + lines
        else:
            at = next(
                (i for i, c in enumerate(cells) if set(literal_assignments(c)) & set(overrides)),
                None,
            )
            if at is None:
                names = ", ".join(sorted(overrides))
                raise UsageError(
                    f"no cell of the code that ran assigns {names}: nowhere to override it; "
                    "re-run the saved notebook (--as-saved) instead"
                )
            cells.insert(at + 1, f"{PAPERMILL_HEADER}\n{lines}")
            raised.insert(at + 1, False)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    for cell, did_raise in zip(nb.cells, raised, strict=True):
        if did_raise:
            cell.metadata["tags"] = ["raises-exception"]
    header = next((i for i, c in enumerate(cells) if c.lstrip().startswith(PAPERMILL_HEADER)), 0)
    if header == 0 and defaults:
        at = next(
            (i for i, c in enumerate(cells) if {*defaults} <= set(literal_assignments(c))), -1
        )
        header = at + 1
    if header > 0:
        nb.cells[header - 1].metadata.setdefault("tags", []).append("parameters")
    text: str = nbformat.writes(nb)
    return text


def recorded_code(client: Client, cells: list[Run]) -> list[SessionCell] | None:
    """The session code of the last of ``cells`` that recorded one, or None."""
    from ..sessioncode import read_code

    run = code_run(cells)
    if run is None or run.code_hash is None:
        return None
    return read_code(client.cache, run.code_hash)
