"""Drift reports: a path across its recorded versions, two runs' inputs, diffs and alerts.

Profiles are read from the store in one query; a version whose stored profile
predates drift sketches is profiled again from its bytes (cache or live file) once,
and the new profile replaces the old one. A version whose bytes are gone and whose
profile has no sketch is reported as such, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .drift import TableDrift, compare
from .driftbatch import compare_many
from .driftflags import Thresholds
from .exceptions import CacheError, NbtrackError, UsageError
from .models import DataVersion, Run, iso

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .datacompare import VersionSource

    class Client(VersionSource, Protocol):
        """What drift needs from the client (the client, without importing it)."""

        def path_versions(self, path: str) -> list[tuple[str, Any, Any]]: ...
        def get_profiles(self, digests: Sequence[str]) -> dict[str, dict[str, Any]]: ...
        def resolve(self, ref: str, kind: str | None = None) -> str: ...
        def get_run(self, ref: str) -> Run: ...
        def get_runs(self, refs: Sequence[str]) -> list[Run]: ...


ROW_COLUMNS = ["version", "column", "psi", "ks", "ks p", "js", "chi2 p", "nulls", "drift"]
ALERT_MAX_BYTES = 200 * 1024 * 1024  # inputs larger than this are not profiled at cell end


@dataclass
class VersionDrift:
    """One version of a path against the reference version."""

    path: str
    run_id: str | None
    started: datetime | None
    hash: str | None
    runs: int = 1
    drift: TableDrift | None = None
    note: str | None = None  # why there is no comparison
    reference: bool = False
    kind: str = "file"

    @property
    def label(self) -> str:
        head = self.run_id[:8] if self.run_id else (self.hash or "?")[:8]
        return head + (" (ref)" if self.reference else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "run_id": self.run_id,
            "started": iso(self.started),
            "hash": self.hash,
            "runs": self.runs,
            "reference": self.reference,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "note": self.note,
        }


@dataclass
class DriftReport:
    """What ``nbtrack drift`` prints: versions of one or more paths against a reference."""

    title: str
    thresholds: Thresholds
    versions: list[VersionDrift] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "thresholds": self.thresholds.__dict__,
            "versions": [v.to_dict() for v in self.versions],
            "drifted": any(v.drift for v in self.versions),
        }

    def header(self) -> list[str]:
        return [self.title]

    def rows(self, all_columns: bool = False) -> list[list[Any]]:
        out: list[list[Any]] = []
        multi = len({v.path for v in self.versions}) > 1
        for v in self.versions:
            label = f"{v.path} {v.label}" if multi else v.label
            if v.reference:
                if multi and sum(1 for x in self.versions if x.path == v.path) == 1:
                    out.append([label, "", None, None, None, None, None, None, "one version"])
                continue
            if v.drift is None:
                out.append(
                    [label, "", None, None, None, None, None, None, v.note or "not compared"]
                )
                continue
            d = v.drift
            for name in d.columns_added:
                out.append([label, name, None, None, None, None, None, None, "column added"])
            for name in d.columns_removed:
                out.append([label, name, None, None, None, None, None, None, "column removed"])
            shown = 0
            for c in d.columns:
                if not (all_columns or c.drifted or c.type != c.type_ref):
                    continue
                shown += 1
                flag = ", ".join(c.flags) if c.flags else ""
                if c.type != c.type_ref:
                    flag = f"type {c.type_ref} → {c.type}" + (f"; {flag}" if flag else "")
                nulls = f"{c.null_ref:.1%} → {c.null:.1%}"
                out.append(
                    [
                        label,
                        c.name,
                        c.psi,
                        c.ks,
                        c.ks_p,
                        c.js,
                        c.chi2_p,
                        nulls,
                        flag or c.note or "-",
                    ]
                )
            if not shown and not d.columns_added and not d.columns_removed:
                out.append([label, "", None, None, None, None, None, None, "no drift"])
        return out

    def footer(self) -> list[str]:
        drifted = [v for v in self.versions if v.drift]
        compared = [v for v in self.versions if v.drift is not None]
        return [f"{len(drifted)} of {len(compared)} version(s) drifted from the reference"]


# ---------------------------------------------------------------- profiles with sketches
def _with_sketches(
    client: Client, version: DataVersion, known: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The version's profile with drift sketches, or None and why not."""
    if known is not None and "drift" in known:
        return known, None
    from .datacompare import _source_for
    from .profile import profile_file, tabular_format

    fmt = tabular_format(version.path)
    if version.kind != "file" or fmt is None:
        if version.kind == "dataframe":
            return None, "logged before drift sketches existed"
        return None, "not a table (CSV, TSV, Parquet or JSON lines)"
    source = _source_for(client, version)
    if source is None:
        return None, "its bytes are gone (not cached, or pruned) and its profile has no sketch"
    try:
        profile = profile_file(source, fmt)
    except NbtrackError as exc:
        return None, str(exc)
    assert version.hash is not None
    client.put_profile(version.hash, profile)
    return profile, None


def _tables_of(client: Client, version: DataVersion) -> list[DataVersion]:
    """A folder version as the versions of the tables in it; any other version as itself."""
    if version.kind != "dir":
        return [version]
    from .profile import tabular_format

    try:
        entries = client.cache.read_manifest(version.hash or "")
    except CacheError:
        return []
    base = version.path.rstrip("/")
    return [
        DataVersion(f"{base}/{e.path}", version.role, e.hash, e.size, "file", version.in_project)
        for e in entries
        if tabular_format(e.path) is not None
    ]


# ---------------------------------------------------------------- a path across versions
def drift_path(
    client: Client, path: str, *, ref: str | None = None, thresholds: Thresholds | None = None
) -> DriftReport:
    """Every recorded version of ``path`` (oldest first) against the reference version."""
    t = thresholds or Thresholds()
    recorded = path
    found = client.path_versions(path)
    if not found:
        recorded, _ = client.project.relative(path)
        found = client.path_versions(recorded)
    if not found:
        raise UsageError(f"no run recorded {path!r}: drift needs a path some run read or wrote")
    # One entry per distinct content, in order of first sight; folders become their tables.
    series: dict[str, list[VersionDrift]] = {}
    for run_id, started, version in found:
        for table in _tables_of(client, version):
            entries = series.setdefault(table.path, [])
            same = next((e for e in entries if e.hash == table.hash), None)
            if same is not None:
                same.runs += 1
            else:
                entries.append(
                    VersionDrift(table.path, run_id, started, table.hash, kind=table.kind)
                )
    if found[0][2].kind == "dir" and not series:
        raise UsageError(f"{recorded} holds no table (CSV, TSV, Parquet or JSON lines)")
    hashes = [e.hash for entries in series.values() for e in entries if e.hash]
    stored = client.get_profiles(sorted(set(hashes)))
    report = DriftReport(f"drift of {recorded}", t)
    for table_path, entries in series.items():
        if len(entries) < 2 and len(series) == 1:
            raise UsageError(
                f"{table_path} has one recorded version: drift needs two (record another run)"
            )
        base = _pick_reference(client, entries, ref)
        profiles: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for e in entries:
            if e.hash and e.hash not in profiles:
                v = DataVersion(table_path, "input", e.hash, None, e.kind)
                profiles[e.hash] = _with_sketches(client, v, stored.get(e.hash))
        ref_profile, why = profiles.get(base.hash or "", (None, "no hash"))
        if ref_profile is None and len(series) == 1:
            raise UsageError(f"cannot compare versions of {table_path}: {why}")
        base.reference = True
        todo: list[tuple[VersionDrift, dict[str, Any]]] = []
        for e in entries:
            p, why = profiles.get(e.hash or "", (None, "no hash"))
            if e is base:
                pass
            elif p is None or ref_profile is None:
                e.note = why if p is None else "the reference version has no profile"
            else:
                todo.append((e, p))
            report.versions.append(e)
        if ref_profile is not None and todo:
            # every version against the one reference: numeric columns in one pass each
            for (e, _), d in zip(
                todo, compare_many(ref_profile, [p for _, p in todo], t), strict=True
            ):
                e.drift = d
    if report.versions:
        ref_entry = next(v for v in report.versions if v.reference)
        when = ref_entry.started.strftime("%Y-%m-%d %H:%M") if ref_entry.started else "?"
        runs = sum(v.runs for v in report.versions)
        digest = (ref_entry.hash or "").split(":")[-1][:12]
        report.title += (
            f": {len(report.versions)} version(s) in {runs} run(s), reference "
            f"{ref_entry.label.split()[0]} (hash {digest}, {when})"
        )
    return report


def _pick_reference(client: Client, entries: list[VersionDrift], ref: str | None) -> VersionDrift:
    if ref is None:
        return entries[0]
    by_hash = [e for e in entries if e.hash and e.hash.startswith(ref.lower())]
    if len(by_hash) == 1:
        return by_hash[0]
    run_id = client.resolve(ref)
    for e in entries:
        if e.run_id == run_id:
            return e
    run = client.get_run(run_id)
    for d in run.data:
        match = next((e for e in entries if e.hash == d.hash), None)
        if match is not None:
            return match
    raise UsageError(f"{ref!r} is neither a recorded version's hash nor a run that saw this path")


# ---------------------------------------------------------------- two runs, diffs, alerts
def _pair(
    client: Client, a: DataVersion, b: DataVersion, t: Thresholds
) -> tuple[TableDrift | None, str | None]:
    stored = client.get_profiles([h for h in (a.hash, b.hash) if h])
    pa, why_a = _with_sketches(client, a, stored.get(a.hash or ""))
    pb, why_b = _with_sketches(client, b, stored.get(b.hash or ""))
    if pa is None or pb is None:
        return None, why_a or why_b
    return compare(pa, pb, t), None


def drift_runs(client: Client, a: str, b: str, thresholds: Thresholds | None = None) -> DriftReport:
    """The tabular inputs of run ``b`` against the same paths in run ``a``."""
    t = thresholds or Thresholds()
    ra, rb = client.get_runs([a, b])
    report = DriftReport(f"drift of the inputs of {rb.short_id} against {ra.short_id}", t)
    before = {d.path: d for d in ra.inputs}
    for d in rb.inputs:
        old = before.get(d.path)
        if old is None:
            continue
        for x, y in _table_pairs(client, old, d):
            entry = VersionDrift(x.path, rb.run_id, rb.started_at, y.hash)
            if x.hash == y.hash:
                entry.note = "same version"
            else:
                entry.drift, entry.note = _pair(client, x, y, t)
            report.versions.append(entry)
    if not report.versions:
        raise UsageError(f"runs {ra.short_id} and {rb.short_id} read no table in common")
    return report


def _table_pairs(
    client: Client, a: DataVersion, b: DataVersion
) -> list[tuple[DataVersion, DataVersion]]:
    from .profile import tabular_format

    if a.kind == "dir" and b.kind == "dir":
        old = {v.path: v for v in _tables_of(client, a)}
        return [(old[v.path], v) for v in _tables_of(client, b) if v.path in old]
    if a.kind == b.kind == "dataframe" or (
        a.kind == b.kind == "file" and tabular_format(b.path) is not None
    ):
        return [(a, b)]
    return []


def annotate(client: Client, a: DataVersion, b: DataVersion, detail: dict[str, Any]) -> None:
    """Add drift flags to a data diff's detail (and its summary lines), where both sides
    are tables with profiles."""
    if detail.get("kind") != "table" or detail.get("missing"):
        return
    t = Thresholds()
    drift, _ = _pair(client, a, b, t)
    if drift is None:
        return
    detail["drift"] = drift.to_dict()
    flagged = [c.describe(t) for c in drift.drifted]
    if flagged:
        detail.setdefault("summary", []).append("drift: " + "; ".join(flagged))


def alerts(client: Client, previous: Run | None, run: Run) -> list[str]:
    """One line per input of ``run`` that drifted past a threshold since ``previous``."""
    if previous is None:
        return []
    t = Thresholds()
    before = {d.path: d for d in previous.inputs}
    out = []
    for d in run.inputs:
        old = before.get(d.path)
        if old is None or old.hash == d.hash or (d.size or 0) > ALERT_MAX_BYTES:
            continue
        for x, y in _table_pairs(client, old, d):
            try:
                drift, _ = _pair(client, x, y, t)
            except NbtrackError:
                continue
            if drift:
                lines = drift.lines(t)
                out.append(f"input {y.path} drifted since {previous.short_id}: " + "; ".join(lines))
    return out


DRIFT_METRICS = ("columns", "schema_changes", "max_psi", "min_ks_p", "max_js", "min_chi2_p")


def input_drift(client: Client, run: Run) -> dict[str, float]:
    """What a gate reads as ``drift.*``: the newest recorded version of each table the
    run read, against the version it read (for a model: its training data today).

    ``drift.columns`` drifted columns, ``drift.schema_changes`` tables whose columns
    changed, ``drift.max_psi`` / ``drift.max_js`` the largest PSI / JS distance,
    ``drift.min_ks_p`` / ``drift.min_chi2_p`` the smallest p-values (1 when nothing
    was compared). Raises ``UsageError`` when the run read no table.
    """
    t = Thresholds()
    tables, drifts = 0, []
    for read in run.inputs:
        newest = next((v for _, _, v in reversed(client.path_versions(read.path)) if v.hash), read)
        for x, y in _table_pairs(client, read, newest):
            tables += 1
            if x.hash != y.hash:
                drift, _ = _pair(client, x, y, t)
                if drift is not None:
                    drifts.append(drift)
    if not tables:
        raise UsageError(f"run {run.short_id} read no table: it has no drift.* values to gate on")
    cols = [c for d in drifts for c in d.columns]

    def pick(fn: Any, values: list[float | None], empty: float) -> float:
        found = [v for v in values if v is not None]
        return float(fn(found)) if found else empty

    values = {
        "columns": float(sum(len(d.drifted) for d in drifts)),
        "schema_changes": float(sum(1 for d in drifts if d.schema_changed)),
        "max_psi": pick(max, [c.psi for c in cols], 0.0),
        "min_ks_p": pick(min, [c.ks_p for c in cols], 1.0),
        "max_js": pick(max, [c.js for c in cols], 0.0),
        "min_chi2_p": pick(min, [c.chi2_p for c in cols], 1.0),
    }
    return {f"drift.{k}": v for k, v in values.items()}
