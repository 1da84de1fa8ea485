"""``nbtrack.autolog()``: library fits record themselves inside tracked cells.

scikit-learn: every estimator's ``fit`` logs ``get_params()`` as parameters under
the estimator's class name (``SVC.C``; a second fit of the same class in one cell is
``SVC#2.C``) and, for a classifier or regressor, ``<name>.training_score``
(``score`` on the training data). A search (``GridSearchCV``, ``RandomizedSearchCV``,
...) logs its best score and best parameters, each candidate's mean test score as
the series ``<name>.mean_test_score``, and the whole ``cv_results_`` table as a CSV
output of the run (``.nbtrack/autolog/<run id>/<name>.cv_results.csv``, cached like
any output). ``cross_validate`` / ``cross_val_score`` log the fold scores as series
and their mean and spread. Only the outermost call is recorded: the fits a search,
a pipeline or a cross-validation makes inside are not (MLflow's rule too).

XGBoost (``xgboost.train`` and its scikit-learn classes) and LightGBM
(``lightgbm.train`` and its scikit-learn classes): booster parameters as
``xgboost.<param>`` / ``lightgbm.<param>``, with the rounds and early stopping
given beside them (``xgboost.num_boost_round``: ``n_estimators``;
``xgboost.early_stopping_rounds``, as an argument or a callback) and, when it stopped
early, the metric ``xgboost.best_iteration``; and every evaluation metric per
iteration as the series ``xgboost.<data>-<metric>`` / ``lightgbm.<data>-<metric>``.

Keras and PyTorch Lightning: pass ``nbtrack.autologging.keras_callback()`` or
``nbtrack.autologging.lightning_callback()`` to ``fit`` / ``Trainer(callbacks=...)``.

Nothing is logged outside a ``%%track`` cell, results are those of the unpatched
library, and ``autolog(disable=True)`` puts every patched function back.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
from collections.abc import Callable
from typing import Any

from . import tracking
from .validation import ADDRESS

_originals: dict[tuple[Any, str], Any] = {}
_depth = 0  # > 0 while an autologged call runs: the calls inside it are not recorded
_depth_lock = threading.Lock()
_fit_counts: dict[tuple[str, str], int] = {}


_registered_name: str | None = None  # scikit-learn fits become versions of this model


def autolog(*, disable: bool = False, registered_model_name: str | None = None) -> None:
    """Turn autologging on (idempotent) or, with ``disable=True``, off.

    ``registered_model_name``: each recorded scikit-learn fit (a search: its refit best
    estimator) also becomes a new version of this registered model, linked to the run,
    with the first five training rows as its input example (MLflow's autolog option of
    the same name).
    """
    global _registered_name
    if disable:
        for (owner, name), original in list(_originals.items()):
            setattr(owner, name, original)
        _originals.clear()
        _registered_name = None
        return
    if registered_model_name is not None:
        from .registry.values import check_name

        check_name(registered_model_name)
    _registered_name = registered_model_name
    if _originals:
        return
    for patcher in (_patch_sklearn, _patch_xgboost, _patch_lightgbm):
        patcher()


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    if (owner, name) in _originals:
        return
    wrapped = make(original)
    functools.update_wrapper(wrapped, original)
    _originals[(owner, name)] = original
    setattr(owner, name, wrapped)


def _writer() -> tracking.RunWriter | None:
    return tracking._active


class _Outermost:
    """Context: True when this is the outermost autologged call in a tracked cell."""

    def __enter__(self) -> bool:
        global _depth
        with _depth_lock:
            self.record = _depth == 0 and _writer() is not None
            _depth += 1
        return self.record

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _depth_lock:
            _depth -= 1


def _safely(log: Callable[[], None]) -> None:
    # Autolog must never change what the cell does: a logging problem stays silent
    # for the cell and is kept on the run as a tag.
    try:
        log()
    except Exception as exc:
        w = _writer()
        if w is not None:
            w.set_tags({"autolog.error": f"{type(exc).__name__}: {exc}"[:500]})


def _label(w: tracking.RunWriter, cls_name: str) -> str:
    key = (w.run_id, cls_name)
    _fit_counts[key] = _fit_counts.get(key, 0) + 1
    n = _fit_counts[key]
    return cls_name if n == 1 else f"{cls_name}#{n}"


def _param_value(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and len(value) <= 50 and depth < 3:
        return {k: _param_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(repr(value)) <= 200 and depth < 3:
        return [_param_value(v, depth + 1) for v in value]
    if callable(value) or hasattr(value, "get_params"):
        return getattr(value, "__name__", None) or type(value).__name__
    text = _frozen_distribution(value) or ADDRESS.sub("", repr(value))
    return text if len(text) <= 200 else text[:199] + "…"


def _frozen_distribution(value: Any) -> str | None:
    """A SciPy distribution a random search samples from, by its name and arguments:
    ``loguniform(0.0001, 0.1)``, not a repr naming its memory address."""
    dist, args, kwds = (getattr(value, a, None) for a in ("dist", "args", "kwds"))
    name = getattr(dist, "name", None)
    if not isinstance(name, str) or not isinstance(args, tuple) or not isinstance(kwds, dict):
        return None
    parts = [repr(_param_value(a, 3)) for a in args]
    parts += [f"{k}={_param_value(v, 3)!r}" for k, v in kwds.items()]
    return f"{name}({', '.join(parts)})"


# ---------------------------------------------------------------- scikit-learn
def _patch_sklearn() -> None:
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        return
    for _, cls in all_estimators():
        # fit is often inherited (SVC's is BaseLibSVM's): patch the class that defines it
        owner = next((c for c in cls.__mro__ if "fit" in c.__dict__), None)
        if owner is not None:
            _patch(owner, "fit", _fit_wrapper)
    validation = importlib.import_module("sklearn.model_selection._validation")
    public = importlib.import_module("sklearn.model_selection")
    original = validation.cross_validate
    _patch(validation, "cross_validate", _cv_wrapper)
    if getattr(public, "cross_validate", None) is original:
        _originals[(public, "cross_validate")] = original
        setattr(public, "cross_validate", validation.cross_validate)  # noqa: B010


def _fit_wrapper(original: Any) -> Any:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
        with _Outermost() as record:
            result = original(self, *args, **kwargs)
        if record:
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            _safely(lambda: _log_estimator(self, X, y))
        return result

    return fit


def _log_estimator(est: Any, X: Any, y: Any) -> None:
    from sklearn.base import is_classifier, is_regressor

    w = _writer()
    if w is None:
        return
    label = _label(w, type(est).__name__)
    search = hasattr(est, "cv_results_")
    if search:  # its best parameters first: the summary lists them before the settings
        _log_search(w, est, label)
    params = {f"{label}.{k}": _param_value(v) for k, v in est.get_params(deep=True).items()}
    w.log_params(params, source="autolog")
    if (
        not search
        and y is not None
        and (is_classifier(est) or is_regressor(est))
        and hasattr(X, "__len__")
    ):
        w.log_metric(f"{label}.training_score", float(est.score(X, y)))
    if _registered_name is not None:
        _register(w, getattr(est, "best_estimator_", est), X)


def _register(w: tracking.RunWriter, model: Any, X: Any) -> None:
    """The fitted model as the next version of the autolog's registered model."""
    from .registry.core import Registry

    example = X.iloc[:5] if hasattr(X, "iloc") else X[:5] if getattr(X, "ndim", 0) == 2 else None
    assert _registered_name is not None
    Registry(w.client).log_model(model, _registered_name, writer=w, input_example=example)


def _log_search(w: tracking.RunWriter, search: Any, label: str) -> None:
    import pandas as pd

    results = search.cv_results_
    if getattr(search, "best_params_", None) is not None:
        w.log_params(
            {f"{label}.best.{k}": _param_value(v) for k, v in search.best_params_.items()},
            source="autolog",
        )
    if hasattr(search, "best_score_"):
        w.log_metric(f"{label}.best_score", float(search.best_score_))
    if hasattr(search, "best_index_"):
        w.log_metric(f"{label}.best_index", float(search.best_index_))
    for i, score in enumerate(results.get("mean_test_score", [])):
        w.log_metric(f"{label}.mean_test_score", float(score), step=i)
    folder = w.project.folder / "autolog" / w.run_id
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / f"{label}.cv_results.csv"
    frame = pd.DataFrame({k: list(v) for k, v in results.items()})
    frame.to_csv(table, index=False)
    _log_output(w, str(table))


def _log_output(w: tracking.RunWriter, path: str) -> None:
    from .hashing import StatCache
    from .versioning import version_path

    version = version_path(
        w.project,
        path,
        "output",
        cache=w.client.cache,
        stat_cache=StatCache.for_folder(w.project.folder),
    )
    w.log_data([version])


def _cv_wrapper(original: Any) -> Any:
    def cross_validate(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        with _Outermost() as record:
            result = original(estimator, *args, **kwargs)
        if record:
            _safely(lambda: _log_cv(estimator, result))
        return result

    return cross_validate


def _log_cv(estimator: Any, result: dict[str, Any]) -> None:
    import numpy as np

    w = _writer()
    if w is None:
        return
    label = _label(w, type(estimator).__name__)
    w.log_params(
        {f"{label}.{k}": _param_value(v) for k, v in estimator.get_params(deep=True).items()},
        source="autolog",
    )
    for key, values in result.items():
        if not key.startswith(("test_", "train_")):
            continue
        scores = np.asarray(values, dtype=float)
        for i, v in enumerate(scores):
            w.log_metric(f"{label}.cv_{key}", float(v), step=i)
        w.log_metrics({f"{label}.cv_{key}_mean": float(scores.mean())})
        w.log_metrics({f"{label}.cv_{key}_std": float(scores.std())})


# ---------------------------------------------------------------- boosters
def _booster_wrapper(prefix: str, add_callback: Callable[[dict[str, Any], str], None]) -> Any:
    def make(original: Any) -> Any:
        def train(params: Any, *args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            with _Outermost() as record:
                if record:
                    w = _writer()
                    assert w is not None
                    label = _label(w, prefix)  # a second booster in the cell: xgboost#2
                    rounds = _rounds(original, args, kwargs)
                    _safely(
                        lambda: w.log_params(
                            {f"{label}.{k}": _param_value(v) for k, v in dict(params).items()}
                            | {f"{label}.{k}": v for k, v in rounds.items()},
                            source="autolog",
                        )
                    )
                    add_callback(kwargs, label)
                    booster = original(params, *args, **kwargs)
                    if "early_stopping_rounds" in rounds:
                        _safely(lambda: _log_best_iteration(w, label, booster))
                    return booster
                return original(params, *args, **kwargs)

        return train

    return make


def _rounds(original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int]:
    """The boosting rounds and early stopping a ``train`` call was given beside its
    ``params`` (the scikit-learn classes pass ``n_estimators`` and
    ``early_stopping_rounds`` there): ``num_boost_round`` always, its default
    included; ``early_stopping_rounds`` when set, as an argument (XGBoost) or as an
    early-stopping callback (``lightgbm.early_stopping(5)``, XGBoost's ``EarlyStopping``)."""
    try:
        sig = inspect.signature(original)
        bound = sig.bind_partial(None, *args, **kwargs).arguments
    except (TypeError, ValueError):
        return {}
    out: dict[str, int] = {}
    default = sig.parameters.get("num_boost_round")
    rounds = bound.get("num_boost_round", default.default if default is not None else None)
    if isinstance(rounds, int):
        out["num_boost_round"] = rounds
    stop = bound.get("early_stopping_rounds")
    for cb in bound.get("callbacks") or ():
        stop = stop or getattr(cb, "stopping_rounds", None) or getattr(cb, "rounds", None)
    if isinstance(stop, int):
        out["early_stopping_rounds"] = stop
    return out


def _log_best_iteration(w: tracking.RunWriter, label: str, booster: Any) -> None:
    """Where early stopping kept the model, as the library numbers it (XGBoost from 0,
    LightGBM from 1): the ``best_iteration`` its scikit-learn classes expose."""
    best = getattr(booster, "best_iteration", None)
    if isinstance(best, int):
        w.log_metrics({f"{label}.best_iteration": float(best)})


def _patch_booster(module_names: list[str], prefix: str, add: Callable[..., None]) -> None:
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            return
        if hasattr(module, "train"):
            _patch(module, "train", _booster_wrapper(prefix, add))


def _patch_xgboost() -> None:
    try:
        import xgboost
    except ImportError:
        return

    class _Log(xgboost.callback.TrainingCallback):
        def __init__(self, label: str) -> None:
            super().__init__()
            self.label = label

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            w = _writer()
            if w is not None:
                for data, metrics in evals_log.items():
                    for metric, values in metrics.items():
                        value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
                        w.log_metric(f"{self.label}.{data}-{metric}", float(value), step=epoch)
            return False

    def add(kwargs: dict[str, Any], label: str) -> None:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), _Log(label)]

    _patch_booster(["xgboost.training", "xgboost", "xgboost.sklearn"], "xgboost", add)


def _patch_lightgbm() -> None:
    def add(kwargs: dict[str, Any], label: str) -> None:
        def log(env: Any) -> None:
            w = _writer()
            for item in env.evaluation_result_list or []:
                if w is not None:
                    w.log_metric(f"{label}.{item[0]}-{item[1]}", float(item[2]), step=env.iteration)

        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), log]

    _patch_booster(["lightgbm.engine", "lightgbm", "lightgbm.sklearn"], "lightgbm", add)


# ---------------------------------------------------------------- deep learning callbacks
def keras_callback() -> Any:
    """A Keras callback logging every epoch's metrics (``keras.<name>``, step = epoch).

    >>> model.fit(x, y, epochs=5, callbacks=[nbtrack.autologging.keras_callback()])  # doctest: +SKIP
    """
    import keras

    class NbtrackKeras(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            w = _writer()
            for key, value in (logs or {}).items():
                if w is not None:
                    w.log_metric(f"keras.{key}", float(value), step=epoch)

    return NbtrackKeras()


def lightning_callback() -> Any:
    """A PyTorch Lightning callback logging the trainer's metrics after every epoch.

    >>> trainer = Trainer(callbacks=[nbtrack.autologging.lightning_callback()])  # doctest: +SKIP
    """
    try:
        from lightning.pytorch.callbacks import Callback
    except ImportError:
        from pytorch_lightning.callbacks import Callback

    class NbtrackLightning(Callback):
        def _log(self, trainer: Any) -> None:
            w = _writer()
            for key, value in trainer.callback_metrics.items():
                if w is not None:
                    w.log_metric(f"lightning.{key}", float(value), step=trainer.current_epoch)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._log(trainer)

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._log(trainer)

    return NbtrackLightning()
