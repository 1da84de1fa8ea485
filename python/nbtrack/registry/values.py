"""What the model registry holds, as small typed values (CLI, Python, bundles alike)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..exceptions import UsageError
from ..models import iso

# A model name is one path segment of a ``models:/`` URI: no spaces, slashes or '@'.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")
# Reserved as in MLflow: ``latest`` names the newest version, ``v3`` looks like one.
RESERVED_ALIAS = re.compile(r"latest|v\d+", re.I)
URI_PREFIX = "models:/"


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UsageError(
            f"bad model name {name!r}: use letters, digits, '_', '.' or '-' "
            "(no spaces, slashes or '@'), at most 128 characters, starting with a letter or digit"
        )
    return name


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise UsageError(
            f"bad alias {alias!r}: use letters, digits, '_' or '-', starting with a letter or '_'"
        )
    if RESERVED_ALIAS.fullmatch(alias):
        raise UsageError(f"{alias!r} is reserved (it reads as a version), choose another alias")
    return alias


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME/3``, ``NAME/latest`` or ``NAME@alias`` (``models:/`` optional)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: Any) -> ModelRef:
        if not isinstance(text, str) or not text.strip():
            raise UsageError("name a model: NAME, NAME/VERSION, NAME@ALIAS or models:/NAME@ALIAS")
        body = text.strip()
        if body.startswith(URI_PREFIX):
            body = body[len(URI_PREFIX) :]
        if "@" in body:
            name, _, alias = body.partition("@")
            return cls(check_name(name), alias=check_alias_ref(alias))
        if "/" in body:
            name, _, ver = body.partition("/")
            check_name(name)
            if ver == "latest":
                return cls(name)
            if not ver.isdigit() or int(ver) < 1:
                raise UsageError(
                    f"bad model version {ver!r} in {text!r}: a number from 1 or 'latest'"
                )
            return cls(name, version=int(ver))
        return cls(check_name(body))

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}" if self.version else f"{self.name}/latest"


def check_alias_ref(alias: str) -> str:
    if not ALIAS_RE.fullmatch(alias):
        raise UsageError(f"bad alias {alias!r}")
    return alias


@dataclass
class ModelVersion:
    """One registered version: the files (one content-addressed blob) and what made them."""

    name: str
    version: int
    version_id: str
    flavor: str
    hash: str
    size: int | None
    file_name: str
    created_at: datetime | None = None
    run_id: str | None = None
    source_path: str | None = None
    flavor_meta: dict[str, Any] = field(default_factory=dict)
    signature: dict[str, Any] | None = None
    input_example: dict[str, Any] | None = None
    env: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    archived: bool = False
    aliases: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{URI_PREFIX}{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "version_id": self.version_id,
            "uri": self.uri,
            "flavor": self.flavor,
            "hash": self.hash,
            "size": self.size,
            "file_name": self.file_name,
            "created_at": iso(self.created_at),
            "run_id": self.run_id,
            "source_path": self.source_path,
            "flavor_meta": self.flavor_meta,
            "signature": self.signature,
            "input_example": self.input_example,
            "env": self.env,
            "description": self.description,
            "tags": dict(self.tags),
            "archived": self.archived,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: from a version (None: new) to a version (None: removed)."""

    name: str
    alias: str
    seq: int
    at: datetime | None
    from_version: int | None
    to_version: int | None
    host: str | None
    user: str | None
    move_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "seq": self.seq,
            "at": iso(self.at),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "host": self.host,
            "user": self.user,
            "move_id": self.move_id,
        }


@dataclass
class RegisteredModel:
    """A name with its versions' summary: what ``models ls`` lists."""

    name: str
    created_at: datetime | None
    updated_at: datetime | None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    versions: int = 0
    latest_version: int | None = None
    latest_flavor: str | None = None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "description": self.description,
            "tags": dict(self.tags),
            "versions": self.versions,
            "latest_version": self.latest_version,
            "latest_flavor": self.latest_flavor,
            "aliases": dict(self.aliases),
        }
