"""nbtrack: MLOps inside the Jupyter notebook.

``%load_ext nbtrack`` then ``%%track`` on a cell: every execution becomes a run
stored in ``.nbtrack/runs.duckdb``. This module only wires things together; heavy
imports happen on first use so ``%load_ext nbtrack`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__  # written by the build (hatch's version hook)

if TYPE_CHECKING:
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from .gates import GateResult
    from .models import Run
    from .registry.api import (
        delete_model_alias,
        export_model,
        get_model_version,
        list_models,
        load_model,
        log_model,
        model_diff,
        model_lineage,
        register_model,
        set_model_alias,
    )
    from .rundiff import RunDiff
    from .tracking import log_metric, log_metrics

__all__ = [
    "__version__",
    "active_run",
    "delete_model_alias",
    "autolog",
    "check",
    "diff",
    "export_model",
    "get_model_version",
    "get_run",
    "list_models",
    "load_ipython_extension",
    "load_model",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_diff",
    "model_lineage",
    "register_model",
    "runs",
    "set_model_alias",
]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "nbtrack"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbtrack.server"}]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext nbtrack``: register ``%%track`` / ``%track`` and the file watcher."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import unload

    unload(ipython)


# The fluent API: log into the run of the %%track cell that is executing.
# ``log_metric`` / ``log_metrics`` are bound on first use straight to the functions
# in ``tracking`` (see ``__getattr__``): a training loop calls them millions of
# times, and a wrapper with a deferred import would cost more than the logging.
_FAST = ("log_metric", "log_metrics")
# The model registry's functions (``nbtrack.registry.api``), bound on first use.
_REGISTRY = (
    "delete_model_alias", "export_model", "get_model_version", "list_models", "load_model",
    "log_model", "model_diff", "model_lineage", "register_model", "set_model_alias",
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _FAST:
        from . import tracking

        value = getattr(tracking, name)
        globals()[name] = value
        return value
    if name in _REGISTRY:
        from .registry import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbtrack' has no attribute {name!r}")


def log_param(name: str, value: Any) -> None:
    """Record one parameter of the active run."""
    from .tracking import log_params as _log

    _log({name: value})


def log_params(params: dict[str, Any]) -> None:
    """Record several parameters of the active run."""
    from .tracking import log_params as _log

    _log(params)


def log_dataset(df: pd.DataFrame, name: str) -> None:
    """Record an in-memory DataFrame as a data version (content hash, schema, profile)."""
    from .tracking import log_dataset as _log

    _log(df, name)


def active_run() -> Run | None:
    """The run of the ``%%track`` cell executing now, or None."""
    from .tracking import active_run as _active

    return _active()


def runs(
    where: str | None = None, *, kind: str | None = "cell", limit: int | None = None
) -> pd.DataFrame:
    """All runs of the current store as a DataFrame, newest first.

    One row per run; parameters as ``params.<name>`` columns, latest metric values
    as ``metrics.<name>``. ``where`` is a SQL condition over those names, e.g.
    ``nbtrack.runs("lr < 0.1 and acc > 0.9")``.
    """
    from .client import Client

    return Client.open().runs_frame(where=where, kind=kind, limit=limit)


def get_run(ref: str = "last") -> Run:
    """One run by full id, unique prefix or ``last``."""
    from .client import Client

    return Client.open().get_run(ref)


def diff(a: str, b: str, *, all: bool = False) -> RunDiff:
    """What differs between two runs (falsy when nothing does)."""
    from .client import Client

    return Client.open().diff(a, b, all=all)


def check(
    expression: str, run: str = "last", *, against: str | None = None, model: str | None = None
) -> GateResult:
    """Apply a metric gate to a run; the result is truthy when it passed.

    ``model="churn@champion"`` gates the run that produced that model version.

    >>> nbtrack.check("acc >= 0.9 and loss < 0.2")  # doctest: +SKIP
    >>> nbtrack.check("delta(acc) >= -0.01", "last", against="1a2b3c4d")  # doctest: +SKIP
    >>> nbtrack.check("auc > 0.8 and drift.max_psi < 0.2", model="churn@champion")  # doctest: +SKIP
    """
    from .client import Client

    if model is not None:
        from .registry.core import Registry

        return Registry(Client.open()).check(expression, model, against=against)
    return Client.open().check(expression, run, against=against)


def autolog(*, disable: bool = False, registered_model_name: str | None = None) -> None:
    """Record library fits (scikit-learn, XGBoost, LightGBM) inside tracked cells.

    ``registered_model_name="churn"``: each scikit-learn fit (a search's refit best
    estimator) also becomes a new version of that model. ``disable=True`` restores
    the libraries as they were.
    """
    from .autologging import autolog as _autolog

    _autolog(disable=disable, registered_model_name=registered_model_name)
