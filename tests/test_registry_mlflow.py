"""``nbtrack models export --format mlflow``: MLflow's own loader takes the directory.

MLflow runs in a virtual environment of its own (mlflow-skinny with pandas<3, as
RECIPES.md says: plain ``mlflow`` backtracks for minutes against pandas 3), made
once per machine under pytest's cache folder (the system's temporary folder
without it) and reused while its requirements stay the same; nbtrack is not installed
there.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import venv
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from conftest import kernel_env, run_cli
from model_helpers import fitted, iris, make_client, tracked

# The flavors' libraries at the versions this environment saved the models with.
FLAVOR_LIBRARIES = ("scikit-learn", "skops", "xgboost-cpu", "lightgbm", "onnx", "onnxruntime")
REQUIREMENTS = [
    "mlflow-skinny",
    "pandas<3",
    *(f"{dist}=={metadata.version(dist)}" for dist in FLAVOR_LIBRARIES),
]


@pytest.fixture(scope="module")
def mlflow_python(request: pytest.FixtureRequest) -> Path:
    key = hashlib.sha1(json.dumps([sys.version, REQUIREMENTS]).encode()).hexdigest()[:12]
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    name = f"mlflow-venv-{key}"
    folder = cache.mkdir(name) if cache is not None else Path(tempfile.gettempdir()) / name
    python = folder / "bin" / "python"
    done = folder / "READY"
    if not done.exists():
        venv.create(folder, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *REQUIREMENTS],
            check=True,
            timeout=540,
            capture_output=True,
        )
        done.write_text("\n".join(REQUIREMENTS))
    return python


LOAD = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    import mlflow.pyfunc
    X = pd.read_json(sys.argv[2], orient="split")
    model = mlflow.pyfunc.load_model(sys.argv[1])
    meta = model.metadata
    print(json.dumps({
        "pred": np.asarray(model.predict(X)).tolist(),
        "inputs": [c.name for c in meta.get_input_schema().inputs],
        "flavors": sorted(meta.flavors),
        "example": meta.load_input_example(sys.argv[1]).shape[0],
    }))
    """
)


@pytest.mark.parametrize("fmt", ["skops", "joblib"])
def test_an_exported_version_loads_in_mlflow_with_the_same_predictions(
    project_dir, mlflow_python, fmt
):
    client = make_client(project_dir)
    X, _ = iris()
    clf = fitted()
    with tracked(client):
        nbtrack.log_model(clf, "churn", input_example=X[:5], format=fmt)
    nbtrack.set_model_alias("churn", "champion", 1)
    # when the champion is exported from the command line
    out = run_cli("models", "export", "churn@champion", "served", "--format", "mlflow")
    assert out.returncode == 0, out.stderr
    dest = project_dir / "served"
    assert {"MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml",
            "input_example.json", "serving_input_example.json"} <= {p.name for p in dest.iterdir()}  # fmt: skip
    assert (
        f"scikit-learn=={metadata.version('scikit-learn')}"
        in (dest / "requirements.txt").read_text()
    )
    X.to_json(project_dir / "X.json", orient="split", index=False)
    # then MLflow's pyfunc loader, without nbtrack, predicts as the original object does
    env = {**kernel_env(), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    env.pop("PYTHONPATH", None)
    loaded = subprocess.run(
        [str(mlflow_python), "-c", LOAD, str(dest), str(project_dir / "X.json")],
        capture_output=True, text=True, timeout=300, env=env, cwd="/",
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    got = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert np.array_equal(np.asarray(got["pred"]), clf.predict(X))
    assert got["inputs"] == list(X.columns)
    assert got["flavors"] == ["python_function", "sklearn"] and got["example"] == 5
    # and a second export to the same place is refused rather than mixed
    again = run_cli("models", "export", "churn@champion", "served")
    assert again.returncode == 2 and "not an empty folder" in again.stderr


class Thing:
    """Known to no flavor: saved with pickle, which MLflow has no loader for."""


def test_versions_mlflow_cannot_load_are_refused_naming_the_exportable_flavors(project_dir):
    client = make_client(project_dir)
    with tracked(client), pytest.warns(UserWarning):
        nbtrack.log_model(Thing(), "thing")
    out = run_cli("models", "export", "thing/1", "out")
    assert out.returncode == 2 and "exportable flavors are sklearn" in out.stderr
    assert not os.path.exists(project_dir / "out")


LOAD_ARRAY = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    import mlflow.pyfunc
    path, data = sys.argv[1], sys.argv[2]
    X = np.load(data) if data.endswith(".npy") else pd.read_json(data, orient="split")
    model = mlflow.pyfunc.load_model(path)
    pred = model.predict(X)
    if isinstance(pred, dict):  # ONNX: one array per output of the graph
        (pred,) = pred.values()
    print(json.dumps({
        "pred": np.asarray(pred, dtype=float).ravel().tolist(),
        "flavors": sorted(model.metadata.flavors),
        "example": len(model.metadata.load_input_example(path)),
    }))
    """
)


def _xgboost() -> tuple[object, object, object]:
    import xgboost

    X, y = iris()
    model = xgboost.XGBClassifier(n_estimators=8, max_depth=3).fit(X, y)
    return model, X, model.predict(X)


def _lightgbm() -> tuple[object, object, object]:
    import lightgbm

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0] + rng.normal(scale=0.1, size=300)
    model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, y)
    return model, X, model.predict(X)


def _onnx() -> tuple[object, object, object]:
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[1.5], [-2.0], [0.25]], dtype=np.float32), "W")
    b = numpy_helper.from_array(np.array([0.5], dtype=np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
        ],
        "affine",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    X = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    return model, X, session.run(None, {"X": X})[0]


@pytest.mark.parametrize(
    ("flavor", "make"), [("xgboost", _xgboost), ("lightgbm", _lightgbm), ("onnx", _onnx)]
)
def test_xgboost_lightgbm_and_onnx_exports_load_in_mlflow_with_the_same_numbers(
    project_dir, mlflow_python, flavor, make
):
    # given a model of each library, logged with an input example and made champion
    client = make_client(project_dir)
    model, X, expected = make()
    with tracked(client):
        v = nbtrack.log_model(model, "m", input_example=X[:5])
    assert v.flavor == flavor
    nbtrack.set_model_alias("m", "champion", 1)
    # when it is exported in MLflow's format
    out = run_cli("models", "export", "m@champion", "served")
    assert out.returncode == 0, out.stderr
    data = project_dir / ("X.json" if hasattr(X, "to_json") else "X.npy")
    X.to_json(data, orient="split", index=False) if hasattr(X, "to_json") else np.save(data, X)
    # then MLflow's pyfunc loader, with the library but without nbtrack, predicts the same
    env = kernel_env()
    env.pop("PYTHONPATH", None)
    loaded = subprocess.run(
        [str(mlflow_python), "-c", LOAD_ARRAY, str(project_dir / "served"), str(data)],
        capture_output=True, text=True, timeout=300, env=env, cwd="/",
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    got = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert np.allclose(got["pred"], np.asarray(expected, dtype=float).ravel(), rtol=1e-6)
    assert got["flavors"] == sorted(["python_function", flavor]) and got["example"] == 5
