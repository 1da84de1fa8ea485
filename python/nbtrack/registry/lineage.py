"""Where a model version comes from and who used it; what differs between two versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import Run
from .values import AliasMove, ModelVersion

if TYPE_CHECKING:
    from ..client import Client
    from ..rundiff import RunDiff

MAX_DEPTH = 10  # data versions followed back at most this many runs


@dataclass
class Upstream:
    """A run that wrote a data version some later run of the lineage read."""

    run: Run
    path: str
    hash: str
    depth: int  # 1: wrote an input of the producing run; 2: of that run's producer...

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "name": self.run.name,
            "notebook_path": self.run.notebook_path,
            "status": self.run.status,
            "path": self.path,
            "hash": self.hash,
            "depth": self.depth,
        }


@dataclass
class Lineage:
    """A version, the run that made it, the runs upstream of its data, the runs that read it."""

    version: ModelVersion
    run: Run | None
    upstream: list[Upstream] = field(default_factory=list)
    readers: list[Run] = field(default_factory=list)
    history: list[AliasMove] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.to_dict(),
            "run": self.run.to_dict() if self.run else None,
            "upstream": [u.to_dict() for u in self.upstream],
            "readers": [
                {
                    "run_id": r.run_id,
                    "name": r.name,
                    "notebook_path": r.notebook_path,
                    "status": r.status,
                    "metrics": r.metrics,
                }
                for r in self.readers
            ],  # fmt: skip
            "alias_history": [m.to_dict() for m in self.history],
        }


def build_lineage(
    mv: ModelVersion,
    run: list[Run],
    upstream: list[tuple[Run, str, str, int]],
    readers: list[Run],
    history: list[AliasMove],
) -> Lineage:
    """A version's lineage from what ``Store.model_lineage`` read."""
    return Lineage(
        mv,
        run[0] if run else None,
        [Upstream(r, path, digest, depth) for r, path, digest, depth in upstream],
        readers,
        history,
    )


@dataclass
class ModelDiff:
    """Two versions compared: their producing runs' diff, signature, size, flavor, bytes."""

    a: ModelVersion
    b: ModelVersion
    run_diff: RunDiff | None
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes) or bool(self.run_diff)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": f"{self.a.name}/{self.a.version}",
            "b": f"{self.b.name}/{self.b.version}",
            "changes": [{"what": w, "a": x, "b": y} for w, x, y in self.changes],
            "run_diff": self.run_diff.to_dict() if self.run_diff is not None else None,
        }


def _columns(schema: list[dict[str, Any]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, col in enumerate(schema or []):
        if col.get("type") == "tensor":
            spec = col.get("tensor-spec", {})
            out[col.get("name") or f"tensor {i}"] = f"{spec.get('dtype')} {spec.get('shape')}"
        else:
            out[col.get("name") or f"column {i}"] = str(col.get("type"))
    return out


def diff_versions(client: Client, a: ModelVersion, b: ModelVersion) -> ModelDiff:
    changes: list[tuple[str, Any, Any]] = []
    for what, x, y in (
        ("flavor", a.flavor, b.flavor),
        ("bytes", a.hash, b.hash),
        ("size", a.size, b.size),
        ("library", a.env.get("library_version"), b.env.get("library_version")),
    ):
        if x != y:
            changes.append((what, x, y))
    for part in ("inputs", "outputs"):
        ca = _columns((a.signature or {}).get(part))
        cb = _columns((b.signature or {}).get(part))
        for key in sorted(set(ca) | set(cb), key=str):
            if ca.get(key) != cb.get(key):
                changes.append((f"signature {part} {key}", ca.get(key), cb.get(key)))
    run_diff = None
    if a.run_id and b.run_id and a.run_id != b.run_id:
        found = {r.run_id for r in client.runs_by_id([a.run_id, b.run_id], with_env=False)}
        if found == {a.run_id, b.run_id}:
            run_diff = client.diff(a.run_id, b.run_id)
    return ModelDiff(a, b, run_diff, changes)
