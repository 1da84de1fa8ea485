"""Bring back the exact bytes of a run's data versions.

Rules (docs/data.md, "Checkout"):

* every byte written is verified against the recorded hash on its way out of the
  cache; a corrupt blob is reported (and moved aside), never restored;
* an existing file is overwritten only when it matches *some* recorded version of
  that path (so nothing the user made since is lost), or with ``force``;
* paths outside the project (absolute paths elsewhere, ``..`` escapes, symlinks that
  lead out) are never written unless ``to`` names a folder to restore into;
* what could not be restored is reported item by item (not cached, pruned, corrupt,
  modified, outside the project) and makes the report not ``ok``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .cache import Cache, ManifestEntry
from .exceptions import BlobCorruptError, BlobMissingError, CacheError, NbtrackError, UsageError
from .hashing import StatCache
from .leftovers import remove_if_abandoned
from .project import os_text

if TYPE_CHECKING:
    from .client import Client
    from .models import DataVersion

RESTORED = "restored"
UNCHANGED = "unchanged"
MODIFIED = "modified"  # the file on disk matches no recorded version: kept, not overwritten
NOT_CACHED = "not-cached"  # recorded with --no-cache or over the size limit
MISSING = "missing"  # was cached, blob gone (gc, or never pushed here)
CORRUPT = "corrupt"
OUTSIDE = "outside-project"
NOT_RESTORABLE = "not-restorable"  # a DataFrame: there is no file to write
SUPERSEDED = "superseded"  # an input also written by the run: the output version is restored
UNWRITABLE = "unwritable"  # the place or its disk took no file (read-only, full): the error says
OK_STATUSES = frozenset({RESTORED, UNCHANGED, SUPERSEDED})
PARTIAL = ".nbtrack-restore-"  # + pid-hex: a copy on its way, renamed over the file when whole
STALE_PARTIAL = 3600  # seconds unmodified: a copy nobody writes any more, whatever its name


@dataclass
class CheckoutItem:
    """One file (or one file of a folder version) and what checkout did with it."""

    path: str
    target: str | None
    hash: str | None
    role: str
    status: str
    detail: str = ""
    folder: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass
class CheckoutReport:
    """Everything checkout did for one run."""

    run_id: str
    items: list[CheckoutItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def problems(self) -> list[CheckoutItem]:
        return [item for item in self.items if not item.ok]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.items:
            out[item.status] = out.get(item.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "counts": self.counts(),
            "items": [asdict(item) for item in self.items],
        }


def safe_relative(recorded: str) -> PurePosixPath:
    """A recorded project-relative path, refused if it could leave its base folder."""
    rel = PurePosixPath(os_text(recorded))
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or recorded in ("", "."):
        raise UsageError(f"refusing to write {recorded!r}: not a path inside the project")
    return rel


def _within(base: Path, path: Path) -> bool:
    """True when ``path`` (which may not exist yet) stays inside ``base`` once symlinks
    of its existing ancestors are followed."""
    base_real = Path(os.path.realpath(base))
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    real = Path(os.path.realpath(probe))
    # A symlink as the last component is replaced by the restored file, never written
    # through, so only the folders on the way matter.
    return real == base_real or base_real in real.parents


def _remove_dead_partials(folder: Path) -> None:
    """Remove the partial copies of checkouts killed before their rename (SIGKILL, the
    OOM killer): hidden files up to a whole file's size that nothing else removes."""
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(PARTIAL) or not entry.is_file(follow_symlinks=False):
                continue
            pid = entry.name[len(PARTIAL) :].partition("-")[0]
            remove_if_abandoned(entry.path, int(pid) if pid.isdigit() else None, STALE_PARTIAL)


class _Restorer:
    def __init__(self, client: Client, force: bool) -> None:
        self.client = client
        self.cache: Cache = client.cache
        self.force = force
        self.stat_cache = StatCache.for_folder(client.project.folder)
        self._known: dict[str, set[str]] = {}
        self._swept: set[Path] = set()

    # -- what the user may lose ---------------------------------------------------
    def recorded_hashes(self, path: str) -> set[str]:
        if path not in self._known:
            self._known[path] = self.client.recorded_hashes(path)
        return self._known[path]

    def recorded_entry_hashes(self, folder: str, rel: str) -> set[str]:
        """Every hash that file ``rel`` had in any cached manifest of ``folder``."""
        key = f"{folder}\0{rel}"
        if key not in self._known:
            found: set[str] = set()
            for digest in self.recorded_hashes(folder):
                with contextlib.suppress(CacheError, OSError, ValueError):
                    found.update(e.hash for e in self.cache.read_manifest(digest) if e.path == rel)
            self._known[key] = found
        return self._known[key]

    # -- one file -----------------------------------------------------------------
    def restore_file(
        self,
        item: CheckoutItem,
        target: Path,
        size_known_cached: bool,
        allowed: Iterable[str],
    ) -> None:
        digest = item.hash
        assert digest is not None
        if target.is_dir() and not target.is_symlink():
            item.status, item.detail = MODIFIED, "a folder is in the way"
            return
        if target.is_file():
            current = self.stat_cache.hash(target).hash
            if current == digest:
                item.status = UNCHANGED
                return
            if not self.force and current not in set(allowed):
                item.status = MODIFIED
                item.detail = "differs from every recorded version"
                return
        if not self.cache.has(digest):
            item.status = MISSING if size_known_cached else NOT_CACHED
            item.detail = (
                "the cached copy is gone (pruned by gc?)"
                if size_known_cached
                else "its bytes were never cached (--no-cache or over the size limit)"
            )
            return
        tmp = target.parent / f"{PARTIAL}{os.getpid()}-{uuid.uuid4().hex}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent not in self._swept:
                self._swept.add(target.parent)
                _remove_dead_partials(target.parent)
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            item.status, item.detail = UNWRITABLE, str(exc.strerror or exc)
            return
        try:
            try:
                self.cache.copy_out(digest, fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BlobCorruptError:
            item.status, item.detail = CORRUPT, "the cached bytes no longer match the hash"
            return
        except BlobMissingError:
            item.status, item.detail = MISSING, "the cached copy is gone"
            return
        except OSError as exc:  # a full disk mid-copy
            item.status, item.detail = UNWRITABLE, str(exc.strerror or exc)
            return
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        item.status = RESTORED

    # -- one version --------------------------------------------------------------
    def restore(
        self, version: DataVersion, base: Path | None, only: str | None
    ) -> list[CheckoutItem]:
        """Restore ``version`` under ``base`` (None: where it was recorded)."""
        item = CheckoutItem(version.path, None, version.hash, version.role, RESTORED)
        if version.kind == "dataframe":
            item.status, item.detail = NOT_RESTORABLE, "an in-memory DataFrame has no file"
            return [item]
        if not version.hash:
            item.status, item.detail = NOT_CACHED, "no hash was recorded"
            return [item]
        try:
            target, root = self._target(version, base)
        except UsageError as exc:
            item.status, item.detail = OUTSIDE, str(exc)
            return [item]
        item.target = str(target)
        if version.kind != "dir":
            self.restore_file(
                item, target, bool(version.cached), self.recorded_hashes(version.path)
            )
            return [item]
        return self._restore_folder(version, target, root, only)

    def _target(self, version: DataVersion, base: Path | None) -> tuple[Path, Path]:
        """(where to write, the folder it must stay in)."""
        if version.in_project:
            rel = safe_relative(version.path)
            root = base if base is not None else self.client.project.root
        else:
            if base is None:
                raise UsageError(
                    f"{version.path} is outside the project; name a folder with --to to restore it"
                )
            absolute = PurePosixPath(os_text(version.path))
            if not absolute.is_absolute() or ".." in absolute.parts:
                raise UsageError(f"refusing to write {version.path!r}: not a clean absolute path")
            rel, root = PurePosixPath(*absolute.parts[1:]), base
        target = Path(root, *rel.parts)
        if not _within(root, target):
            raise UsageError(f"refusing to write {version.path}: a symlink leads out of {root}")
        return target, root

    def _restore_folder(
        self, version: DataVersion, folder: Path, root: Path, only: str | None
    ) -> list[CheckoutItem]:
        assert version.hash is not None
        head = CheckoutItem(version.path, str(folder), version.hash, version.role, RESTORED)
        try:
            entries: list[ManifestEntry] = self.cache.read_manifest(version.hash)
        except BlobMissingError:
            head.status = MISSING if version.cached else NOT_CACHED
            head.detail = "the folder's manifest is not in the cache"
            return [head]
        except BlobCorruptError:
            head.status, head.detail = CORRUPT, "the folder's manifest no longer matches its hash"
            return [head]
        items: list[CheckoutItem] = []
        for entry in entries:
            if only is not None and entry.path != only and not entry.path.startswith(only + "/"):
                continue
            path = f"{version.path.rstrip('/')}/{entry.path}"
            item = CheckoutItem(path, None, entry.hash, version.role, RESTORED, folder=version.path)
            items.append(item)
            try:
                target = Path(folder, *safe_relative(entry.path).parts)
                if not _within(root, target):
                    raise UsageError(f"refusing to write {path}: a symlink leads out of {root}")
            except UsageError as exc:
                item.status, item.detail = OUTSIDE, str(exc)
                continue
            item.target = str(target)
            allowed = self.recorded_entry_hashes(version.path, entry.path)
            self.restore_file(item, target, True, allowed)
        return items


def _select(
    versions: Sequence[DataVersion], wanted: Sequence[tuple[str, str]], role: str | None
) -> list[tuple[DataVersion, str | None]]:
    """The versions to restore, each with the file inside a folder version to limit to."""
    chosen = [v for v in versions if role is None or v.role == role]
    if not wanted:
        return [(v, None) for v in chosen]
    out: list[tuple[DataVersion, str | None]] = []
    for shown, rec in wanted:
        hits: list[tuple[DataVersion, str | None]] = []
        for v in chosen:
            if v.path == rec or v.path.startswith(rec.rstrip("/") + "/") or rec == ".":
                hits.append((v, None))
            elif v.kind == "dir" and rec.startswith(v.path.rstrip("/") + "/"):
                hits.append((v, rec[len(v.path.rstrip("/")) + 1 :]))
        if not hits:
            known = ", ".join(sorted({v.path for v in chosen})) or "none"
            raise UsageError(f"{shown} is not a data version of this run (its paths: {known})")
        out.extend(hits)
    return out


def checkout(
    client: Client,
    ref: str,
    paths: Sequence[str] = (),
    *,
    role: str | None = None,
    to: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> CheckoutReport:
    """Restore the data versions of run ``ref`` (all, or those under ``paths``).

    ``role`` limits to ``"input"`` or ``"output"``; ``to`` restores under that folder
    instead of in place (the only way to restore paths outside the project).
    """
    if role not in (None, "input", "output"):
        raise UsageError(f"role is 'input' or 'output', not {role!r}")
    run = client.get_run(ref)
    wanted = [(p, client.project.relative(p)[0]) for p in paths]
    base = Path(to).resolve() if to is not None else None
    if base is not None:
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NbtrackError(
                f"cannot make the folder {base} to restore into ({exc.strerror})"
            ) from None
    report = CheckoutReport(run.run_id)
    outputs = {v.path for v in run.data if v.role == "output"}
    restorer = _Restorer(client, force)
    for version, only in _select(run.data, wanted, role):
        if role is None and version.role == "input" and version.path in outputs:
            report.items.append(
                CheckoutItem(
                    version.path,
                    None,
                    version.hash,
                    "input",
                    SUPERSEDED,
                    "the run also wrote this path; its output version is restored "
                    "(--inputs restores the version it read)",
                )
            )
            continue
        report.items.extend(restorer.restore(version, base, only))
    return report
