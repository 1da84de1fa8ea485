"""``nbtrack doctor``: check the store, the spools and the cache; repair what is safe.

Every check is a ``Finding``: ``ok``, ``warning`` (worth knowing, nothing to repair),
``problem`` (something is wrong) or ``repaired`` (``repair=True`` fixed it). Repairs
never delete what a user may need: a bad store file or write-ahead log is renamed
aside, a corrupt blob moved to ``<blob>.corrupt``, spools of dead processes ingested.
Only temporary files of writers that died mid-write are removed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import NbtrackError, NotAStoreError, StoreDamagedError, StoreError
from .project import folder_problem

if TYPE_CHECKING:
    from .client import Client

OK, WARNING, PROBLEM, REPAIRED = "ok", "warning", "problem", "repaired"


@dataclass
class Finding:
    """One check and what it found."""

    area: str  # store | spool | cache
    check: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """Every finding of one examination; healthy when none is a problem."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.status != PROBLEM for f in self.findings)

    def add(self, area: str, check: str, status: str, detail: str) -> None:
        self.findings.append(Finding(area, check, status, detail))

    def to_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "findings": [f.to_dict() for f in self.findings]}


def examine(client: Client, *, repair: bool = False) -> Report:
    """Check (and with ``repair`` fix what is safe to fix in) a project's store folder."""
    report = Report()
    project = client.project
    problem = folder_problem(project.folder)
    if problem:
        report.add("store", "folder", PROBLEM, problem)
        return report
    store_ok = _check_store(client, report, repair)
    if _spool_folder_ok(project.spool_dir, report, repair):
        _check_spools(client, report, repair, store_ok)
    _check_cache(client, report, repair, store_ok)
    return report


def _check_store(client: Client, report: Report, repair: bool) -> bool:
    """The store file and its log; True when the store opens and reads whole."""
    db = client.project.db_path
    if not db.exists():
        report.add("store", "file", OK, f"no store at {db} yet (created by the first run)")
        return False
    for _ in range(3):  # a repair may let the next look go further
        try:
            health = client.store_health()
        except NbtrackError as exc:
            if repair and _repair_store(client, report, exc):
                continue
            report.add("store", "file", PROBLEM, _advice(client, exc))
            return False
        rows = health["rows"]
        version = health["meta"].get("schema_version")
        report.add(
            "store", "file", OK,
            f"{db}: schema version {version}, every block read "
            f"({rows.get('runs', 0)} runs, {rows.get('metrics', 0)} metric points)",
        )  # fmt: skip
        return True
    return False


def _repair_store(client: Client, report: Report, exc: NbtrackError) -> bool:
    """Set aside what keeps the store from opening, when that loses nothing."""
    db = client.project.db_path
    text = str(exc)
    if isinstance(exc, StoreDamagedError) and "write-ahead log" in text:
        moved = client.set_store_aside("wal", "bad")
        why = "another version's" if "another version" in text else "not a DuckDB log"
        report.add("store", "write-ahead log", REPAIRED, f"{why}: moved to {moved}")
        return True
    if isinstance(exc, NotAStoreError) and db.exists() and db.stat().st_size == 0:
        moved = client.set_store_aside("file", "empty")
        recovered = client.recover()  # creates a new store from the spooled runs
        report.add(
            "store", "file", REPAIRED,
            f"the empty store file was moved to {moved.name}; a new store was made from "
            f"{len(recovered)} spooled run(s)",
        )  # fmt: skip
        return True
    return False


def _advice(client: Client, exc: NbtrackError) -> str:
    db = client.project.db_path
    text = str(exc).split("; run `nbtrack doctor")[0]
    if isinstance(exc, (StoreDamagedError, NotAStoreError)):
        backups = sorted(db.parent.glob(f"{db.name}.*.bak"), key=lambda p: p.stat().st_mtime)
        if backups:
            text += (
                f"; the newest backup is {backups[-1].name}: move the damaged file and its "
                ".wal aside and copy the backup to runs.duckdb to go back to it"
            )
        else:  # (a truncated copy: --repair has nothing safe to do, and said nothing)
            text += (
                f"; there is no backup of it in {db.parent.name}: copy back one you kept, or "
                "move it aside to start a new store, which takes the runs still spooled"
            )
    return text


def _spool_folder_ok(spool_dir: Path, report: Report, repair: bool) -> bool:
    """A file (or a dangling link) where the spool folder belongs: no run can be
    spooled, kernels keep theirs in memory, and the scan saw "no orphans" (the
    thirteenth trial). Repaired by renaming it aside: the kernels' next retry writes."""
    if not os.path.lexists(spool_dir) or spool_dir.is_dir():
        return True
    if not repair:
        report.add(
            "spool", "folder", PROBLEM,
            f"{spool_dir} is not a folder: no run can be spooled (kernels keep theirs in "
            "memory until it is moved aside; `nbtrack doctor --repair` does)",
        )  # fmt: skip
        return False
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    aside = spool_dir.with_name(f"{spool_dir.name}.not-a-folder-{stamp}")
    os.replace(spool_dir, aside)
    spool_dir.mkdir(exist_ok=True)
    report.add(
        "spool", "folder", REPAIRED,
        f"{spool_dir} was not a folder: moved aside to {aside.name}; kernels' runs are spooled again",
    )  # fmt: skip
    return True


def _check_spools(client: Client, report: Report, repair: bool, store_ok: bool) -> None:
    from .spools import scan

    found = scan(client.project.spool_dir)
    unreadable = [sp.path.name for sp in found if sp.header is None]
    # A sealed spool counts as "dead" to ingestion (nothing more comes), but its writer
    # may be a kernel tracking on: its run waits for the ingestion process's next round.
    ended = [sp for sp in found if sp.header is not None and sp.dead]
    orphans = [sp.path.name for sp in ended if not sp.writer_alive]
    waiting = len(ended) - len(orphans)
    live = len(found) - len(ended) - len(unreadable)
    if orphans and repair and store_ok:
        recovered = client.recover()
        report.add(
            "spool", "orphans", REPAIRED,
            f"{len(recovered)} spooled run(s) of dead processes brought into the store",
        )  # fmt: skip
    elif orphans:
        report.add(
            "spool", "orphans", PROBLEM,
            f"{len(orphans)} spooled run(s) whose process died are not in the store yet "
            + ("(`nbtrack doctor --repair` brings them in)" if store_ok else
               "(they come in once the store opens again)"),
        )  # fmt: skip
    else:
        report.add(
            "spool", "orphans", OK,
            f"{live} spool(s) of running processes, {waiting} ended run(s) of running "
            "processes waiting for the ingestion process, no orphans",
        )  # fmt: skip
    if unreadable:
        report.add(
            "spool", "unreadable", WARNING,
            f"{len(unreadable)} spool(s) without a readable header (left in place): "
            + ", ".join(unreadable[:5]),
        )  # fmt: skip


def _check_cache(client: Client, report: Report, repair: bool, store_ok: bool) -> None:
    cache = client.cache
    corrupt = []
    present = set()
    for digest, _, _ in cache.iter_blobs():
        present.add(digest)
        with contextlib.suppress(FileNotFoundError):
            if not cache.matches(digest):
                corrupt.append(digest)
    _triage(
        report, ("cache", "blobs"), corrupt, cache.quarantine if repair else None,
        ok=f"{len(present)} blob(s), every one matches its name",
        problem=f"{len(corrupt)} of {len(present)} blob(s) no longer match their name: "
        + ", ".join(corrupt[:3]),
        repaired=f"{len(corrupt)} blob(s) whose bytes no longer match their name moved aside "
        "(<blob>.corrupt); the next run or pull that has those bytes stores them again",
    )  # fmt: skip
    stale = cache.stale_temporaries()
    _triage(
        report, ("cache", "temporary files"), stale, _unlink if repair else None,
        ok="none left behind",
        problem=f"{len(stale)} left by writers that died mid-write",
        repaired=f"{len(stale)} left by writers that died mid-write removed",
    )  # fmt: skip
    if store_ok:
        try:
            missing = sorted(cache.expand(client.cached_hashes()) - present)
        except StoreError as exc:
            report.add("cache", "referenced blobs", PROBLEM, str(exc))
            return
        report.add(
            "cache", "referenced blobs", WARNING if missing else OK,
            f"{len(missing)} blob(s) runs recorded as cached are gone (pruned by gc, or lost): "
            "checkout reports those files missing" if missing
            else "every blob a run recorded as cached is present",
        )  # fmt: skip


def _triage(
    report: Report,
    where: tuple[str, str],
    found: Sequence[Any],
    fix: Callable[[Any], object] | None,
    *,
    ok: str,
    problem: str,
    repaired: str,
) -> None:
    """One finding for a list of faults: fixed each (``fix`` given), reported, or none."""
    if found and fix is not None:
        for item in found:
            fix(item)
        report.add(*where, REPAIRED, repaired)
    elif found:
        report.add(*where, PROBLEM, problem)
    else:
        report.add(*where, OK, ok)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
