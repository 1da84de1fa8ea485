"""Bundles: runs (every row) plus the cache blobs they reference, in one portable file.

``nbtrack export`` writes one, ``nbtrack import`` reads one, and a Dask worker hands one
back to the caller for each execution. A bundle is a zip archive:

``nbtrack-bundle.json``
    ``{"format": "nbtrack-bundle", "version": 1, "nbtrack": <version>, "created_at": <ISO>,
    "runs": [run ids], "blobs": [digests], "executions": [file names]}``
``runs.json``
    ``client.dump_runs(...)``: ``{table: [row, ...]}``, values JSON with tagged
    types for what JSON lacks (``{"$t": "datetime", "v": "2026-01-01T00:00:00+00:00"}``,
    ``date``, ``time``, ``bytes`` (base64), ``decimal``, ``uuid``, ``float`` for NaN/±inf).
``blobs/<algo>/<hex>``
    the bytes of every referenced blob present in the cache (notebook snapshots, cached
    data versions). Checked against their hash on import.
``executions/<run id>.ipynb``
    executed notebooks of the notebook runs in the bundle, when the exporting store kept them.
``models.json``
    ``client.dump_registry(...)``: the model versions these runs made, their registered
    models and the whole history of their aliases (absent when the runs made none).

Importing is idempotent: rows already in the store, blobs already cached and executed
notebooks already present are left as they are, so the same bundle twice adds nothing.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import io
import json
import math
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from .. import blobpins
from ..cache import is_content_hash
from ..catchup import one_look
from ..dumps import check_dump
from ..exceptions import BlobCorruptError, UsageError

if TYPE_CHECKING:
    from ..client import Client

FORMAT = "nbtrack-bundle"
VERSION = 1
MANIFEST = "nbtrack-bundle.json"
RUNS = "runs.json"
MODELS = "models.json"
BLOBS = "blobs/"
EXECUTIONS = "executions/"
#: An archive may unpack to this much plus MAX_RATIO times its own size, no more.
MAX_UNPACKED_FLOOR = 256 << 20
MAX_RATIO = 100
_RUN_FILE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


# --- values -------------------------------------------------------------------------------


def _tag(kind: str, value: Any) -> dict[str, Any]:
    return {"$t": kind, "v": value}


def encode_value(value: Any) -> Any:
    """A row value as JSON, with the types JSON lacks tagged so ``decode_value`` restores them."""
    if isinstance(value, float) and not math.isfinite(value):
        return _tag("float", repr(value))
    if isinstance(value, dt.datetime):
        return _tag("datetime", value.isoformat())
    if isinstance(value, dt.date):
        return _tag("date", value.isoformat())
    if isinstance(value, dt.time):
        return _tag("time", value.isoformat())
    if isinstance(value, dt.timedelta):
        return _tag("timedelta", value.total_seconds())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _tag("bytes", base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, decimal.Decimal):
        return _tag("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tag("uuid", str(value))
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    return value


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "float": float,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(seconds=v),
    "bytes": base64.b64decode,
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
}


def decode_value(value: Any) -> Any:
    """The inverse of ``encode_value``."""
    if isinstance(value, dict):
        if set(value) == {"$t", "v"} and value["$t"] in _DECODERS:
            return _DECODERS[value["$t"]](value["v"])
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


# --- what a bundle says about itself ---------------------------------------------------------


@dataclass
class BundleSummary:
    """What one export wrote or one import added."""

    runs: list[str] = field(default_factory=list)
    """Runs written (export) or added (import)."""
    contained: list[str] = field(default_factory=list)
    """Every run in the bundle, added or already there."""
    blobs: list[str] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    skipped_runs: int = 0
    skipped_blobs: int = 0
    missing_blobs: list[str] = field(default_factory=list)
    """Blobs the runs reference that the exporting cache did not hold (never cached, pruned)."""
    models: list[str] = field(default_factory=list)
    """Model versions (``NAME/VERSION``) written (export) or added (import)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- export --------------------------------------------------------------------------------


def closure(client: Client, refs: Iterable[str]) -> list[str]:
    """The run ids to export for ``refs``: each run, its parent and, for notebook runs, its cells.

    A cell run travels with its notebook run so its ``parent_id`` is not left dangling.
    """
    ids: dict[str, None] = {}
    for ref in refs:
        run = client.get_run(ref)
        if run.parent_id:
            ids.setdefault(run.parent_id, None)
        ids.setdefault(run.run_id, None)
        if run.kind == "notebook":
            for child in client.children(run.run_id):
                ids.setdefault(child.run_id, None)
    return list(ids)


def write_bundle(client: Client, run_ids: Sequence[str], dest: IO[bytes]) -> BundleSummary:
    """Write the bundle of exactly ``run_ids`` (see ``closure``) to the binary stream ``dest``."""
    from .._version import __version__

    ids = list(run_ids)
    dump = client.dump_runs(ids)
    summary = BundleSummary(runs=ids, contained=ids)
    cache = client.cache
    executions = client.project.executions_dir
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(RUNS, json.dumps(encode_value(dump), separators=(",", ":")))
        registry = client.dump_registry(ids)
        if registry:
            zf.writestr(MODELS, json.dumps(encode_value(registry), separators=(",", ":")))
            summary.models = [f"{r['name']}/{r['version']}" for r in registry["model_versions"]]
        # A folder version's manifest brings the blobs of the files it lists.
        for digest in sorted(cache.expand(client.referenced_hashes(ids))):
            if cache.has(digest):
                zf.write(cache.path_for(digest), BLOBS + _blob_name(digest))
                summary.blobs.append(digest)
            else:
                summary.missing_blobs.append(digest)
        for run_id in run_ids:
            executed = executions / f"{run_id}.ipynb"
            if executed.is_file():
                zf.write(executed, EXECUTIONS + executed.name)
                summary.executions.append(executed.name)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "nbtrack": __version__,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "runs": summary.runs,
            "blobs": summary.blobs,
            "executions": summary.executions,
        }
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
    return summary


def bundle_bytes(client: Client, run_ids: Sequence[str]) -> bytes:
    """The bundle of ``run_ids`` in memory (what a Dask worker sends back)."""
    buffer = io.BytesIO()
    write_bundle(client, run_ids, buffer)
    return buffer.getvalue()


def export_runs(client: Client, refs: Sequence[str], dest: IO[bytes]) -> BundleSummary:
    """Export the runs named by ``refs`` (ids, prefixes, ``last``) with what they need."""
    if not refs:
        raise UsageError("name at least one run to export")
    # Runs whose kernel died before they reached the store count too, and the named
    # runs and their cells, if still spooled (a backlog of the ingestion process's).
    client.recover(runs=refs)
    with one_look():  # its reads catch up with others' ended runs once, not each
        ids = closure(client, refs)
        if client.recover(runs=ids):  # a parent or cells of theirs, still spooled
            ids = closure(client, refs)
        return write_bundle(client, ids, dest)


# --- import --------------------------------------------------------------------------------


def _blob_name(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"{algo}/{hexd}"


def _digest_of(name: str) -> str:
    algo, _, hexd = name[len(BLOBS) :].partition("/")
    return f"{algo}:{hexd}"


def _read_json(zf: zipfile.ZipFile, member: str, source: str) -> Any:
    try:
        return json.loads(zf.read(member))
    except KeyError:
        raise UsageError(f"{source} is not a complete nbtrack bundle (no {member})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{source}: {member} is not valid JSON ({exc}); nothing was imported"
        ) from None


def _read_manifest(zf: zipfile.ZipFile, source: str) -> dict[str, Any]:
    if MANIFEST not in zf.namelist():
        raise UsageError(f"{source} is not an nbtrack bundle (no {MANIFEST})")
    manifest = _read_json(zf, MANIFEST, source)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        what = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise UsageError(f"{source} is not an nbtrack bundle (format {what!r})")
    version = manifest.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{source}: bundle version {version!r} is not a number")
    if version > VERSION:
        raise UsageError(
            f"{source} is a version {version} bundle; this nbtrack reads up to "
            f"version {VERSION}: upgrade nbtrack to import it"
        )
    if not isinstance(manifest.get("runs", []), list):
        raise UsageError(f"{source}: the manifest's runs must be a list")
    return dict(manifest)


def _check_sizes(zf: zipfile.ZipFile, source: str, archive_size: int | None) -> None:
    """Refuse, before writing a byte, an archive that would unpack to far more than it is.

    A 2 MB zip bomb declares gigabytes; Python's zipfile never reads past the size a
    member declares, so the declared total is an upper bound of what lands on disk.
    """
    total = sum(info.file_size for info in zf.infolist())
    limit = MAX_UNPACKED_FLOOR + MAX_RATIO * (archive_size or 0)
    if total > limit:
        raise UsageError(
            f"{source} would unpack to {total:,} bytes, more than {MAX_RATIO}x its size "
            f"plus {MAX_UNPACKED_FLOOR >> 20} MiB; refused before writing anything "
            "(a zip bomb, or a bundle this import will not take)"
        )
    for info in zf.infolist():
        name = info.filename
        blob = name.startswith(BLOBS) and not name.endswith("/")
        if blob and not is_content_hash(_digest_of(name)):
            raise UsageError(f"{source}: {name} is not named by a content hash")
        if name.startswith(EXECUTIONS) and not name.endswith("/"):
            stem = PurePosixPath(name).name.removesuffix(".ipynb")
            if not _RUN_FILE.match(stem) or not name.endswith(".ipynb"):
                raise UsageError(f"{source}: {name} is not an executed notebook of a run")


def _import_blob(client: Client, zf: zipfile.ZipFile, member: str) -> bool:
    """Copy one blob into the cache after checking its bytes hash to its name; True if added."""
    from ..cache import Cache, is_manifest_hash

    digest = _digest_of(member)
    cache = client.cache
    if cache.has(digest):
        return False
    if is_manifest_hash(digest):
        data = zf.read(member)
        if Cache.manifest_hash(data) != digest:
            raise BlobCorruptError(f"bundle blob {digest} does not match its hash")
        cache.put_bytes(data, digest)
        return True
    # Streamed through a temporary file: a bundled data file may not fit in memory.
    fd, tmp = tempfile.mkstemp(prefix=".nbtrack-import-")
    try:
        with os.fdopen(fd, "wb") as out, zf.open(member) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        if not cache.put_file(tmp, digest):
            raise BlobCorruptError(f"bundle blob {digest} does not match its hash")
    finally:
        os.unlink(tmp)
    return True


def _stream_size(stream: IO[bytes]) -> int | None:
    try:
        here = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):
        return None
    return size


def import_bundle(client: Client, source: IO[bytes] | bytes, name: str = "bundle") -> BundleSummary:
    """Add a bundle's runs, blobs and executed notebooks to ``client``'s store.

    Blobs go in first, so a run in the store never points at a blob the import failed
    to bring; rows already in the store are skipped (``store.load_runs`` is idempotent).
    """
    stream: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        zf = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise UsageError(f"{name} is not an nbtrack bundle (not a zip archive)") from None
    summary = BundleSummary()
    with zf:
        manifest = _read_manifest(zf, name)
        _check_sizes(zf, name, _stream_size(stream))
        try:
            dump = decode_value(_read_json(zf, RUNS, name))
        except (ValueError, TypeError) as exc:  # a tagged value that is not one
            raise UsageError(f"{name}: {RUNS} holds a bad value ({exc})") from None
        check_dump(dump, f"{name} {RUNS}")
        with blobpins.pinned(client.cache.root):  # no gc between a blob found and its run
            try:
                _import_members(client, zf, dump, name, summary)
            except BaseException:
                if not summary.runs:  # (no run stored: none of them needs what came in)
                    _take_back(client, summary)
                raise
        summary.contained = list(manifest.get("runs", []))
        summary.skipped_runs = len(summary.contained) - len(summary.runs)
    return summary


def _take_back(client: Client, summary: BundleSummary) -> None:
    """Remove the blobs and executed notebooks a failed import added: before, a disk
    filled by an import that then failed stayed full (gc keeps young blobs ten minutes),
    and every command failed for want of room until the user found them."""
    added = [client.cache.path_for(d) for d in summary.blobs]
    added += [client.project.executions_dir / n for n in summary.executions]
    for path in added:
        with contextlib.suppress(OSError):
            path.unlink()


def _import_members(
    client: Client, zf: zipfile.ZipFile, dump: dict[str, Any], name: str, summary: BundleSummary
) -> None:
    """Blobs first, then executed notebooks, then the runs and model versions."""
    for member in zf.namelist():
        if member.startswith(BLOBS) and not member.endswith("/"):
            if _import_blob(client, zf, member):
                summary.blobs.append(_digest_of(member))
            else:
                summary.skipped_blobs += 1
    executions = client.project.executions_dir
    for member in zf.namelist():
        if member.startswith(EXECUTIONS) and not member.endswith("/"):
            target = executions / Path(member).name
            if not target.exists():
                executions.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
                summary.executions.append(target.name)
    summary.runs = list(client.load_runs(dump, f"{name} {RUNS}"))
    if MODELS in zf.namelist():
        summary.models = client.load_registry(decode_value(json.loads(zf.read(MODELS))))
