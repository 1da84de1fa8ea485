"""Push and pull cache blobs and the runs that reference them, through fsspec.

A remote is any URL fsspec opens: a local folder, ``memory://``, ``s3://bucket/p``,
``gs://``, ``az://``... Its layout (docs/data.md, "Remotes"):

    <url>/nbtrack-remote.json          {"format": "nbtrack-remote", "version": 1}
    <url>/blobs/<algo>/<2 hex>/<rest>  the cache layout, one object per blob
    <url>/runs/<run id>.json           every row of that run (store.dump_runs)
    <url>/models/<name>.json           a registered model: the versions pushed, every alias move

Blobs are uploaded before the runs that reference them, each under a temporary
name and then moved into place, so a remote run never names a blob the push did not
finish. Pulled blobs are hashed while they stream in and only then enter the cache;
a remote object whose bytes do not match its name is reported, never kept.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from . import blobpins
from .cache import Cache, is_manifest_hash
from .exceptions import RemoteError, UsageError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from .client import Client

REMOTE_FORMAT = "nbtrack-remote"
REMOTE_VERSION = 1
MARKER = "nbtrack-remote.json"


@dataclass
class TransferResult:
    """What one push or pull moved."""

    remote: str
    runs: list[str] = field(default_factory=list)
    blobs_copied: list[str] = field(default_factory=list)
    blobs_present: int = 0
    bytes_copied: int = 0
    blobs_missing: list[str] = field(default_factory=list)
    """Referenced but absent on the side copied from (never cached, or pruned)."""
    blobs_corrupt: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    """Model versions (``NAME/VERSION``) pushed, or added by a pull."""

    @property
    def ok(self) -> bool:
        return not self.blobs_corrupt

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def open_remote(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem and root path of a remote URL."""
    import fsspec

    if not url:
        raise UsageError("name a remote URL (a folder, s3://bucket/prefix, memory://name...)")
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise RemoteError(f"cannot open remote {url}: {exc}") from None
    return fs, root.rstrip("/") or "/"


def _blob_key(root: str, digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return posixpath.join(root, "blobs", algo, hexd[:2], hexd[2:])


def _digest_of_key(root: str, key: str) -> str | None:
    rel = posixpath.relpath(key, posixpath.join(root, "blobs"))
    parts = rel.split("/")
    if len(parts) != 3 or ".tmp-" in parts[2]:
        return None
    return f"{parts[0]}:{parts[1]}{parts[2]}"


def _remote_blobs(fs: AbstractFileSystem, root: str) -> set[str]:
    base = posixpath.join(root, "blobs")
    try:
        keys = fs.find(base)
    except FileNotFoundError:
        return set()
    return {d for k in keys if (d := _digest_of_key(root, k)) is not None}


def _check_marker(fs: AbstractFileSystem, root: str, url: str, create: bool) -> None:
    marker = posixpath.join(root, MARKER)
    if fs.exists(marker):
        info = json.loads(fs.cat_file(marker))
        if info.get("format") != REMOTE_FORMAT:
            raise RemoteError(f"{url} is not an nbtrack remote ({MARKER} says otherwise)")
        if int(info.get("version", 0)) > REMOTE_VERSION:
            raise RemoteError(
                f"{url} was written by a newer nbtrack (remote version {info['version']})"
            )
        return
    if not create:
        raise RemoteError(f"{url} is not an nbtrack remote (no {MARKER}); push to it first")
    fs.makedirs(root, exist_ok=True)
    body = {"format": REMOTE_FORMAT, "version": REMOTE_VERSION}
    fs.pipe_file(marker, json.dumps(body).encode())


def _upload(fs: AbstractFileSystem, local: str, key: str) -> None:
    tmp = f"{key}.tmp-{uuid.uuid4().hex}"
    fs.makedirs(posixpath.dirname(key), exist_ok=True)
    fs.put_file(local, tmp)
    fs.mv(tmp, key)


def _split_dump(
    dump: dict[str, list[dict[str, Any]]], run_id: str
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one run out of a dump of several."""
    one: dict[str, list[dict[str, Any]]] = {}
    for table, rows in dump.items():
        if table in ("environments", "profiles"):
            continue
        one[table] = [r for r in rows if r.get("run_id") == run_id]
    env_ids = {r.get("env_id") for r in one.get("runs", [])}
    one["environments"] = [r for r in dump.get("environments", []) if r.get("env_id") in env_ids]
    hashes = {r.get("hash") for r in one.get("data_versions", [])}
    one["profiles"] = [r for r in dump.get("profiles", []) if r.get("hash") in hashes]
    return one


def _referenced(dump: dict[str, list[dict[str, Any]]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in dump.get("runs", []):
        for key in ("notebook_hash", "code_hash"):
            if row.get(key):
                seen.setdefault(row[key], None)
    for row in dump.get("data_versions", []):
        if row.get("hash") and row.get("kind") != "dataframe":
            seen.setdefault(row["hash"], None)
    return list(seen)


def _run_ids(client: Client, refs: Sequence[str]) -> list[str]:
    if not refs:
        return client.run_ids_by_age()
    from .pipelines.bundle import closure

    return closure(client, refs)


def push(client: Client, url: str, refs: Sequence[str] = ()) -> TransferResult:
    """Copy runs (all, or ``refs`` with their parent / cell runs) and their blobs to ``url``."""
    from .pipelines.bundle import encode_value

    fs, root = open_remote(url)
    client.recover()  # runs whose kernel died before they reached the store go too
    run_ids = _run_ids(client, refs)
    result = TransferResult(remote=url, runs=list(run_ids))
    try:
        _check_marker(fs, root, url, create=True)
        dump = client.dump_runs(run_ids)
        cache = client.cache
        present = _remote_blobs(fs, root)
        for digest in sorted(cache.expand(_referenced(dump))):
            if digest in present:
                result.blobs_present += 1
                continue
            size = cache.size_of(digest)
            if size is None:
                result.blobs_missing.append(digest)
                continue
            _upload(fs, str(cache.path_for(digest)), _blob_key(root, digest))
            result.blobs_copied.append(digest)
            result.bytes_copied += size
        fs.makedirs(posixpath.join(root, "runs"), exist_ok=True)
        for run_id in run_ids:
            body = json.dumps(encode_value(_split_dump(dump, run_id)), separators=(",", ":"))
            fs.pipe_file(posixpath.join(root, "runs", f"{run_id}.json"), body.encode())
        result.models = _push_models(fs, root, client.dump_registry(run_ids))
    except OSError as exc:
        raise RemoteError(f"push to {url} failed: {exc}") from exc
    return result


_ROW_KEYS = {"registered_models": "name", "model_versions": "version_id",
             "model_alias_history": "move_id"}  # fmt: skip


def _push_models(fs: AbstractFileSystem, root: str, registry: dict[str, Any]) -> list[str]:
    """Merge each model's versions and alias moves into ``models/<name>.json`` (a union)."""
    from .pipelines.bundle import decode_value, encode_value

    if not registry:
        return []
    fs.makedirs(posixpath.join(root, "models"), exist_ok=True)
    for name in sorted({r["name"] for r in registry["registered_models"]}):
        key = posixpath.join(root, "models", f"{name}.json")
        merged: dict[str, dict[str, Any]] = {t: {} for t in _ROW_KEYS}
        if fs.exists(key):
            for table, rows in decode_value(json.loads(fs.cat_file(key))).items():
                merged[table].update({r[_ROW_KEYS[table]]: r for r in rows})
        for table, rows in registry.items():
            merged[table].update({r[_ROW_KEYS[table]]: r for r in rows if r["name"] == name})
        body = {t: list(rows.values()) for t, rows in merged.items()}
        fs.pipe_file(key, json.dumps(encode_value(body), separators=(",", ":")).encode())
    return [f"{r['name']}/{r['version']}" for r in registry["model_versions"]]


def _pull_models(
    client: Client, fs: AbstractFileSystem, root: str, run_ids: Sequence[str]
) -> list[str]:
    """Add the remote's versions made by ``run_ids`` (with their models' alias history)."""
    from .pipelines.bundle import decode_value

    try:
        keys = [
            k for k in fs.ls(posixpath.join(root, "models"), detail=False) if k.endswith(".json")
        ]
    except FileNotFoundError:
        return []
    wanted = set(run_ids)
    merged: dict[str, list[dict[str, Any]]] = {t: [] for t in _ROW_KEYS}
    for key in sorted(keys):
        body = decode_value(json.loads(fs.cat_file(key)))
        versions = [r for r in body.get("model_versions", []) if r.get("run_id") in wanted]
        if versions:
            merged["model_versions"] += versions
            merged["registered_models"] += body.get("registered_models", [])
            merged["model_alias_history"] += body.get("model_alias_history", [])
    return client.load_registry(merged) if merged["model_versions"] else []


def _remote_run_ids(fs: AbstractFileSystem, root: str) -> list[str]:
    try:
        names = fs.ls(posixpath.join(root, "runs"), detail=False)
    except FileNotFoundError:
        return []
    return sorted(posixpath.basename(n)[: -len(".json")] for n in names if n.endswith(".json"))


def _match(available: Iterable[str], refs: Sequence[str]) -> list[str]:
    available = list(available)
    chosen: dict[str, None] = {}
    for ref in refs:
        hits = [r for r in available if r.startswith(ref)] if len(ref) >= 4 else []
        if not hits:
            raise UsageError(
                f"no run {ref!r} on the remote (give an id or a prefix of 4+ characters)"
            )
        if len(hits) > 1 and ref not in hits:
            raise UsageError(
                f"{ref!r} matches {len(hits)} runs on the remote; give more characters"
            )
        chosen.setdefault(ref if ref in hits else hits[0], None)
    return list(chosen)


def _fetch(
    fs: AbstractFileSystem, root: str, cache: Cache, digest: str, result: TransferResult
) -> bool:
    key = _blob_key(root, digest)
    try:
        with fs.open(key, "rb") as src:
            ok = cache.put_stream(src, digest)
    except FileNotFoundError:
        result.blobs_missing.append(digest)
        return False
    if not ok:
        result.blobs_corrupt.append(digest)
        return False
    result.blobs_copied.append(digest)
    result.bytes_copied += cache.size_of(digest) or 0
    return True


def pull(client: Client, url: str, refs: Sequence[str] = ()) -> TransferResult:
    """Copy runs (all on the remote, or ``refs``: ids or prefixes) and their blobs from ``url``.

    Blobs come first and are verified; then the runs are added to the store (rows
    already there are left as they are).
    """
    with blobpins.pinned(client.cache.root):  # no gc between a blob found and its run
        return _pull(client, url, refs)


def _pull(client: Client, url: str, refs: Sequence[str]) -> TransferResult:
    fs, root = open_remote(url)
    result = TransferResult(remote=url)
    try:
        _check_marker(fs, root, url, create=False)
        available = _remote_run_ids(fs, root)
        run_ids = _match(available, refs) if refs else available
        cache = client.cache
        dumps = [_read_run(fs, root, url, r) for r in run_ids]
        wanted: list[str] = []
        for dump in dumps:
            wanted.extend(_referenced(dump))
        for digest in dict.fromkeys(wanted):
            if cache.has(digest):
                result.blobs_present += 1
            elif not _fetch(fs, root, cache, digest, result):
                continue
            if is_manifest_hash(digest):
                for entry in cache.read_manifest(digest):
                    if cache.has(entry.hash):
                        result.blobs_present += 1
                    else:
                        _fetch(fs, root, cache, entry.hash, result)
    except OSError as exc:
        raise RemoteError(f"pull from {url} failed: {exc}") from exc
    merged: dict[str, list[dict[str, Any]]] = {}
    for dump in dumps:
        for table, rows in dump.items():
            merged.setdefault(table, []).extend(rows)
    result.runs = client.load_runs(merged, f"{url} runs/") if merged else []
    try:
        result.models = _pull_models(client, fs, root, run_ids)
    except OSError as exc:
        raise RemoteError(f"pull from {url} failed: {exc}") from exc
    return result


def _read_run(fs: AbstractFileSystem, root: str, url: str, run_id: str) -> dict[str, Any]:
    """One remote run file, checked: a file that is not a run dump stops the pull early."""
    from .dumps import check_dump
    from .pipelines.bundle import decode_value

    name = f"runs/{run_id}.json"
    try:
        dump = decode_value(json.loads(fs.cat_file(posixpath.join(root, name))))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise RemoteError(
            f"{url}: {name} is not a run file nbtrack can read ({exc}); nothing was pulled; "
            "push that run again or remove the file"
        ) from None
    return check_dump(dump, f"{url} {name}")
