"""A registered version as an MLflow model directory (MLflow's documented format).

``DIR/MLmodel`` names the library flavor and ``python_function`` (the interface
``mlflow.pyfunc.load_model`` and ``mlflow models serve`` use), the model file is
the library's own format, ``requirements.txt`` / ``python_env.yaml`` /
``conda.yaml`` pin the environment, and the signature and input example are
written as MLflow writes them. Nothing from nbtrack is needed to load it.
"""

from __future__ import annotations

import json
import pickle
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import UsageError
from ..models import Run
from .values import ModelVersion

MLMODEL = "MLmodel"
EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"


class ModelSource(Protocol):
    """What the export needs of the registry: a version's verified bytes, or the live model."""

    def verified_file(self, mv: ModelVersion) -> Path: ...

    def load(self, ref: str) -> Any: ...


def _library_conf(
    reg: ModelSource, mv: ModelVersion, dest: Path
) -> tuple[str, dict[str, Any], str]:
    """Write the model file; returns (flavor name, flavor conf, file for python_function)."""
    src = reg.verified_file(mv)
    version = mv.env.get("library_version")
    meta = mv.flavor_meta
    if mv.flavor == "sklearn":
        if meta.get("format") == "skops":
            shutil.copyfile(src, dest / "model.skops")
            conf: dict[str, Any] = {
                "pickled_model": "model.skops", "serialization_format": "skops",
                "skops_trusted_types": list(meta.get("trusted") or []) or None,
            }  # fmt: skip
        else:
            # MLflow reads plain pickle, not joblib's container: re-written once here.
            model = reg.load(f"{mv.name}/{mv.version}")
            with open(dest / "model.pkl", "wb") as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
            conf = {"pickled_model": "model.pkl", "serialization_format": "pickle"}
        return (
            "sklearn",
            {**conf, "sklearn_version": version, "code": None},
            str(conf["pickled_model"]),
        )
    if mv.flavor == "xgboost":
        name = mv.file_name if Path(mv.file_name).suffix in (".json", ".ubj") else "model.json"
        shutil.copyfile(src, dest / name)
        conf = {
            "data": name, "model_class": meta.get("class", "xgboost.core.Booster"),
            "model_format": Path(name).suffix[1:], "xgb_version": version, "code": None,
        }  # fmt: skip
        return "xgboost", conf, name
    if mv.flavor == "lightgbm":
        shutil.copyfile(src, dest / "model.lgb")
        conf = {
            "data": "model.lgb", "model_class": "lightgbm.basic.Booster",
            "lgb_version": version, "code": None,
        }  # fmt: skip
        return "lightgbm", conf, "model.lgb"
    if mv.flavor == "onnx":
        shutil.copyfile(src, dest / "model.onnx")
        conf = {
            "data": "model.onnx", "onnx_version": version,
            "providers": ["CPUExecutionProvider"], "onnx_session_options": None, "code": None,
        }  # fmt: skip
        return "onnx", conf, "model.onnx"
    raise UsageError(
        f"a {mv.flavor} version cannot be exported as an MLflow model: MLflow loads "
        + (
            "a whole pickled PyTorch module, and this version keeps only its state_dict"
            if mv.flavor == "pytorch"
            else "no generic pickle"
        )
        + "; the exportable flavors are sklearn, xgboost, lightgbm and onnx"
    )


def _yaml(obj: Any) -> str:
    import yaml

    return str(yaml.safe_dump(obj, default_flow_style=False, sort_keys=True))


def _write_example(mv: ModelVersion, dest: Path) -> dict[str, Any] | None:
    ex = mv.input_example
    if not ex:
        return None
    if ex.get("type") == "dataframe":
        body = {"columns": ex["columns"], "data": ex["data"]}
        (dest / EXAMPLE_FILE).write_text(json.dumps(body))
        serving = {"dataframe_split": body}
        info = {"type": "dataframe", "pandas_orient": "split"}
    else:
        # As MLflow 3 writes an array example: the bare nested list (its loader reads
        # no {"inputs": ...} wrapper there); the serving example keeps the wrapper.
        (dest / EXAMPLE_FILE).write_text(json.dumps(ex["data"]))
        serving = {"inputs": ex["data"]}
        info = {"type": "ndarray"}
    (dest / SERVING_EXAMPLE_FILE).write_text(json.dumps(serving, indent=2))
    return {"artifact_path": EXAMPLE_FILE, "serving_input_path": SERVING_EXAMPLE_FILE, **info}


def write_mlflow(reg: ModelSource, mv: ModelVersion, dest: Path, run: Run | None) -> Path:
    """Write ``mv`` into ``dest`` (new or empty) as an MLflow model directory."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} exists and is not an empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        flavor, conf, model_file = _library_conf(reg, mv, dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    python = mv.env.get("python") or "3"
    requirements = ["mlflow", *mv.env.get("requirements", [])]
    if mv.input_example and mv.input_example.get("type") == "dataframe":
        requirements.append("pandas")
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (dest / "python_env.yaml").write_text(
        _yaml(
            {
                "python": python,
                "build_dependencies": ["pip", "setuptools", "wheel"],
                "dependencies": ["-r requirements.txt"],
            }
        )  # fmt: skip
    )
    (dest / "conda.yaml").write_text(
        _yaml(
            {
                "name": "mlflow-env",
                "channels": ["conda-forge"],
                "dependencies": [f"python={python}", "pip", {"pip": requirements}],
            }
        )  # fmt: skip
    )
    pyfunc: dict[str, Any] = {
        "loader_module": f"mlflow.{flavor}",
        "python_version": python,
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
    }
    pyfunc["model_path" if flavor == "sklearn" else "data"] = model_file
    if flavor == "sklearn":
        pyfunc["predict_fn"] = "predict"
    mlmodel: dict[str, Any] = {
        "flavors": {"python_function": pyfunc, flavor: conf},
        "model_uuid": uuid.uuid4().hex,
        "run_id": mv.run_id,
        "utc_time_created": str(datetime.now(timezone.utc).replace(tzinfo=None)),
        "model_size_bytes": sum(p.stat().st_size for p in dest.iterdir() if p.is_file()),
        "metadata": {
            "nbtrack_model": mv.name,
            "nbtrack_version": mv.version,
            "nbtrack_hash": mv.hash,
            "nbtrack_notebook": run.notebook_path if run else None,
        },  # fmt: skip
    }
    if mv.signature:
        mlmodel["signature"] = {
            "inputs": json.dumps(mv.signature.get("inputs")),
            "outputs": json.dumps(mv.signature["outputs"]) if mv.signature.get("outputs") else None,
            "params": None,
        }
    example = _write_example(mv, dest)
    if example:
        mlmodel["saved_input_example_info"] = example
    (dest / MLMODEL).write_text(_yaml(mlmodel))
    return dest
