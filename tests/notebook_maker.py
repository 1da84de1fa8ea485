"""Small pipeline notebooks for tests: a ``parameters`` cell and one tracked cell that
reads some files and writes others, as a user's notebook would."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat


def pipeline_notebook(
    path: Path,
    *,
    reads: Sequence[str] = (),
    writes: Sequence[str] = (),
    params: Mapping[str, Any] | None = None,
    extra: str = "",
    sleep: float = 0.0,
) -> Path:
    """Write a notebook at ``path`` whose tracked cell reads ``reads`` and writes each of
    ``writes`` with what it read, its parameters and ``extra`` code (run first)."""
    params = dict(params or {"scale": 1})
    body = [
        "import time" if sleep else "",
        f"time.sleep({sleep})" if sleep else "",
        extra,
        f"text = ''.join(open(p).read() for p in {list(reads)!r})",
        f"text += repr(({', '.join(params)},))",
        f"for out in {list(writes)!r}:",
        "    import os",
        "    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)",
        "    with open(out, 'w') as f:",
        "        f.write(text + '\\n')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbtrack"),
        cell,
        nbformat.v4.new_code_cell(
            f"%%track {path.stem}\n" + "\n".join(line for line in body if line)
        ),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def record_execution(
    folder: Path,
    notebook: str,
    *,
    reads: Sequence[str] = (),
    writes: Sequence[str] = (),
    status: str = "finished",
) -> str:
    """Record an execution of a pipeline notebook as papermill through nbtrack records one,
    without a kernel: the notebook file and its snapshot, a notebook run, and one cell run
    that read ``reads`` and wrote ``writes`` (written here). Returns the notebook run's id."""
    from factory import record_run
    from nbtrack.cache import Cache
    from nbtrack.project import resolve_project

    path = pipeline_notebook(folder / notebook, reads=reads, writes=writes)
    snapshot = Cache(resolve_project(folder).cache_dir).put_bytes(
        path.read_text(encoding="utf-8").encode("utf-8")
    )
    for out in writes:
        target = folder / out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"written by {notebook}\n")
    parent = record_run(
        folder,
        Path(notebook).stem,
        kind="notebook",
        notebook_path=notebook,
        notebook_hash=snapshot,
        params={"scale": 1},
        param_source="default",
        status=status,
    )
    record_run(
        folder,
        "cell",
        parent_id=parent,
        notebook_path=notebook,
        inputs=[folder / p for p in reads],
        outputs=[folder / p for p in writes],
        status=status,
    )
    return parent
