"""Is a notebook stale? Its current file and data against what its newest finished run recorded.

A notebook is stale when, since its current run (``dag.Stage``):

- its **code** changed: the code cells (the ``parameters`` cell and papermill's injected
  cell aside) differ from the snapshot the run executed. Outputs, markdown and
  metadata do not count;
- its **parameters** changed: an assignment of its ``parameters`` cell was edited,
  added or removed;
- an **input** no longer matches the version the run read (changed, or gone);
- an **output** it alone writes was changed or deleted since (what ``dvc status``
  calls a modified out), so ``repro`` brings it back;
- or a notebook **upstream** of it is stale.

The common case costs no parsing at all: the notebook's bytes hash to the recorded
snapshot, and data files are looked up in the stat cache the kernels keep.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import NbtrackError, UsageError
from ..hashing import StatCache, hash_bytes
from .parameters import inspect_parameters, read_notebook

if TYPE_CHECKING:
    from ..cache import Cache
    from ..models import DataVersion
    from ..project import Project
    from .dag import Dag, Stage

# Cells that are not the notebook's code: papermill's injected values, and the defaults
# (compared as parameters, so an edited default reads as a parameter change).
_NOT_CODE_TAGS = frozenset({"parameters", "injected-parameters"})


@dataclass
class Assessment:
    """What ``repro`` knows about one notebook before executing anything."""

    notebook: str
    run_id: str
    stale: bool
    reasons: list[str]
    """Why it is stale; or, for an up-to-date notebook, the one reason it is."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """What a re-execution injects: the run's injected values the notebook did not change."""
    notebook_text: str | None = None
    """The notebook as read now (what a re-execution executes); None when the file is gone."""
    kernel_name: str | None = None
    """The notebook's own kernelspec name, when it names one."""

    @property
    def gone(self) -> bool:
        return self.notebook_text is None

    def to_dict(self) -> dict[str, Any]:
        from ..models import json_value

        return {
            "notebook": self.notebook,
            "run_id": self.run_id,
            "stale": self.stale,
            "reasons": list(self.reasons),
            "parameters": json_value(self.parameters),
        }


def _short(digest: str | None) -> str:
    if not digest:
        return "none"
    return digest.split(":", 1)[-1][:8]


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _code_cells(nb: dict[str, Any]) -> list[str]:
    out = []
    for cell in nb.get("cells", []):
        tags = set((cell.get("metadata") or {}).get("tags") or [])
        if cell.get("cell_type") == "code" and not tags & _NOT_CODE_TAGS:
            out.append(_source(cell).rstrip())
    return out


def _kernel_name(nb: dict[str, Any]) -> str | None:
    spec = (nb.get("metadata") or {}).get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else None


def _code_reason(old: list[str], new: list[str]) -> str | None:
    if old == new:
        return None
    changed = sum(
        max(i2 - i1, j2 - j1)
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes()
        if op != "equal"
    )
    return f"code changed since its last run ({changed} code cell(s) edited, added or removed)"


def _parameter_reasons(old: dict[str, str], new: dict[str, str]) -> tuple[list[str], set[str]]:
    """Reasons for edited, added and removed defaults, and the names they concern."""
    reasons: list[str] = []
    changed: set[str] = set()
    for name in sorted(set(old) | set(new)):
        if name not in new:
            reasons.append(f"parameter {name} was removed from the parameters cell")
        elif name not in old:
            reasons.append(f"parameter {name} was added: {new[name]}")
        elif old[name].strip() != new[name].strip():
            reasons.append(f"parameter {name}: {old[name]} -> {new[name]} in the parameters cell")
        else:
            continue
        changed.add(name)
    return reasons, changed


class Assessor:
    """Assesses the notebooks of one project; one stat cache for all of them."""

    def __init__(self, project: Project, cache: Cache) -> None:
        self.project = project
        self.cache = cache
        self.stat_cache = StatCache.for_folder(project.folder)

    def current_hash(self, recorded: DataVersion) -> str | None:
        """The hash of ``recorded.path`` as it is now, None when it is gone."""
        path = self.project.absolute(recorded.path)
        try:
            if path.is_dir():
                from ..versioning import version_path

                found = version_path(
                    self.project, path, "input", cache=None, stat_cache=self.stat_cache
                )
                return found.hash
            return self.stat_cache.hash(path).hash
        except (FileNotFoundError, NotADirectoryError, UsageError):
            return None
        except PermissionError:
            return "unreadable"

    def _data_reasons(self, stage: Stage, dag: Dag) -> list[str]:
        reasons = []
        for path, version in sorted(stage.inputs.items()):
            now = self.current_hash(version)
            if now is None:
                reasons.append(f"input {path} is missing")
            elif now != version.hash:
                reasons.append(
                    f"input {path} changed since its last run "
                    f"({_short(version.hash)} -> {_short(now)})"
                )
        for path, version in sorted(stage.outputs.items()):
            if dag.producers(path) != [stage.notebook]:
                continue  # written by several notebooks: none of them owns its current bytes
            now = self.current_hash(version)
            if now is None:
                reasons.append(f"output {path} is missing")
            elif now != version.hash:
                reasons.append(f"output {path} was changed since its last run")
        return reasons

    def assess(self, stage: Stage, dag: Dag) -> Assessment:
        """Stage ``stage`` as it stands now (upstream staleness is the caller's: see ``assess_all``)."""
        run = stage.run
        path = self.project.absolute(stage.notebook)
        injected = {k: v for k, v in run.params.items() if run.param_sources.get(k) == "papermill"}
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return Assessment(
                stage.notebook,
                run.run_id,
                False,
                ["the notebook file is gone: its recorded outputs are taken as they are"],
            )
        reasons: list[str] = []
        nb = read_notebook(text, stage.notebook)
        kernel = _kernel_name(nb)
        same_file = (
            stage.head.snapshot is not None and hash_bytes(text.encode()) == stage.head.snapshot
        )
        if not same_file:
            declared = inspect_parameters(nb)
            old_nb = self._snapshot(stage.head.snapshot)
            if old_nb is None:
                reasons.append(
                    "the notebook changed since its last run (its recorded snapshot is not "
                    "in the cache to tell code from outputs)"
                )
                changed: set[str] = set()
            else:
                code = _code_reason(_code_cells(old_nb), _code_cells(nb))
                reasons += [code] if code else []
                params, changed = _parameter_reasons(
                    inspect_parameters(old_nb).defaults, declared.defaults
                )
                reasons += params
            if declared.has_parameters_cell:
                # An edited default wins over the value injected last time (the notebook
                # is the truth); an injected name the cell no longer declares is dropped.
                injected = {
                    k: v for k, v in injected.items() if k in declared.names and k not in changed
                }
        reasons += self._data_reasons(stage, dag)
        if not reasons:
            n_in = len(stage.inputs)
            what = "code, parameters and inputs" if n_in else "code and parameters"
            note = "" if same_file else " (only outputs or markdown changed in the notebook)"
            reasons = [f"up to date with run {run.short_id}: same {what}{note}"]
            return Assessment(stage.notebook, run.run_id, False, reasons, injected, text, kernel)
        return Assessment(stage.notebook, run.run_id, True, reasons, injected, text, kernel)

    def _snapshot(self, digest: str | None) -> dict[str, Any] | None:
        if not digest:
            return None
        try:
            return dict(json.loads(self.cache.read_bytes(digest).decode("utf-8")))
        except (NbtrackError, ValueError, UnicodeDecodeError, TypeError):
            return None

    def assess_all(self, dag: Dag, order: list[str], force: bool = False) -> dict[str, Assessment]:
        """Every notebook of ``order`` (upstream first), a stale upstream making its downstream stale."""
        out: dict[str, Assessment] = {}
        try:
            for name in order:
                found = self.assess(dag.stages[name], dag)
                stale_up = [u for u in dag.upstream(name) if u in out and out[u].stale]
                if stale_up and not found.gone:
                    if not found.stale:
                        found.reasons = []
                    found.stale = True
                    found.reasons += [f"upstream {u} is stale" for u in stale_up]
                if force and not found.stale and not found.gone:
                    found.stale = True
                    found.reasons = ["forced: re-run whatever its state"]
                out[name] = found
        finally:
            self.stat_cache.save()
        return out
