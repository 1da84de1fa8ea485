"""The images a run wrote (PNG, JPEG, GIF, WebP, SVG files, also inside output folders),
listed and read back from the blob cache by content hash for the panel's previews.

Only an image the run itself recorded is ever served, with the media type of its
extension after a check of its first bytes, so a blob that is not what its name says
is refused rather than handed to the browser under a type it would render.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .cache import is_manifest_hash
from .exceptions import BlobMissingError, CacheError, NotAnImageError, RunNotFoundError

if TYPE_CHECKING:
    from .client import Client

MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
#: Most images listed for one run (the newest folders can hold thousands of plots).
MAX_IMAGES = 200


@dataclass(frozen=True)
class RunImage:
    """One image file a run wrote: where, which content, and whether its bytes are kept."""

    path: str
    hash: str
    size: int | None
    media_type: str
    cached: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def media_type(path: str) -> str | None:
    """The image media type of a file name, or None when it is not an image we preview."""
    return MEDIA_TYPES.get(PurePosixPath(path).suffix.lower())


def run_images(client: Client, ref: str, limit: int = MAX_IMAGES) -> tuple[list[RunImage], int]:
    """The images ``ref`` wrote, in path order, at most ``limit``; and how many in all.

    Files come from the run's output data versions; a folder's files come from its
    cached manifest (a folder whose manifest is gone contributes nothing).
    """
    run = client.get_run(ref)
    found: dict[tuple[str, str], RunImage] = {}
    for version in run.outputs:
        if not version.hash:
            continue
        if version.kind == "dir" and is_manifest_hash(version.hash):
            try:
                entries = client.cache.read_manifest(version.hash)
            except CacheError:
                continue
            for entry in entries:
                kind = media_type(entry.path)
                if kind:
                    path = f"{version.path.rstrip('/')}/{entry.path}"
                    found[path, entry.hash] = RunImage(
                        path, entry.hash, entry.size, kind, client.cache.has(entry.hash)
                    )
        else:
            kind = media_type(version.path)
            if kind:
                found[version.path, version.hash] = RunImage(
                    version.path, version.hash, version.size, kind, client.cache.has(version.hash)
                )
    images = sorted(found.values(), key=lambda image: image.path)
    return images[:limit], len(images)


_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def _looks_like(head: bytes, kind: str) -> bool:
    if kind == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if kind == "image/svg+xml":
        text = head.lstrip(b"\xef\xbb\xbf").lstrip()
        return text.startswith(b"<")
    return head.startswith(_MAGIC[kind])


def image_file(client: Client, ref: str, digest: str) -> tuple[Path, RunImage]:
    """The cached file of image ``digest`` that run ``ref`` wrote, and what it is.

    ``RunNotFoundError`` when the run wrote no image with that hash (whatever else the
    cache holds), ``BlobMissingError`` when its bytes are not kept (``--no-cache``, gc),
    ``NotAnImageError`` when the bytes are not the image type the name claims.
    """
    images, _ = run_images(client, ref, limit=10**9)
    image = next((i for i in images if i.hash == digest), None)
    if image is None:
        raise RunNotFoundError(f"run {ref} wrote no image with hash {digest}")
    path = client.cache.path_for(digest)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except FileNotFoundError:
        raise BlobMissingError(
            f"the bytes of {image.path} ({digest}) are not in the cache: the run kept none "
            "(--no-cache) or gc removed them"
        ) from None
    if not _looks_like(head, image.media_type):
        raise NotAnImageError(f"{image.path} is not a {image.media_type} file; not served")
    return path, image
