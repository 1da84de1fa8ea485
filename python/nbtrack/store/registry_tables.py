"""The registry's part of ``Store``: each method one short connection or transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..exceptions import AliasMovedError
from ..models import Run
from ..registry.values import AliasMove, ModelVersion, RegisteredModel
from .connection import Connection
from .registry import (
    add_version,
    alias_history,
    alias_version,
    get_model,
    lineage,
    list_models,
    model_hashes,
    move_alias,
    producers,
    resolve,
    update_model,
    update_version,
    versions,
)
from .registry_transfer import dump, load


class RegistryTables(Connection):
    """The registry's part of ``Store``: each method one short connection or transaction."""

    def add_model_version(self, values: dict[str, Any]) -> ModelVersion:
        with self.transaction() as con:
            return add_version(con, values)

    def move_model_alias(
        self, name: str, alias: str, version: int | None, host: str, user: str
    ) -> AliasMove:
        with self.transaction() as con:
            return move_alias(con, name, alias, version, host, user)

    def move_model_alias_from(
        self, name: str, alias: str, expected: int | None, version: int | None, host: str, user: str
    ) -> AliasMove:
        """``move_model_alias`` only while the alias is still on ``expected`` (None: unset),
        checked in the same transaction; else ``AliasMovedError`` and nothing changes."""
        with self.transaction() as con:
            current = alias_version(con, name, alias)
            if current != expected:
                now = f"version {current}" if current is not None else "no version"
                raise AliasMovedError(
                    f"{name}@{alias} moved since it was read: it is now on {now}; "
                    "reload and try again"
                )
            return move_alias(con, name, alias, version, host, user)

    def update_model_version(self, name: str, version: int, fields: dict[str, Any]) -> ModelVersion:
        with self.transaction() as con:
            return update_version(con, name, version, fields)

    def update_model(self, name: str, fields: dict[str, Any]) -> None:
        with self.transaction() as con:
            update_model(con, name, fields)

    def resolve_model(self, name: str, version: int | None, alias: str | None) -> ModelVersion:
        with self.connect() as con:
            return resolve(con, name, version, alias)

    def model_versions(self, name: str) -> list[ModelVersion]:
        with self.connect() as con:
            return versions(con, name)

    def list_models(self) -> list[RegisteredModel]:
        with self.connect() as con:
            return list_models(con)

    def get_model(self, name: str) -> RegisteredModel:
        with self.connect() as con:
            return get_model(con, name)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self.connect() as con:
            return alias_history(con, name, alias)

    def model_hashes(self) -> set[str]:
        with self.connect() as con:
            return model_hashes(con)

    def model_lineage(
        self, name: str, version: int | None, alias: str | None, max_depth: int
    ) -> tuple[
        ModelVersion, list[Run], list[tuple[Run, str, str, int]], list[Run], list[AliasMove]
    ]:
        """Everything ``models show`` prints, read in one connection (see ``lineage``)."""
        with self.connect() as con:
            return lineage(con, name, version, alias, max_depth)

    def producers(self, hashes: Sequence[str]) -> list[tuple[str, str, str]]:
        with self.connect() as con:
            return producers(con, hashes)

    def dump_registry(self, run_ids: Sequence[str] | None) -> dict[str, list[dict[str, Any]]]:
        with self.connect() as con:
            return dump(con, run_ids)

    def load_registry(self, data: dict[str, list[dict[str, Any]]]) -> list[str]:
        if not data:
            return []
        with self.transaction() as con:
            return load(con, data)
