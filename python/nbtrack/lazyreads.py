"""The files a lazy reader made by an earlier cell reads when a tracked cell runs it.

A DuckDB relation (``rel = duckdb.read_csv("data.csv")``, ``duckdb.sql("... FROM
'a.parquet'")``) and an Arrow dataset (``pyarrow.dataset.dataset("parts")``) name their
files when they are made, and read them each time they are run: ``rel.df()``,
``dset.to_table()`` in a later cell. The library hooks saw the path outside any run, so
the sixteenth trial's run of the cell that read the file recorded no input. So does a
memory map (``np.load("big.npy", mmap_mode="r")``, ``np.memmap``): its bytes are read from
the file as a cell reads them; and a file an earlier cell opened for reading (``fh =
open("data.csv")``, pandas' ``read_csv(..., chunksize=10)``), read by the cell. A cell
that uses such an object reads the files it names (``filewatch.arm``).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from .libhooks import READ, sql_files


def lazy_files(value: Any) -> list[str]:
    """The local files a DuckDB relation's SQL, an Arrow file dataset or a numpy memory
    map reads, or none."""
    kind = type(value)
    if isinstance(value, io.IOBase) or kind.__name__ == "TextFileReader":
        return _open_file(value)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.memmap):
        name = getattr(value, "filename", None)  # (a slice of one keeps its file)
        return [os.path.abspath(name)] if isinstance(name, str) else []
    module = getattr(kind, "__module__", None)
    if not isinstance(module, str):
        return []
    try:
        if module.startswith("duckdb") and kind.__name__ == "DuckDBPyRelation":
            text = value.sql_query()  # (the query's text: nothing is run)
            return [os.path.abspath(p) for p, what in sql_files(text) if what == READ]
        if module.startswith("pyarrow") and kind.__name__ == "FileSystemDataset":
            if type(value.filesystem).__name__ != "LocalFileSystem":
                return []  # a remote filesystem
            return [os.path.abspath(p) for p in value.files if isinstance(p, str)]
    except Exception:  # a closed connection, a relation that cannot say: nothing known
        return []
    return []


def _open_file(value: Any) -> list[str]:
    """The file a file object open for reading holds (pandas' chunked reader: the one it
    reads from), by its descriptor: where it is now, whatever the folder it was opened in."""
    handles = getattr(value, "handles", None)  # (pandas' TextFileReader)
    handle = getattr(handles, "handle", None) if handles is not None else value
    try:
        if not isinstance(handle, io.IOBase) or handle.closed or not handle.readable():
            return []
        target = os.readlink(f"/proc/self/fd/{handle.fileno()}")
    except (OSError, ValueError, AttributeError):
        return []  # a buffer, a socket, no /proc: nothing known
    return [target] if target.startswith("/") else []  # not a pipe or socket
