"""The data diff: what changed between two versions of a table or a folder.

Two versions of a tabular file (or two logged DataFrames) compare by their profiles
(``profile.py``): rows, columns added / removed / retyped, per-column statistics.
Profiles are computed once per content hash and kept in the store (``profiles``
table) through the client, so comparing the same versions again is a lookup. Two
versions of a folder compare by their manifests: files added, removed, modified.
Two versions of a YAML, JSON or TOML settings file compare by their keys
(``configdiff.py``).

The client's ``data_detail`` calls ``compare_versions`` for each data change of a
run diff; this module knows the client only as a :class:`VersionSource`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .configdiff import compare_configs, config_format
from .exceptions import CacheError, NbtrackError
from .hashing import StatCache
from .profile import PROFILE_FORMAT, profile_file, tabular_format

if TYPE_CHECKING:
    from .cache import Cache
    from .models import DataVersion
    from .project import Project


class VersionSource(Protocol):
    """Where versions' bytes and stored profiles come from (the client)."""

    @property
    def project(self) -> Project: ...

    @property
    def cache(self) -> Cache: ...

    def get_profile(self, digest: str) -> dict[str, Any] | None: ...

    def put_profile(self, digest: str, profile: dict[str, Any]) -> None: ...


def _source_for(source: VersionSource, version: DataVersion) -> Path | None:
    """Where the bytes of ``version`` can be read: the cached blob, or the file itself
    when it still has that hash."""
    digest = version.hash
    if not digest:
        return None
    blob = source.cache.path_for(digest)
    if blob.is_file():
        return blob
    live = source.project.absolute(version.path)
    if live.is_file() and StatCache.for_folder(source.project.folder).hash(live).hash == digest:
        return live
    return None


def profile_version(source: VersionSource, version: DataVersion) -> dict[str, Any] | None:
    """The stored profile of a version, computed (and stored) on first use.

    None when the version is not tabular or its bytes are gone (not cached, pruned).
    """
    if version.hash is None:
        return None
    known = source.get_profile(version.hash)
    if known is not None and known.get("profile_format") == PROFILE_FORMAT:
        return known
    fmt = tabular_format(version.path)
    if fmt is None or version.kind != "file":
        return None
    readable = _source_for(source, version)
    if readable is None:
        return None
    try:
        profile = profile_file(readable, fmt)
    except NbtrackError:
        return None
    source.put_profile(version.hash, profile)
    return profile


def _delta(a: Any, b: Any) -> Any:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return b - a
    return None


STAT_KEYS = ("null_fraction", "distinct", "min", "max", "mean")


def compare_profiles(pa: dict[str, Any], pb: dict[str, Any]) -> dict[str, Any]:
    """What changed between two profiles: rows, columns added / removed / retyped,
    and per-column statistics with their change."""
    cols_a = {c["name"]: c for c in pa["columns"]}
    cols_b = {c["name"]: c for c in pb["columns"]}
    added = [n for n in cols_b if n not in cols_a]
    removed = [n for n in cols_a if n not in cols_b]
    retyped = [
        {"name": n, "a": cols_a[n]["type"], "b": cols_b[n]["type"]}
        for n in cols_a
        if n in cols_b and cols_a[n]["type"] != cols_b[n]["type"]
    ]
    columns: list[dict[str, Any]] = []
    for name in [n for n in cols_b if n in cols_a]:
        ca, cb = cols_a[name], cols_b[name]
        stats = {}
        for key in STAT_KEYS:
            if key in ca or key in cb:
                va, vb = ca.get(key), cb.get(key)
                stats[key] = {"a": va, "b": vb, "delta": _delta(va, vb), "changed": va != vb}
        columns.append(
            {
                "name": name,
                "type": cb["type"],
                "changed": any(s["changed"] for s in stats.values()) or ca["type"] != cb["type"],
                "stats": stats,
            }
        )
    rows_a, rows_b = pa["rows"], pb["rows"]
    result = {
        "kind": "table",
        "format": pb.get("format"),
        "rows": {"a": rows_a, "b": rows_b, "delta": rows_b - rows_a},
        "columns_added": added,
        "columns_removed": removed,
        "columns_retyped": retyped,
        "columns": columns,
        "changed": bool(
            added or removed or retyped or rows_a != rows_b or any(c["changed"] for c in columns)
        ),
    }
    result["summary"] = _summary(result)
    return result


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _summary(diff: dict[str, Any]) -> list[str]:
    """The diff as a few human lines (what the CLI and the panel print)."""
    rows = diff["rows"]
    lines = [f"rows {rows['a']} → {rows['b']} ({rows['delta']:+d})"]
    if diff["columns_added"]:
        lines.append("columns added: " + ", ".join(diff["columns_added"]))
    if diff["columns_removed"]:
        lines.append("columns removed: " + ", ".join(diff["columns_removed"]))
    for r in diff["columns_retyped"]:
        lines.append(f"{r['name']}: type {r['a']} → {r['b']}")
    for col in diff["columns"]:
        moved = []
        for key, stat in col["stats"].items():
            if not stat["changed"]:
                continue
            label = "nulls" if key == "null_fraction" else key
            if key == "null_fraction":
                moved.append(f"{label} {stat['a']:.1%} → {stat['b']:.1%}")
            else:
                moved.append(f"{label} {_short(stat['a'])} → {_short(stat['b'])}")
        if moved:
            lines.append(f"{col['name']}: " + ", ".join(moved))
    return lines


def compare_versions(
    source: VersionSource, a: DataVersion, b: DataVersion
) -> dict[str, Any] | None:
    """The data diff of two versions of a tabular file or of a folder; None otherwise.

    Every result has ``summary``: a few human lines to print. When one side's bytes
    are gone, the result says so (``"missing": ["a"]``) instead of inventing a
    comparison.
    """
    tabular = (a.kind == "dataframe" and b.kind == "dataframe") or (
        a.kind == "file"
        and b.kind == "file"
        and tabular_format(a.path) is not None
        and tabular_format(b.path) is not None
    )
    if a.kind == "dir" and b.kind == "dir":
        return compare_folders(source.cache, a, b)
    fmt = config_format(a.path) if a.kind == b.kind == "file" else None
    if not tabular and fmt is not None and fmt == config_format(b.path):
        ra, rb = _source_for(source, a), _source_for(source, b)
        return compare_configs(ra, rb, fmt) if ra is not None and rb is not None else None
    if not tabular:
        return None
    pa, pb = profile_version(source, a), profile_version(source, b)
    if pa is None or pb is None:
        missing = [side for side, p in (("a", pa), ("b", pb)) if p is None]
        return {
            "kind": "table",
            "missing": missing,
            "reason": "the bytes of that version are not in the cache and the file has changed",
            "summary": [f"no profile for version {' and '.join(missing)}: its bytes are gone"],
        }
    return compare_profiles(pa, pb)


def compare_folders(
    cache: Cache, a: DataVersion, b: DataVersion, limit: int = 50
) -> dict[str, Any]:
    """Files added, removed and modified between two folder versions (from their
    manifests; at most ``limit`` names per list, with full counts)."""
    try:
        files_a = {e.path: e for e in cache.read_manifest(a.hash or "")}
        files_b = {e.path: e for e in cache.read_manifest(b.hash or "")}
    except CacheError:
        return {
            "kind": "folder",
            "missing": [v for v, d in (("a", a), ("b", b)) if not cache.has(d.hash or "")],
            "summary": ["the folder's file list is not in the cache (never cached, or pruned)"],
        }
    added = sorted(set(files_b) - set(files_a))
    removed = sorted(set(files_a) - set(files_b))
    modified = sorted(p for p in set(files_a) & set(files_b) if files_a[p].hash != files_b[p].hash)
    counts = {"added": len(added), "removed": len(removed), "modified": len(modified)}
    summary = [
        f"files: {len(files_a)} → {len(files_b)}; "
        + ", ".join(f"{n} {what}" for what, n in counts.items() if n)
    ]
    for what, names in (("added", added), ("removed", removed), ("modified", modified)):
        if names:
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            summary.append(f"{what}: " + ", ".join(names[:10]) + more)
    return {
        "kind": "folder",
        "files": {"a": len(files_a), "b": len(files_b), "delta": len(files_b) - len(files_a)},
        "counts": counts,
        "added": added[:limit],
        "removed": removed[:limit],
        "modified": modified[:limit],
        "summary": summary,
    }
