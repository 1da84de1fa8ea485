"""Reads and writes by native libraries, seen at their Python entry points.

Arrow's C++ code opens Parquet, Feather and CSV files, DuckDB's opens the files its
SQL names, XGBoost's its model files and TorchScript its archives, without Python's ``open``: the audit hook
sees nothing. The functions
a user calls are Python-visible though, and name the file: each one below is wrapped
(with wrapt, when its module is imported, before or after ``%load_ext``) to tell
``sink`` (set by ``filewatch`` while a tracked cell runs) which path it is about to
read or write. pandas' ``read_parquet`` and
``to_parquet`` go through Arrow's, so they are covered too.

Outside a tracked cell a wrapper costs one global lookup. The file's own reader runs
untouched; a path the wrapper cannot make out (a buffer, a remote filesystem) is
skipped. What is not wrapped is not seen (docs/design.md, "Files").
"""

from __future__ import annotations

import builtins
import glob
import inspect
import os
import re
import sys
import types
from collections.abc import Callable
from functools import partial
from typing import Any

READ, WRITE, SQL, DATABASE = "read", "write", "sql", "database"
URI = "uri"  # a read of a path with options after it: XGBoost's "train.svm?format=libsvm"
# (path, write) -> None while a tracked cell runs, else None.
sink: Callable[[Any, bool], None] | None = None
GLOB_LIMIT = 10_000

# module -> (attribute, what it does with the file, the parameter naming the file)
HOOKS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "pyarrow.parquet": (
        ("read_table", READ, "source"),
        ("read_metadata", READ, "where"),
        ("read_schema", READ, "where"),
        ("ParquetFile.__init__", READ, "source"),
        ("ParquetDataset.__init__", READ, "path_or_paths"),
        ("write_table", WRITE, "where"),
        ("ParquetWriter.__init__", WRITE, "where"),
        ("write_to_dataset", WRITE, "root_path"),
    ),
    "pyarrow.feather": (("read_table", READ, "source"), ("write_feather", WRITE, "dest")),
    "pyarrow.dataset": (("dataset", READ, "source"), ("write_dataset", WRITE, "base_dir")),
    "pyarrow.csv": (
        ("read_csv", READ, "input_file"),
        ("open_csv", READ, "input_file"),
        ("write_csv", WRITE, "output_file"),
    ),
    "pyarrow.json": (("read_json", READ, "input_file"),),
    "pyarrow.ipc": (
        ("open_file", READ, "source"),
        ("open_stream", READ, "source"),
        ("new_file", WRITE, "sink"),
        ("new_stream", WRITE, "sink"),
    ),
    "pyarrow.orc": (
        ("read_table", READ, "source"),
        ("ORCFile.__init__", READ, "source"),
        ("write_table", WRITE, "where"),
    ),
    # Gradient boosting's C++ opens model files (XGBoost's every load and save;
    # LightGBM's saves, and a Dataset built from a path).
    "xgboost": (
        ("DMatrix.__init__", URI, "data"),
        ("Booster.__init__", READ, "model_file"),
        ("Booster.load_model", READ, "fname"),
        ("Booster.save_model", WRITE, "fname"),
    ),
    "lightgbm": (("Dataset.__init__", READ, "data"), ("Booster.save_model", WRITE, "filename")),
    # TorchScript's C++ reads and writes its archives (torch.load's are Python's open).
    "torch.jit": (("load", READ, "f"), ("save", WRITE, "f")),
    "duckdb": (
        ("connect", DATABASE, "database"),
        *(
            (f"{owner}{name}", SQL, "query")
            for owner in ("", "DuckDBPyConnection.")
            for name in ("sql", "query", "from_query", "execute", "executemany")
        ),
        *(
            (f"{owner}{name}", READ, "path_or_buffer")
            for owner in ("", "DuckDBPyConnection.")
            for name in ("read_parquet", "from_parquet", "read_csv", "from_csv_auto", "read_json")
        ),
        *(
            (f"DuckDBPyRelation.{name}", WRITE, "file_name")
            for name in ("write_parquet", "to_parquet", "write_csv", "to_csv")
        ),
    ),
}

# A string literal or quoted name in SQL ('' and "" escape their quote).
_QUOTED = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"")
_BEFORE_WRITE = re.compile(r"\bTO\s*$", re.IGNORECASE)  # COPY ... TO 'file'
_BEFORE_ATTACH = re.compile(r"\bATTACH\s+(?:DATABASE\s+)?(?:IF\s+NOT\s+EXISTS\s+)?$", re.I)


def sql_files(text: str) -> list[tuple[str, str]]:
    """``(path, READ | WRITE | DATABASE)`` for the files a SQL text names.

    DuckDB reads a file wherever a table may stand (``FROM 'a.csv'``,
    ``read_parquet('d/*.parquet')``) and writes one after ``COPY ... TO``; any quoted
    text that names an existing file (or a glob matching files) is taken as read.

    >>> sql_files("COPY (SELECT * FROM 'in.csv') TO 'out.parquet'")  # doctest: +SKIP
    [('in.csv', 'read'), ('out.parquet', 'write')]
    """
    found: list[tuple[str, str]] = []
    for m in _QUOTED.finditer(text):
        single = m.group(1) is not None
        value = m.group(1) if single else m.group(2)
        value = value.replace("''", "'") if single else value.replace('""', '"')
        if not value or len(value) > 4096 or "\n" in value:
            continue
        before = text[max(0, m.start() - 40) : m.start()]
        if single and _BEFORE_WRITE.search(before):
            found.append((value, WRITE))
        elif single and _BEFORE_ATTACH.search(before):
            found.extend((p, DATABASE) for p in _existing(value))
        elif not any(c in value for c in "*?[") or "/" in value or "." in value:
            # (a bare '*' or '[0-9]+' is a pattern of text, not of files)
            found.extend((p, READ) for p in _existing(value))
    return found


def _existing(value: str) -> list[str]:
    """The local files a path or glob names (none for URLs and missing files)."""
    if value.startswith("file://"):
        value = value[7:]
    elif "://" in value:
        return []
    if any(c in value for c in "*?["):
        return glob.glob(os.path.expanduser(value), recursive=True)[:GLOB_LIMIT]
    return [value] if os.path.isfile(value) else []


def _paths(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths(v)]
    if isinstance(value, (str, bytes, os.PathLike)):
        return [value]
    try:  # an open file (pandas hands Arrow a ``pyarrow.OSFile`` it opened in C++)
        target = os.readlink(f"/proc/self/fd/{value.fileno()}")
    except Exception:
        return []  # a buffer, a stream: not a file
    return [target] if target.startswith("/") else []  # not a pipe or socket


def _note(kind: str, value: Any, kwargs: dict[str, Any]) -> None:
    fs = kwargs.get("filesystem")
    if fs is not None and type(fs).__name__ != "LocalFileSystem":
        return  # a remote filesystem
    if kind == SQL:
        if isinstance(value, str):
            for path, what in sql_files(value):
                _tell(path, what == WRITE)
        return
    if kind == URI:  # (a DataFrame or an array: no path)
        if isinstance(value, (str, os.PathLike)):
            _tell(os.fspath(value).split("?", 1)[0].split("#", 1)[0], False)
        return
    for path in _paths(value):
        if kind == WRITE:
            _tell(path, True)
            continue
        text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else path
        if kind == DATABASE and (text.startswith(":") or "://" in text or text.startswith("md:")):
            continue
        if any(c in text for c in "*?[") or "://" in text:
            for found in _existing(text):
                _tell(found, False)
        else:  # (a database that does not exist yet is about to be created)
            _tell(text, kind == DATABASE and not os.path.exists(text))


def _tell(path: Any, write: bool) -> None:
    report = sink
    if report is not None:
        report(path, write)


def _wrapper(kind: str, position: int, name: str, library: str) -> Any:
    hooks, note = sys.modules[__name__], _note  # (`sink` is set on this module)

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if hooks.sink is not None:
            value = args[position] if len(args) > position else kwargs.get(name)
            try:  # noqa: SIM105 (cheaper than contextlib on a hot path)
                note(kind, value, kwargs)
            except Exception:  # noqa: S110 (bookkeeping never breaks the user's call)
                pass
        return wrapped(*args, **kwargs)

    # DuckDB finds the Python variables its SQL names (`SELECT * FROM df`, "SQL on
    # pandas") in the first frame outside its own package: the wrapper's frame runs in
    # the library's name, so that frame is the user's code, as without nbtrack.
    namespace = {"__name__": library, "__builtins__": builtins}
    return types.FunctionType(wrapper.__code__, namespace, "wrapper", None, wrapper.__closure__)


def _position(original: Any, name: str, method: bool) -> int:
    """Where ``name`` sits among the positional arguments a wrapper receives."""
    try:
        params = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return 0  # a compiled function without a signature: the file comes first
    if method and params and params[0] == "self":
        params = params[1:]
    return params.index(name) if name in params else 0


def _patch(hooks: tuple[tuple[str, str, str], ...], module: Any) -> None:
    import wrapt

    for attribute, kind, name in hooks:
        try:
            parent, _, original = wrapt.resolve_path(module, attribute)
        except AttributeError:
            continue  # not in this version of the library
        position = _position(original, name, inspect.isclass(parent))
        hook = _wrapper(kind, position, name, module.__name__)
        wrapt.wrap_function_wrapper(module, attribute, hook)


_installed = False


def install() -> None:
    """Wrap the entry points of each library now if imported, else when it is."""
    global _installed
    if _installed:
        return
    import wrapt

    for module, hooks in HOOKS.items():
        wrapt.register_post_import_hook(partial(_patch, hooks), module)
    _installed = True
