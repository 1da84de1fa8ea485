"""The registry's Python functions, re-exported as ``nbtrack.log_model`` and friends.

Inside a ``%%track`` cell they use that run's store (and link what they do to the
run); elsewhere the store of the current folder.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..exceptions import NoActiveRunError

if TYPE_CHECKING:
    import pandas as pd

    from .core import Registry
    from .lineage import Lineage, ModelDiff
    from .values import AliasMove, ModelVersion


def _registry() -> Registry:
    from .. import tracking
    from ..client import Client
    from .core import Registry

    writer = tracking._active
    return Registry(writer.client if writer is not None else Client.open())


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    flavor: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    **options: Any,
) -> ModelVersion:
    """Save ``model`` as the next version of registered model ``name``, linked to this run.

    Works inside a ``%%track`` cell only (the version's lineage is that run). The
    flavor is picked from the object (``flavor=`` forces one; scikit-learn takes
    ``format="joblib"`` instead of skops). ``input_example`` (a few rows) gives
    the signature and is kept with the version.

    >>> v = nbtrack.log_model(clf, "churn", input_example=X_test[:5])  # doctest: +SKIP
    >>> v.version, v.flavor  # doctest: +SKIP
    (3, 'sklearn')
    """
    from .. import tracking

    writer = tracking._active
    if writer is None:
        raise NoActiveRunError(
            "log_model works inside a %%track cell, so the version is linked to the run that "
            "trained it; to register a file a run already wrote, use "
            "nbtrack.register_model(RUN, PATH, NAME)"
        )
    from .core import Registry

    return Registry(writer.client).log_model(
        model, name, writer=writer, input_example=input_example, flavor=flavor,
        description=description, tags=tags, **options,
    )  # fmt: skip


def load_model(uri: str, **kwargs: Any) -> Any:
    """The live model of ``models:/NAME@ALIAS``, ``models:/NAME/3`` or ``NAME`` (newest).

    The bytes are checked against their recorded hash first; a different version of
    the model's library gives a ``LibraryVersionWarning``. In a ``%%track`` cell the
    run records the version as an input. PyTorch versions load as a ``state_dict``,
    or into ``model=`` (a module instance) when given.
    """
    from .. import tracking

    return _registry().load(uri, writer=tracking._active, **kwargs)


def register_model(run: str, path: str, name: str, *, flavor: str | None = None) -> ModelVersion:
    """Make a version of ``name`` from a file that ``run`` wrote (flavor read from the file)."""
    return _registry().register_file(run, path, name, flavor=flavor)


def list_models() -> pd.DataFrame:
    """Every registered model: versions, newest version and flavor, aliases."""
    import pandas as pd

    rows = [m.to_dict() for m in _registry().models()]
    cols = ["name", "versions", "latest_version", "latest_flavor", "aliases", "description"]
    return pd.DataFrame([{c: r[c] for c in cols} for r in rows], columns=cols)


def get_model_version(ref: str) -> ModelVersion:
    """One version: ``NAME/3``, ``NAME@alias``, ``NAME`` (newest) or a ``models:/`` URI."""
    return _registry().get(ref)


def set_model_alias(name: str, alias: str, version: int) -> AliasMove:
    """Point ``alias`` at a version of ``name``; the move is kept in the alias history."""
    return _registry().set_alias(name, version, alias)


def delete_model_alias(name: str, alias: str) -> AliasMove:
    """Remove an alias (the removal is kept in the history too)."""
    return _registry().remove_alias(name, alias)


def model_lineage(ref: str) -> Lineage:
    """The producing run, the runs upstream of its data and the runs that read the model."""
    return _registry().lineage(ref)


def model_diff(a: str, b: str) -> ModelDiff:
    """Two versions compared: run diff of their producing runs, signature, size."""
    return _registry().diff(a, b)


def export_model(ref: str, dest: str | os.PathLike[str], fmt: str = "mlflow") -> str:
    """Write a version as an MLflow model directory that MLflow's tools load and serve."""
    return str(_registry().export(ref, dest, fmt))


__all__ = [
    "delete_model_alias",
    "export_model",
    "get_model_version",
    "list_models",
    "load_model",
    "log_model",
    "model_diff",
    "model_lineage",
    "register_model",
    "set_model_alias",
]
