"""``Registry``: the model verbs the client hands out; validation and value building live here.

Every door (CLI, ``%track models``, ``nbtrack.log_model``...) calls these; the
SQL is in ``store/registry.py`` and the bytes in the content-addressed cache.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import BlobCorruptError, BlobMissingError, UsageError
from ..models import DataVersion
from ..store import Store
from .values import AliasMove, ModelRef, ModelVersion, RegisteredModel, check_alias, check_name

if TYPE_CHECKING:
    from ..client import Client
    from ..gates import GateResult
    from ..tracking import RunWriter
    from . import flavors
    from .lineage import Lineage, ModelDiff

MODEL_KIND = "model"  # the data-version kind of a model's bytes in a run's inputs/outputs

# What loading needs of ``NAME/N`` (file, flavor, hash, environment) never changes once
# the version exists: numbers are never reused or renumbered, in this store file or by an
# import. Remembered per store file (path and inode), so a reload by number skips the
# store (a DuckDB connection costs 20-100 ms).
_loadable: dict[tuple[str, int, str, int], ModelVersion] = {}
# An alias moves, so what it named is remembered with the stamp of the store's files
# (the database and its write-ahead log) read before the query: any write by any
# process since (an alias move first of all) changes one of them, and the alias is
# read from the store again.
_aliased: dict[tuple[str, str, str], tuple[Any, ModelVersion]] = {}
# The installed version of each flavor's library, read once (the module loaded in this
# process does not change when a package is reinstalled under it).
_library_versions: dict[str, str | None] = {}
# Blobs this process re-hashed, with the stat that proves they have not been written
# since: any write changes the ctime, which no program can set back. A later load of
# the same unchanged file trusts that check instead of hashing 100 MB again.
_verified: dict[str, tuple[int, int, int, int]] = {}


def _store_stamp(db: Path) -> tuple[Any, ...] | None:
    stamps = (_stamp(db), _stamp(db.with_name(db.name + ".wal")))
    return None if stamps[0] is None else stamps


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class LibraryVersionWarning(UserWarning):
    """A model is loaded with another version of its library than it was saved with."""


def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return socket.gethostname(), user


def environment_of(
    flavor: flavors.Flavor, meta: dict[str, Any], packages: dict[str, str] | None
) -> dict[str, Any]:
    """What loading needs: Python, the flavor's library and pinned requirements.

    Versions come from the run's recorded environment when there is one (what the
    model was trained with), else from this process.
    """
    from . import flavors

    packages = packages or {}
    pins = []
    for dist in flavor.requirements(meta):
        version = packages.get(dist.lower()) or flavors.version_of(dist)
        pins.append(f"{dist}=={version}" if version else dist)
    library = flavor.distributions[0] if flavor.distributions else None
    return {
        "python": platform.python_version(),
        "library": library,
        "library_version": flavor.library_version() if library else None,
        "requirements": pins,
    }


class Registry:
    """Registered models of one store: versions, aliases (with history), loading, lineage."""

    def __init__(self, client: Client) -> None:
        # The registry is the client of the model tables: it holds its own handle on
        # the store file (the same locks as the client's), so the client stays free
        # of model verbs and neither imports the other.
        self.client = client
        self._store = Store(client.project.db_path)

    # ---------------------------------------------------------------- creating versions
    def log_model(
        self,
        obj: Any,
        name: str,
        *,
        writer: RunWriter,
        input_example: Any = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        **options: Any,
    ) -> ModelVersion:
        """Save ``obj`` in its flavor's format as the next version of ``name``, linked to a run."""
        # Flavors and signatures import lazily: listing and showing models never need them.
        from . import flavors, signature

        check_name(name)
        chosen = flavors.get(flavor) if flavor else flavors.for_object(obj)
        if flavor and not chosen.handles(obj):
            raise UsageError(f"the {chosen.name} flavor does not save a {type(obj).__name__}")
        with tempfile.TemporaryDirectory(prefix="nbtrack-model-") as tmp:
            dest = Path(tmp) / chosen.file_name_for(options)
            meta = chosen.save(obj, dest, options)
            digest, size = self.client.cache.add_file(dest)
        sig = None
        if input_example is not None:
            try:
                output = chosen.predict(obj, input_example)
            except Exception as exc:  # noqa: BLE001 - a model that fails on its example
                raise UsageError(
                    f"the model failed on its input example ({type(exc).__name__}: {exc})"
                ) from exc
            sig = signature.infer(input_example, output)
        env = writer.snapshot.environment
        version = self._store.add_model_version(
            {
                "name": name,
                "flavor": chosen.name,
                "flavor_meta": meta,
                "signature": sig,
                "input_example": signature.example_json(input_example),
                "env": environment_of(chosen, meta, env.packages if env else None),
                "hash": digest,
                "size": size,
                "file_name": dest.name,
                "run_id": writer.run_id,
                "description": description,
                "tags": {str(k): str(v) for k, v in (tags or {}).items()},
            }
        )
        # The bytes as an output of the run: gc keeps them, bundles and push carry them.
        writer.log_data([_as_data(version, "output")])
        return version

    def register_file(
        self,
        run_ref: str,
        path: str,
        name: str,
        *,
        flavor: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Make a version of ``name`` from a file that run ``run_ref`` wrote."""
        check_name(name)
        run = self.client.get_run(run_ref)
        recorded, _ = self.client.project.relative(path)
        found = [d for d in run.outputs if d.path in (recorded, path)]
        if not found or not found[0].hash:
            wrote = ", ".join(d.path for d in run.outputs) or "no files"
            raise UsageError(f"run {run.short_id} did not write {path} (it wrote {wrote})")
        dv, digest = found[0], found[0].hash
        if not self.client.cache.has(digest):
            on_disk = self.client.project.absolute(dv.path)
            if not (on_disk.is_file() and self.client.cache.put_file(on_disk, digest)):
                raise BlobMissingError(
                    f"run {run.short_id} kept no copy of {dv.path} and the file changed since; "
                    "re-run the cell without --no-cache to register it"
                )
        from . import flavors

        with self._named_file(digest, Path(dv.path).name) as local:
            chosen = flavors.get(flavor) if flavor else flavors.detect(local)
            meta = chosen.file_meta(local)
        env = run.environment
        return self._store.add_model_version(
            {
                "name": name,
                "flavor": chosen.name,
                "flavor_meta": meta,
                "env": environment_of(chosen, meta, env.packages if env else None),
                "hash": digest,
                "size": dv.size,
                "file_name": Path(dv.path).name,
                "run_id": run.run_id,
                "source_path": dv.path,
                "description": description,
            }
        )

    # ---------------------------------------------------------------- aliases, tags, descriptions
    def set_alias(self, name: str, version: int, alias: str) -> AliasMove:
        check_name(name)
        check_alias(alias)
        if not isinstance(version, int) or version < 1:
            raise UsageError(f"a version is a number from 1, not {version!r}")
        host, user = _who()
        return self._store.move_model_alias(name, alias, version, host, user)

    def move_alias_from(
        self, name: str, alias: str, expected: int | None, version: int | None
    ) -> AliasMove:
        """Move ``alias`` to ``version`` (None removes it) only if it is still on
        ``expected`` (None: not set): a move made by someone else meanwhile is never
        overwritten unseen (``AliasMovedError``)."""
        check_name(name)
        check_alias(alias)
        for value in (expected, version):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"a version is a number from 1, not {value!r}")
        host, user = _who()
        return self._store.move_model_alias_from(name, alias, expected, version, host, user)

    def remove_alias(self, name: str, alias: str) -> AliasMove:
        check_name(name)
        host, user = _who()
        return self._store.move_model_alias(name, alias, None, host, user)

    def _update(self, ref: str, fields: dict[str, Any]) -> ModelVersion | RegisteredModel:
        """Change a version (``NAME/3``, ``NAME@alias``) or, for a bare name, the model."""
        parsed = ModelRef.parse(ref)
        if parsed.version is None and parsed.alias is None:
            if "archived" in fields:
                raise UsageError("archive names one version: NAME/VERSION or NAME@ALIAS")
            self._store.update_model(parsed.name, fields)
            return self._store.get_model(parsed.name)
        mv = self.get(ref)
        return self._store.update_model_version(mv.name, mv.version, fields)

    def tag(self, ref: str, tags: dict[str, str]) -> ModelVersion | RegisteredModel:
        """Tag a version (``NAME/3``, ``NAME@alias``) or, for a bare name, the model."""
        clean = {str(k): str(v) for k, v in tags.items()}
        if any(not k for k in clean):
            raise UsageError("a tag needs a non-empty key")
        return self._update(ref, {"tags": clean})

    def describe(self, ref: str, text: str) -> ModelVersion | RegisteredModel:
        return self._update(ref, {"description": text})

    def archive(self, ref: str, archived: bool = True) -> ModelVersion | RegisteredModel:
        return self._update(ref, {"archived": archived})

    # ---------------------------------------------------------------- reading
    def get(self, ref: str) -> ModelVersion:
        """A version by ``NAME/3``, ``NAME@alias``, ``NAME`` (newest) or ``models:/...``."""
        parsed = ModelRef.parse(ref)
        return self._store.resolve_model(parsed.name, parsed.version, parsed.alias)

    def check(self, expression: str, ref: str, *, against: str | None = None) -> GateResult:
        """A metric gate on the run that produced a version (``NAME@alias``, ``NAME/3``);
        ``drift.*`` names read the drift of its training data since."""
        mv = self.get(ref)
        if mv.run_id is None or not self.client.runs_by_id([mv.run_id]):
            raise UsageError(
                f"{mv.uri} has no producing run in this store, so no metrics to gate on"
                + (f" (run {mv.run_id[:8]} is missing: pull it first)" if mv.run_id else "")
            )
        result = self.client.check(expression, mv.run_id, against=against)
        result.model = f"{mv.name}/{mv.version}"
        return result

    def models(self) -> list[RegisteredModel]:
        return self._store.list_models()

    def versions(self, name: str) -> list[ModelVersion]:
        return self._store.model_versions(check_name(name))

    def model(self, name: str) -> RegisteredModel:
        return self._store.get_model(check_name(name))

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        return self._store.alias_history(check_name(name), alias)

    def hashes(self) -> set[str]:
        """Every blob a registered version needs (gc keeps them)."""
        return self._store.model_hashes()

    def lineage(self, ref: str) -> Lineage:
        from .lineage import MAX_DEPTH, build_lineage

        parsed = ModelRef.parse(ref)
        return build_lineage(
            *self._store.model_lineage(parsed.name, parsed.version, parsed.alias, MAX_DEPTH)
        )

    def diff(self, a: str, b: str) -> ModelDiff:
        from .lineage import diff_versions

        return diff_versions(self.client, self.get(a), self.get(b))

    # ---------------------------------------------------------------- loading
    def verified_file(self, mv: ModelVersion) -> Path:
        """The cached bytes of a version, re-hashed: refused with the reason and the fix."""
        where = f"{mv.name}/{mv.version} ({mv.hash})"
        path = self.client.cache.path_for(mv.hash)
        stamp = _stamp(path)
        key = str(path)
        if stamp is not None and _verified.get(key) == stamp:
            return path
        try:
            self.client.cache.verify(mv.hash)
        except BlobMissingError:
            raise BlobMissingError(
                f"the bytes of model {where} are not in this project's cache: bring them "
                "with `nbtrack pull REMOTE` (or import the bundle that carries them); "
                "`nbtrack doctor` lists what else is missing"
            ) from None
        except BlobCorruptError:
            raise BlobCorruptError(
                f"the cached bytes of model {where} no longer match their hash (moved aside, "
                "nothing was loaded): bring a good copy with `nbtrack pull REMOTE`; "
                "`nbtrack doctor` checks the rest of the cache"
            ) from None
        if stamp is not None:
            _verified[key] = stamp
        return path

    @contextmanager
    def _named_file(self, digest: str, file_name: str) -> Iterator[Path]:
        # Some loaders read the format from the file name (XGBoost's .json / .ubj):
        # a link named as saved points at the read-only blob, nothing is copied.
        with tempfile.TemporaryDirectory(prefix="nbtrack-load-") as tmp:
            link = Path(tmp) / file_name
            link.symlink_to(self.client.cache.path_for(digest))
            yield link

    def _loadable_version(self, ref: str) -> ModelVersion:
        parsed = ModelRef.parse(ref)
        db = self.client.project.db_path
        if parsed.alias is not None:
            key3 = (str(db), parsed.name, parsed.alias)
            before = _store_stamp(db)
            seen = _aliased.get(key3)
            if seen is not None and before is not None and seen[0] == before:
                return seen[1]
            mv = self.get(ref)
            if before is not None and _store_stamp(db) == before:
                _aliased[key3] = (before, mv)  # nobody wrote while we read
            return mv
        if parsed.version is None:
            return self.get(ref)
        try:
            key = (str(db), os.stat(db).st_ino, parsed.name, parsed.version)
        except FileNotFoundError:
            return self.get(ref)
        found = _loadable.get(key)
        if found is None:
            found = _loadable[key] = self.get(ref)
        return found

    def load(self, ref: str, writer: RunWriter | None = None, **kwargs: Any) -> Any:
        """The live model of a version, after checking its bytes and its library's version."""
        from . import flavors

        mv = self._loadable_version(ref)
        flavor = flavors.get(mv.flavor)
        self.verified_file(mv)
        if flavor.name not in _library_versions:
            _library_versions[flavor.name] = flavor.library_version()
        recorded, current = mv.env.get("library_version"), _library_versions[flavor.name]
        if recorded and current and recorded != current:
            warnings.warn(
                f"model {mv.name}/{mv.version} was saved with {mv.env.get('library')} "
                f"{recorded}; this environment has {current}: predictions may differ",
                LibraryVersionWarning,
                stacklevel=3,
            )
        with self._named_file(mv.hash, mv.file_name) as local:
            obj = flavor.load(local, mv.flavor_meta, **kwargs)
        if writer is not None:
            writer.log_data([_as_data(mv, "input")])
        return obj

    def export(self, ref: str, dest: str | os.PathLike[str], fmt: str = "mlflow") -> Path:
        """Write a version in another tool's format (``mlflow``: MLflow's model directory)."""
        if fmt != "mlflow":
            raise UsageError(f"models export writes the 'mlflow' format, not {fmt!r}")
        from .mlflow_format import write_mlflow

        mv = self.get(ref)
        run = self.client.runs_by_id([mv.run_id])[0] if mv.run_id else None
        return write_mlflow(self, mv, Path(dest), run)


def _as_data(mv: ModelVersion, role: str) -> DataVersion:
    return DataVersion(
        path=mv.uri, role=role, hash=mv.hash, size=mv.size, kind=MODEL_KIND,
        in_project=False, cached=True,
    )  # fmt: skip
