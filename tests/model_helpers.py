"""Shared by the model registry tests: a project, a tracked run around a block, a model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbtrack.client import Client
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter, set_active


def make_client(folder: Path) -> Client:
    (folder / ".nbtrack").mkdir(parents=True, exist_ok=True)
    return Client(resolve_project(folder))


@contextmanager
def tracked(client: Client, name: str = "train", **params: Any) -> Iterator[RunWriter]:
    """A run that is active while the block executes, as in a ``%%track`` cell; stored after."""
    writer = RunWriter.start(client.project, name=name, params=params or None)
    set_active(writer)
    try:
        yield writer
    finally:
        set_active(None)
        writer.finish("finished")
        writer.wait()


def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True, as_frame=True)


def fitted(max_iter: int = 300, C: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = iris()
    return LogisticRegression(max_iter=max_iter, C=C).fit(X, y)
