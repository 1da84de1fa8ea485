"""Columns for the leaves of dict parameters: ``params.cfg.lr``, ``params.cfg.opt.m``.

A config object or a dict parameter (``cfg = {"lr": 0.01, "opt": {"m": 0.9}}``) is
stored whole, as JSON, in one ``params`` row. Its leaves are columns of the wide
table as well, named by their key path, so that ``--where "cfg.lr > 0.01"``,
``--columns cfg.lr`` and ``nbtrack.runs()["params.cfg.lr"]`` reach a value inside a
config as they reach a parameter of its own (MLflow users know this from flattened
``log_params``).

The rule: every key on the path is a plain name (letters, digits, ``_``; a key such as
``"a b"`` or ``"x.y"`` stays inside its parameter's JSON); a list is a leaf (a text
column of its JSON), not a column per element; a leaf whose values are all numbers is a
number column (all whole numbers: an integer one), any other leaf a text column (a key
holding a dict in one run and a value in another too: its JSON); a name a parameter of
its own already has (a key ``"cfg.lr"``) keeps that parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from ..models import CONFIG_KEY

# DuckDB's JSON types of a leaf: whole numbers (all null: whole), other numbers (a
# HUGEINT is beyond BIGINT: a DOUBLE column)
_KINDS = dict.fromkeys(("BIGINT", "UBIGINT", "NULL"), "int") | {
    "DOUBLE": "num",
    "HUGEINT": "num",
    "UHUGEINT": "num",
}
_cache: dict[str, tuple[object, list[Leaf]]] = {}


@dataclass(frozen=True)
class Leaf:
    """One leaf of a dict parameter, seen in at least one run."""

    param: str  # the parameter's own key: cfg
    json_path: str  # $.opt.m
    kind: str  # "int", "num" or "text"

    @property
    def name(self) -> str:
        """The column's name after ``params.``: ``cfg.opt.m``."""
        return self.param + self.json_path[1:]

    def value_sql(self) -> str:
        """The leaf's value in a ``params`` row of its parameter."""
        path = "'" + self.json_path + "'"  # plain names only: nothing to escape
        if self.kind == "text":
            return f"json_extract_string(value, {path})"
        cast = "BIGINT" if self.kind == "int" else "DOUBLE"
        return f"TRY_CAST(json_extract(value, {path}) AS {cast})"


def leaves(path: str, con: duckdb.DuckDBPyConnection, taken: set[str], count: int) -> list[Leaf]:
    """The leaves of every dict parameter in the store (remembered while the ``count`` of
    ``params`` rows stays the same); ``taken``: the keys of the parameters, whose names
    a leaf does not shadow.

    DuckDB merges the shapes of all of a parameter's values in one pass
    (``json_group_structure``: a leaf's type is the widest of its values', ``JSON`` when
    they disagree): 19 ms for 10,000 configs where a row per leaf (``json_tree``) took 57."""
    cached = _cache.get(path)
    if cached is None or cached[0] != count:
        rows = con.execute(
            "SELECT key, json_group_structure(value::JSON) FROM params "
            "WHERE value LIKE '{%' AND json_valid(value) GROUP BY key ORDER BY key"
        ).fetchall()
        found = [leaf for key, shape in rows for leaf in _walk(key, "$", json.loads(shape))]
        cached = _cache[path] = (count, found)
    return [leaf for leaf in cached[1] if leaf.name not in taken]


def _walk(param: str, at: str, shape: Any) -> Iterator[Leaf]:
    if not isinstance(shape, dict):  # a scalar's type name, or a list's shape
        kind = _KINDS.get(shape, "text") if isinstance(shape, str) else "text"
        if at != "$":
            yield Leaf(param, at, kind)
        return
    for key, inner in shape.items():
        if CONFIG_KEY.match(key):
            yield from _walk(param, f"{at}.{key}", inner)
