"""The one exception hierarchy of nbtrack.

Core code raises these; each door turns them into its own form in exactly one
place: the magic into ``UsageError``, the CLI into a message and an exit code,
the server into a JSON error with a status code (``http_status``).
"""

from __future__ import annotations

import errno
import os


class NbtrackError(Exception):
    """Base class of every error nbtrack raises on purpose."""

    http_status = 500


class UsageError(NbtrackError):
    """A request was malformed: bad arguments, bad values, bad syntax."""

    http_status = 400


class QueryError(UsageError):
    """A filter, sort or SQL query the store cannot run as written."""


class BadValueError(UsageError, ValueError):
    """A logged name, value or step cannot be recorded (refused at the call)."""


class QueryTimeoutError(QueryError):
    """A filter ran past the query time limit and was stopped."""


class StoreError(NbtrackError):
    """The store could not be used."""

    http_status = 500


class StoreBusyError(StoreError):
    """Another process held the store's lock for longer than the lock timeout."""

    http_status = 503


class StoreVersionError(StoreError):
    """The store was written by a newer nbtrack; it is left untouched."""

    http_status = 409


class NotAStoreError(StoreError):
    """The file is not an nbtrack store (or is corrupt); it is left untouched."""

    http_status = 409


class StoreDamagedError(StoreError):
    """The store file (or its write-ahead log) is damaged; it is left untouched."""

    http_status = 409


class TargetExistsError(NbtrackError):
    """A file a command would write exists; nothing was overwritten."""

    http_status = 409


class RunNotFoundError(NbtrackError):
    """No run matches the given reference."""

    http_status = 404


def quoted(ref: str, limit: int = 40) -> str:
    """``ref`` as a message quotes it: cut, with its length said, when long (a pasted
    page is not repeated back whole)."""
    return repr(ref) if len(ref) <= limit else f"{ref[:limit]!r}... ({len(ref):,} characters)"


class ModelNotFoundError(NbtrackError):
    """No registered model, version or alias matches the reference."""

    http_status = 404


class AliasMovedError(NbtrackError):
    """A model alias moved between reading it and moving it (the move was not made)."""

    http_status = 409


class AmbiguousRunError(UsageError):
    """A run id prefix matches more than one run."""


class NoActiveRunError(NbtrackError):
    """A logging call was made outside a ``%%track`` cell."""

    http_status = 400


class CaptureError(NbtrackError):
    """A fact a run records about itself (git state, notebook snapshot) could not be read."""


class CacheError(NbtrackError):
    """The blob cache could not give back what was asked."""


class BlobMissingError(CacheError):
    """A blob is not in the cache (never cached, or pruned)."""

    http_status = 404


class BlobCorruptError(CacheError):
    """A blob's bytes no longer match its hash."""

    http_status = 409


class NotAnImageError(CacheError):
    """A blob named as an image is not one (its first bytes say another type)."""

    http_status = 415


class RemoteError(NbtrackError):
    """A remote could not be read or written."""


class PipelineError(NbtrackError):
    """A notebook execution could not be set up or run."""

    # The request was fine; the run cannot be executed as it stands (no notebook
    # recorded, a snapshot pruned from the cache...): a conflict, not a crash.
    http_status = 409


class PipelineGraphError(PipelineError):
    """The notebook graph inferred from recorded runs cannot be used: a cycle, an unknown target."""


# A write refused for want of space: the disk, a quota, a file size limit.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def why_unwritable(err: OSError) -> str:
    """Why a write failed, in the user's words: a full disk is not a folder nbtrack may
    not write, nor a kernel out of file descriptors (which no free space would cure)."""
    detail = err.strerror or str(err)
    if err.errno == errno.EFBIG and (limit := _file_size_limit()) is not None:
        # Not the disk (the thirteenth trial: `ulimit -f` before `jupyter lab`; the cell
        # said "the disk cannot take this run" on a disk with room to spare): a limit
        # this process keeps, so no retry of its own will ever get the run written.
        return (
            f"this process may not write a file over {limit:,} bytes (`ulimit -f`, {detail}): "
            "restart it from a shell with a higher limit"
        )
    if err.errno in NO_SPACE:
        return f"the disk cannot take this run ({detail})"
    if err.errno in (errno.EMFILE, errno.ENFILE):
        return (
            f"this process has too many files open to write this run ({detail}: close some, "
            "or raise the limit, `ulimit -n`)"
        )
    if err.errno == errno.EROFS:
        return f"the disk holding the store is read-only ({detail})"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"nbtrack may not write in its store's folder ({detail})"
    if err.errno in (errno.ENOTDIR, errno.EEXIST) and err.filename:
        blocker = _not_a_folder(os.fsdecode(err.filename))
        if blocker:
            return (
                f"{blocker} is a file where nbtrack needs a folder ({detail}): move it aside "
                "(`nbtrack doctor --repair` does)"
            )
    return f"this run cannot be written yet ({detail})"


def _file_size_limit() -> int | None:
    """This process's ``RLIMIT_FSIZE`` in bytes, None when unlimited (or unknown)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _not_a_folder(path: str) -> str | None:
    """The first part of ``path`` that exists and is not a folder (ENOTDIR's culprit)."""
    parts = os.path.normpath(path).split(os.sep)
    for end in range(2, len(parts) + 1):
        part = os.sep.join(parts[:end])
        if os.path.lexists(part) and not os.path.isdir(part):
            return part
    return None
