"""The model registry's tables: versions, aliases and the history of every alias move.

``model_aliases`` is derived: the latest move (by ``seq``) of each alias in
``model_alias_history``. Every move is one transaction that reads the alias's last
move and appends the next one, and transactions on one store file are taken in
turn (see ``connection``), so two processes moving one alias at once both land,
in order, each naming the version the other left.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from ..exceptions import ModelNotFoundError
from ..models import Run
from ..registry.values import AliasMove, ModelVersion, RegisteredModel
from . import reads
from .schema import utcnow
from .tables import utc

VERSION_COLUMNS = (
    "name", "version", "version_id", "flavor", "flavor_meta", "signature", "input_example",
    "env", "hash", "size", "file_name", "run_id", "source_path", "created_at", "description",
    "tags", "archived",
)  # fmt: skip
_JSON_COLUMNS = ("flavor_meta", "signature", "input_example", "env", "tags")
REGISTRY_TABLES = ("registered_models", "model_versions", "model_alias_history")


def _version(row: Sequence[Any], aliases: list[str] | None = None) -> ModelVersion:
    d = dict(zip(VERSION_COLUMNS, row, strict=True))
    for c in _JSON_COLUMNS:
        d[c] = json.loads(d[c]) if d[c] is not None else None
    d["flavor_meta"] = d["flavor_meta"] or {}
    d["env"] = d["env"] or {}
    d["tags"] = d["tags"] or {}
    d["created_at"] = utc(d["created_at"])
    return ModelVersion(**d, aliases=aliases or [])


def _aliases_of(con: duckdb.DuckDBPyConnection, name: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for alias, version in con.execute(
        "SELECT alias, version FROM model_aliases WHERE name = ? ORDER BY alias", [name]
    ).fetchall():
        out.setdefault(version, []).append(alias)
    return out


def _require_model(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if con.execute("SELECT 1 FROM registered_models WHERE name = ?", [name]).fetchone() is None:
        raise ModelNotFoundError(f"no registered model {name!r} (nbtrack models ls lists them)")


# ---------------------------------------------------------------- writes
def add_version(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> ModelVersion:
    """Create the model if new and append the next version number; returns the version."""
    now = utcnow()
    name = values["name"]
    con.execute(
        "INSERT OR IGNORE INTO registered_models (name, created_at, updated_at) VALUES (?, ?, ?)",
        [name, now, now],
    )
    row = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE name = ?", [name]
    ).fetchone()
    assert row is not None
    record = {
        **values,
        "version": int(row[0]),
        "version_id": uuid.uuid4().hex,
        "created_at": now,
        "archived": False,
    }
    for c in _JSON_COLUMNS:
        record[c] = None if record.get(c) is None else json.dumps(record[c], sort_keys=True)
    record["tags"] = record["tags"] or "{}"
    record["flavor_meta"] = record["flavor_meta"] or "{}"
    record["env"] = record["env"] or "{}"
    cols = ", ".join(VERSION_COLUMNS)
    marks = ", ".join("?" for _ in VERSION_COLUMNS)
    con.execute(
        f"INSERT INTO model_versions ({cols}) VALUES ({marks})",
        [record.get(c) for c in VERSION_COLUMNS],
    )
    con.execute("UPDATE registered_models SET updated_at = ? WHERE name = ?", [now, name])
    return get_version(con, name, record["version"])


def move_alias(
    con: duckdb.DuckDBPyConnection,
    name: str,
    alias: str,
    version: int | None,
    host: str,
    user: str,
) -> AliasMove:
    """Point ``alias`` at ``version`` (None removes it), appending the move to the history."""
    _require_model(con, name)
    if version is not None:
        get_version(con, name, version)  # raises for a version that does not exist
    last = con.execute(
        "SELECT to_version, seq FROM model_alias_history WHERE name = ? AND alias = ? "
        "ORDER BY seq DESC LIMIT 1",
        [name, alias],
    ).fetchone()
    before, seq = (last[0], int(last[1])) if last else (None, 0)
    if version is None and before is None:
        raise ModelNotFoundError(f"model {name!r} has no alias {alias!r}")
    move = AliasMove(name, alias, seq + 1, utcnow(), before, version, host, user, uuid.uuid4().hex)
    con.execute(
        "INSERT INTO model_alias_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [move.move_id, name, alias, move.seq, move.at, before, version, host, user],
    )
    derive_aliases(con, [name])
    return AliasMove(**{**move.__dict__, "at": utc(move.at)})


def derive_aliases(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    con.execute("DELETE FROM model_aliases WHERE list_contains(?, name)", [list(names)])
    con.execute(
        """
        INSERT INTO model_aliases
        SELECT name, alias, to_version, moved_at FROM model_alias_history
        WHERE list_contains(?, name)
        QUALIFY row_number() OVER (PARTITION BY name, alias ORDER BY seq DESC) = 1
            AND to_version IS NOT NULL
        """,
        [list(names)],
    )


def update_version(
    con: duckdb.DuckDBPyConnection, name: str, version: int, fields: dict[str, Any]
) -> ModelVersion:
    current = get_version(con, name, version)
    sets: dict[str, Any] = {}
    if "description" in fields:
        sets["description"] = fields["description"]
    if "tags" in fields:
        sets["tags"] = json.dumps({**current.tags, **fields["tags"]}, sort_keys=True)
    if "archived" in fields:
        sets["archived"] = bool(fields["archived"])
    if sets:
        assign = ", ".join(f"{c} = ?" for c in sets)
        con.execute(
            f"UPDATE model_versions SET {assign} WHERE name = ? AND version = ?",
            [*sets.values(), name, version],
        )
        con.execute("UPDATE registered_models SET updated_at = ? WHERE name = ?", [utcnow(), name])
    return get_version(con, name, version)


def update_model(con: duckdb.DuckDBPyConnection, name: str, fields: dict[str, Any]) -> None:
    _require_model(con, name)
    if "description" in fields:
        con.execute(
            "UPDATE registered_models SET description = ?, updated_at = ? WHERE name = ?",
            [fields["description"], utcnow(), name],
        )
    if "tags" in fields:
        row = con.execute("SELECT tags FROM registered_models WHERE name = ?", [name]).fetchone()
        tags = {**json.loads(row[0] if row else "{}"), **fields["tags"]}
        con.execute(
            "UPDATE registered_models SET tags = ?, updated_at = ? WHERE name = ?",
            [json.dumps(tags, sort_keys=True), utcnow(), name],
        )


# ---------------------------------------------------------------- reads
def get_version(con: duckdb.DuckDBPyConnection, name: str, version: int) -> ModelVersion:
    cols = ", ".join(VERSION_COLUMNS)
    row = con.execute(
        f"SELECT {cols} FROM model_versions WHERE name = ? AND version = ?", [name, version]
    ).fetchone()
    if row is None:
        _require_model(con, name)
        raise ModelNotFoundError(f"model {name!r} has no version {version}")
    return _version(row, _aliases_of(con, name).get(version, []))


def resolve(
    con: duckdb.DuckDBPyConnection, name: str, version: int | None, alias: str | None
) -> ModelVersion:
    """A version by number, by alias, or (neither) the newest one not archived."""
    if alias is not None:
        row = con.execute(
            "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", [name, alias]
        ).fetchone()
        if row is None:
            _require_model(con, name)
            raise ModelNotFoundError(f"model {name!r} has no alias {alias!r}")
        return get_version(con, name, int(row[0]))
    if version is None:
        row = con.execute(
            "SELECT max(version) FILTER (WHERE NOT archived), max(version) "
            "FROM model_versions WHERE name = ?",
            [name],
        ).fetchone()
        if row is None or row[1] is None:
            _require_model(con, name)
            raise ModelNotFoundError(f"model {name!r} has no versions")
        version = int(row[0] if row[0] is not None else row[1])
    return get_version(con, name, version)


def versions(con: duckdb.DuckDBPyConnection, name: str) -> list[ModelVersion]:
    _require_model(con, name)
    cols = ", ".join(VERSION_COLUMNS)
    aliases = _aliases_of(con, name)
    rows = con.execute(
        f"SELECT {cols} FROM model_versions WHERE name = ? ORDER BY version", [name]
    ).fetchall()
    return [_version(r, aliases.get(int(r[1]), [])) for r in rows]


def list_models(con: duckdb.DuckDBPyConnection) -> list[RegisteredModel]:
    rows = con.execute(
        """
        SELECT m.name, m.created_at, m.updated_at, m.description, m.tags,
               v.n, v.latest, v.flavor, a.aliases
        FROM registered_models m
        LEFT JOIN (SELECT name, count(*) AS n, max(version) AS latest,
                          arg_max(flavor, version) AS flavor
                   FROM model_versions GROUP BY name) v USING (name)
        LEFT JOIN (SELECT name, map(list(alias ORDER BY alias), list(version ORDER BY alias))
                          AS aliases
                   FROM model_aliases GROUP BY name) a USING (name)
        ORDER BY m.name
        """
    ).fetchall()
    return [
        RegisteredModel(
            name=r[0],
            created_at=utc(r[1]),
            updated_at=utc(r[2]),
            description=r[3],
            tags=json.loads(r[4] or "{}"),
            versions=int(r[5] or 0),
            latest_version=r[6],
            latest_flavor=r[7],
            aliases=dict(r[8] or {}),
        )
        for r in rows
    ]


def get_model(con: duckdb.DuckDBPyConnection, name: str) -> RegisteredModel:
    _require_model(con, name)
    return next(m for m in list_models_named(con, [name]))


def list_models_named(
    con: duckdb.DuckDBPyConnection, names: Sequence[str]
) -> Iterator[RegisteredModel]:
    wanted = set(names)
    return (m for m in list_models(con) if m.name in wanted)


def alias_history(
    con: duckdb.DuckDBPyConnection, name: str, alias: str | None = None
) -> list[AliasMove]:
    _require_model(con, name)
    sql = (
        "SELECT name, alias, seq, moved_at, from_version, to_version, host, user_name, move_id "
        "FROM model_alias_history WHERE name = ?"
    )
    args: list[Any] = [name]
    if alias is not None:
        sql += " AND alias = ?"
        args.append(alias)
    rows = con.execute(sql + " ORDER BY alias, seq", args).fetchall()
    return [AliasMove(r[0], r[1], int(r[2]), utc(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]


def model_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT DISTINCT hash FROM model_versions").fetchall()}


def producers(con: duckdb.DuckDBPyConnection, hashes: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(run_id, path, hash)`` of every run that wrote one of ``hashes``, oldest first."""
    rows = con.execute(
        "SELECT d.run_id, d.path, d.hash FROM data_versions d JOIN runs r USING (run_id) "
        "WHERE d.role = 'output' AND list_contains(?, d.hash) ORDER BY r.started_at",
        [list(hashes)],
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def readers(con: duckdb.DuckDBPyConnection, digest: str) -> list[str]:
    """Ids of the runs that read ``digest`` (a model file or a loaded version), oldest first."""
    rows = con.execute(
        "SELECT DISTINCT d.run_id, r.started_at FROM data_versions d JOIN runs r USING (run_id) "
        "WHERE d.role = 'input' AND d.hash = ? ORDER BY r.started_at",
        [digest],
    ).fetchall()
    return [r[0] for r in rows]


def lineage(
    con: duckdb.DuckDBPyConnection,
    name: str,
    version: int | None,
    alias: str | None,
    max_depth: int,
) -> tuple[ModelVersion, list[Run], list[tuple[Run, str, str, int]], list[Run], list[AliasMove]]:
    """A version, its producing run, the runs upstream of its data, its readers, alias moves.

    Upstream follows data versions back: a run whose output hash is an input hash of a
    run already in the lineage, level by level, up to ``max_depth`` levels.
    """
    mv = resolve(con, name, version, alias)
    run = reads.load(con, [mv.run_id], with_env=True) if mv.run_id else []
    seen = {mv.run_id}
    upstream: list[tuple[Run, str, str, int]] = []
    frontier = [d.hash for d in run[0].inputs if d.hash] if run else []
    for depth in range(1, max_depth + 1):
        if not frontier:
            break
        found = [f for f in producers(con, frontier) if f[0] not in seen]
        loaded = {
            r.run_id: r for r in reads.load(con, sorted({f[0] for f in found}), with_env=False)
        }
        frontier = []
        for run_id, path, digest in found:
            if run_id in loaded:
                upstream.append((loaded[run_id], path, digest, depth))
                if run_id not in seen:
                    seen.add(run_id)
                    frontier.extend(d.hash for d in loaded[run_id].inputs if d.hash)
    reader_ids = [r for r in readers(con, mv.hash) if r != mv.run_id]
    return mv, run, upstream, reads.load(con, reader_ids, with_env=False), alias_history(con, name)


def alias_version(con: duckdb.DuckDBPyConnection, name: str, alias: str) -> int | None:
    """The version ``alias`` of ``name`` points at now, or None when it is not set."""
    row = con.execute(
        "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", [name, alias]
    ).fetchone()
    return int(row[0]) if row else None
