"""Copying bytes between open files: a reflink where the filesystem can, else a
streamed copy that hashes every chunk it writes (so what lands is what was hashed)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from .exceptions import CacheError
from .hashing import hash_fd

FICLONE = 0x40049409  # from <linux/fs.h>
_reflink_works: dict[int, bool] = {}


def try_reflink(src_fd: int, dst_fd: int) -> bool:
    dev = os.fstat(dst_fd).st_dev
    if _reflink_works.get(dev) is False:
        return False
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            _reflink_works[dev] = False
            return False
        raise
    _reflink_works[dev] = True
    return True


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view.nbytes:
        view = view[os.write(fd, view) :]


def _all_zero(data: memoryview) -> bool:
    # Its first bytes rule most chunks out; else a copy and a memcmp (~7 ms a 4 MiB
    # chunk here, where comparing the memoryview itself goes byte by byte: ~25 ms).
    return not any(data[:8]) and bytes(data) == bytes(data.nbytes)


def copy_hashing(src_fd: int, dst_fd: int, size: int) -> str:
    """Copy ``size`` bytes into an empty file (reflink if possible; a sparse source's
    holes stay holes, so the destination must hold nothing yet); returns the hash of
    the bytes the destination now holds."""
    if size and try_reflink(src_fd, dst_fd):
        # The clone shares the source's extents as they are now; hash the clone so
        # the name we give it is the hash of what it really holds.
        return hash_fd(dst_fd, size)
    # A sparse source (a 1 GiB file that is nearly all a hole) stays sparse: its zero
    # chunks are left as holes (they read back as the zeros hashed), not written out as
    # a gigabyte of zeros for a cell to wait on and the disk to hold.
    sparse = os.fstat(src_fd).st_blocks * 512 < size
    if size > (1 << 20) and hasattr(os, "posix_fallocate") and not sparse:  # not on macOS
        # Allocating up front measured twice as fast as growing the file chunk by chunk.
        with contextlib.suppress(OSError):
            os.posix_fallocate(dst_fd, 0, size)

    def write_chunk(offset: int, data: memoryview) -> None:
        if sparse and _all_zero(data):
            return  # a hole; ftruncate below gives the file its full size
        done = 0
        while done < data.nbytes:
            done += os.pwrite(dst_fd, data[done:], offset + done)

    digest = hash_fd(src_fd, size, on_chunk=write_chunk)
    if os.fstat(src_fd).st_size != size:
        # The file grew while we copied it: we hashed and stored a prefix only.
        raise CacheError("the file changed size while it was being cached")
    os.ftruncate(dst_fd, size)
    return digest
