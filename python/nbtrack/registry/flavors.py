"""Flavors: how each library's models are saved in its own format and loaded back.

A small registry (as papermill's engines): ``register`` a ``Flavor``, ``get`` one by
name (an unknown name fails with the valid ones), ``for_object`` picks the flavor of
a live object, ``detect`` the flavor of a file. Library imports happen only when a
flavor is used, so an absent library costs nothing until its models are.
"""

from __future__ import annotations

import pickle
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from ..exceptions import UsageError


class LeastPortableWarning(UserWarning):
    """A model was saved with the generic pickle flavor."""


class Flavor:
    """One way to save and load models. Subclasses fill in the class attributes."""

    name = ""
    module = ""  # the import name that marks an object of this library
    distributions: tuple[str, ...] = ()  # what a loader needs installed (first: the library)
    file_name = "model.bin"
    suffixes: tuple[str, ...] = ()

    def handles(self, obj: Any) -> bool:
        return any(
            (getattr(t, "__module__", "") or "").split(".")[0] == self.module
            for t in type(obj).__mro__
        )

    def detect(self, path: Path) -> bool:
        return path.suffix.lower() in self.suffixes

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        """Write ``obj`` to ``dest``; returns what ``load`` needs besides the file."""
        raise NotImplementedError

    def file_name_for(self, options: dict[str, Any]) -> str:
        return self.file_name

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError

    def predict(self, obj: Any, data: Any) -> Any:
        """The model's output for ``data`` (for the signature), or None if it has no predict."""
        predict = getattr(obj, "predict", None)
        return predict(data) if callable(predict) else None

    def file_meta(self, path: Path) -> dict[str, Any]:
        """What ``load`` needs, for a file this flavor did not write itself."""
        return {}

    def library_version(self) -> str | None:
        return version_of(self.distributions[0]) if self.distributions else None

    def requirements(self, meta: dict[str, Any]) -> tuple[str, ...]:
        """The distributions a loader of this model needs installed."""
        return self.distributions


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _import_class(path: str) -> Any:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class SklearnFlavor(Flavor):
    """scikit-learn estimators: skops (safe to load, the default) or joblib on request."""

    name = "sklearn"
    module = "sklearn"
    distributions = ("scikit-learn", "numpy", "scipy")
    file_name = "model.skops"
    suffixes = (".skops", ".joblib", ".jbl")

    def _format(self, options: dict[str, Any]) -> str:
        return str(options.get("format") or ("skops" if version_of("skops") else "joblib"))

    def file_name_for(self, options: dict[str, Any]) -> str:
        return "model.joblib" if self._format(options) == "joblib" else self.file_name

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        fmt = self._format(options)
        if fmt == "skops":
            import skops.io as sio

            sio.dump(obj, dest)
            return {"format": "skops", "trusted": sio.get_untrusted_types(file=dest)}
        if fmt == "joblib":
            import joblib

            joblib.dump(obj, dest)
            return {"format": "joblib"}
        raise UsageError(f"the sklearn flavor saves as 'skops' or 'joblib', not {fmt!r}")

    def file_meta(self, path: Path) -> dict[str, Any]:
        if path.suffix.lower() == ".skops":
            import skops.io as sio

            return {"format": "skops", "trusted": sio.get_untrusted_types(file=path)}
        return {"format": "joblib"}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        if meta.get("format") == "skops":
            import skops.io as sio

            # Types beyond those recorded when the model was logged are refused: the
            # bytes were checked against their hash, so any extra one is not ours.
            return sio.load(path, trusted=list(meta.get("trusted") or []))
        import joblib

        return joblib.load(path)

    def requirements(self, meta: dict[str, Any]) -> tuple[str, ...]:
        return (*self.distributions, "skops" if meta.get("format") == "skops" else "joblib")


class XGBoostFlavor(Flavor):
    """XGBoost boosters and their scikit-learn wrappers, in XGBoost's JSON format."""

    name = "xgboost"
    module = "xgboost"
    distributions = ("xgboost", "numpy")
    file_name = "model.json"
    suffixes = (".ubj",)

    def detect(self, path: Path) -> bool:
        if path.suffix.lower() == ".json":
            with open(path, "rb") as f:
                head = f.read(4096)
            return b'"learner"' in head
        return super().detect(path)

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        obj.save_model(str(dest))
        return {"class": _class_path(obj)}

    def file_meta(self, path: Path) -> dict[str, Any]:
        return {"class": "xgboost.core.Booster"}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        model = _import_class(meta.get("class") or "xgboost.core.Booster")()
        model.load_model(str(path))
        return model

    def predict(self, obj: Any, data: Any) -> Any:
        import xgboost

        if isinstance(obj, xgboost.Booster):
            return obj.predict(xgboost.DMatrix(data))
        return obj.predict(data)


class LightGBMFlavor(Flavor):
    """LightGBM boosters in LightGBM's text format (scikit-learn wrappers load as Booster)."""

    name = "lightgbm"
    module = "lightgbm"
    distributions = ("lightgbm", "numpy")
    file_name = "model.lgb"
    suffixes = (".lgb",)

    def detect(self, path: Path) -> bool:
        with open(path, "rb") as f:
            return f.read(4) == b"tree" or super().detect(path)

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        booster = getattr(obj, "booster_", obj)
        booster.save_model(str(dest))
        return {"class": _class_path(obj)}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        import lightgbm

        return lightgbm.Booster(model_file=str(path))


class PyTorchFlavor(Flavor):
    """A PyTorch module's ``state_dict`` (weights only: loading runs no pickled code)."""

    name = "pytorch"
    module = "torch"
    distributions = ("torch",)
    file_name = "state_dict.pt"
    suffixes = (".pt", ".pth")

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        import torch

        state = obj.state_dict() if hasattr(obj, "state_dict") else obj
        torch.save(state, dest)
        return {"class": _class_path(obj)}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        import torch

        state = torch.load(path, weights_only=True)
        module = kwargs.get("model")
        if module is None:
            return state
        module.load_state_dict(state)
        module.eval()
        return module

    def predict(self, obj: Any, data: Any) -> Any:
        import torch

        if not callable(obj):
            return None
        with torch.no_grad():
            return obj(torch.as_tensor(data)).numpy()


class OnnxFlavor(Flavor):
    """ONNX graphs; loaded as an onnxruntime session where onnxruntime is installed."""

    name = "onnx"
    module = "onnx"
    distributions = ("onnx", "onnxruntime")
    file_name = "model.onnx"
    suffixes = (".onnx",)

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        import onnx

        onnx.save(obj, str(dest))
        return {"inputs": [i.name for i in obj.graph.input]}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        if version_of("onnxruntime"):
            import onnxruntime

            return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        import onnx

        return onnx.load(str(path))

    def predict(self, obj: Any, data: Any) -> Any:
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession(
            obj.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        return session.run(None, {name: np.asarray(data, dtype=np.float32)})[0]


class PickleFlavor(Flavor):
    """Anything pickle can write: the least portable (same classes and versions to load)."""

    name = "pickle"
    module = ""
    distributions = ("cloudpickle",)
    file_name = "model.pkl"
    suffixes = (".pkl", ".pickle")

    def handles(self, obj: Any) -> bool:
        return True

    def save(self, obj: Any, dest: Path, options: dict[str, Any]) -> dict[str, Any]:
        warnings.warn(
            f"no flavor knows {_class_path(obj)}: saved with pickle, the least portable "
            f"format (loading needs the same classes and library versions); "
            f"the portable flavors are {', '.join(n for n in names() if n != 'pickle')}",
            LeastPortableWarning,
            stacklevel=4,
        )
        try:
            with open(dest, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise UsageError(f"pickle cannot save {_class_path(obj)}: {exc}") from exc
        return {"class": _class_path(obj), "python": sys.version.split()[0]}

    def load(self, path: Path, meta: dict[str, Any], **kwargs: Any) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)

    def library_version(self) -> str | None:
        return sys.version.split()[0]


_FLAVORS: dict[str, Flavor] = {}


def register(flavor: Flavor) -> None:
    """Add (or replace) a flavor; later ones are tried first by ``for_object``."""
    _FLAVORS[flavor.name] = flavor


def names() -> list[str]:
    return list(_FLAVORS)


def get(name: str) -> Flavor:
    try:
        return _FLAVORS[name]
    except KeyError:
        raise UsageError(f"no flavor {name!r}; the flavors are {', '.join(names())}") from None


def for_object(obj: Any, *, allow_pickle: bool = True) -> Flavor:
    """The flavor that saves ``obj``: its library's, else pickle (which warns)."""
    # Library flavors before scikit-learn: an XGBClassifier is a scikit-learn estimator too.
    for flavor in reversed(list(_FLAVORS.values())):
        if flavor.name != "pickle" and flavor.handles(obj):
            return flavor
    if allow_pickle and not isinstance(obj, (str, bytes, int, float, type(None))):
        return _FLAVORS["pickle"]
    raise UsageError(
        f"no flavor saves a {type(obj).__name__}; the flavors are {', '.join(names())}"
    )


def detect(path: Path) -> Flavor:
    """The flavor of a model file, from its name and first bytes."""
    for flavor in reversed(list(_FLAVORS.values())):
        try:
            if flavor.detect(path):
                return flavor
        except OSError:
            continue
    raise UsageError(
        f"cannot tell which library wrote {path.name}; name its flavor ({', '.join(names())})"
    )


for _f in (PickleFlavor(), SklearnFlavor(), OnnxFlavor(), PyTorchFlavor(), LightGBMFlavor(),
           XGBoostFlavor()):  # fmt: skip
    register(_f)
