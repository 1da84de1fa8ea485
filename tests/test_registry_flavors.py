"""Each flavor for real: log → load gives the same predictions; the signature fits the example."""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb
import numpy as np
import pytest

import nbtrack
from model_helpers import fitted, iris, make_client, tracked
from nbtrack.client import Client
from nbtrack.models import DataVersion
from nbtrack.registry.core import LibraryVersionWarning, Registry


@pytest.fixture
def client(project_dir: Path) -> Client:
    return make_client(project_dir)


def _round_trip(client: Client, model, example, predict, name="m", **options):
    with tracked(client):
        v = nbtrack.log_model(model, name, input_example=example, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same environment: no version warning
        loaded = nbtrack.load_model(f"models:/{name}/{v.version}")
    np.testing.assert_allclose(predict(loaded, example), predict(model, example), rtol=1e-6)
    return v


def _columns(v):
    return [(c["name"], c["type"]) for c in v.signature["inputs"]]


@pytest.mark.parametrize("fmt", ["skops", "joblib"])
def test_sklearn_round_trips_in_skops_and_joblib(client, fmt):
    X, _ = iris()
    v = _round_trip(client, fitted(), X[:5], lambda m, x: m.predict(x), format=fmt)
    assert v.flavor_meta["format"] == fmt and v.file_name == f"model.{fmt}"
    assert _columns(v) == [(c, "double") for c in X.columns]


def test_xgboost_classifier_round_trips_in_its_json_format(client):
    import xgboost

    X, y = iris()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    v = _round_trip(client, model, X[:5], lambda m, x: m.predict_proba(x))
    assert v.flavor == "xgboost" and v.flavor_meta["class"].endswith("XGBClassifier")
    assert v.file_name == "model.json" and v.env["library"] == "xgboost"
    assert v.signature["outputs"][0]["tensor-spec"]["shape"] == [-1]


def test_lightgbm_booster_round_trips_in_its_text_format(client):
    import lightgbm

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=200)
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, y)
    v = _round_trip(client, model, X[:5], lambda m, x: m.predict(x))
    assert v.flavor == "lightgbm"
    assert v.signature["inputs"] == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}
    ]


def _onnx_linear():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.array([[1.0], [2.0], [3.0]], dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
        [w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_graphs_round_trip_and_load_as_a_runtime_session(client):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = _onnx_linear()

    def run(m, x):
        if hasattr(m, "run"):  # the loaded onnxruntime session
            return m.run(None, {"X": x})[0]
        import onnxruntime

        session = onnxruntime.InferenceSession(m.SerializeToString())
        return session.run(None, {"X": x})[0]

    v = _round_trip(client, model, X, run)
    assert v.flavor == "onnx" and v.flavor_meta == {"inputs": ["X"]}
    assert v.signature["outputs"][0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 1]}


def test_a_model_file_a_run_wrote_gets_its_flavor_from_its_bytes(client):
    import lightgbm
    import xgboost

    X, y = iris()
    root = client.project.root
    xgboost.XGBClassifier(n_estimators=3).fit(X, y).save_model(root / "booster.json")
    lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y).booster_.save_model(
        root / "lgb.txt"
    )
    (root / "linear.onnx").write_bytes(_onnx_linear().SerializeToString())
    with tracked(client) as run:
        run.log_data(
            [DataVersion(p, "output", *client.cache.add_file(root / p), cached=True)
             for p in ("booster.json", "lgb.txt", "linear.onnx")]
        )  # fmt: skip
    reg = Registry(client)
    flavors = [
        reg.register_file(run.run_id, p, "m").flavor
        for p in ("booster.json", "lgb.txt", "linear.onnx")
    ]
    assert flavors == ["xgboost", "lightgbm", "onnx"]
    booster = nbtrack.load_model("m/1")
    assert booster.predict(xgboost.DMatrix(X)).shape == (150, 3)


def test_loading_with_another_library_version_warns(client):
    X, _ = iris()
    with tracked(client):
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    # given a version recorded with an older scikit-learn (as if pulled from a teammate)
    con = duckdb.connect(str(client.project.db_path))
    con.execute(
        "UPDATE model_versions SET env = json_object('library', 'scikit-learn', "
        "'library_version', '0.24.2', 'python', '3.11', 'requirements', [])"
    )
    con.close()
    with pytest.warns(LibraryVersionWarning, match="saved with scikit-learn 0.24.2"):
        model = nbtrack.load_model("churn/1")
    assert model.predict(X[:2]).shape == (2,)


def test_pytorch_modules_round_trip_as_their_state_dict(client):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    X = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)

    def run(m, x):
        if isinstance(m, dict):  # loaded without a module: the state_dict, into a new one
            fresh = torch.nn.Sequential(
                torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
            )
            fresh.load_state_dict(m)
            m = fresh
        with torch.no_grad():
            return m(torch.as_tensor(x)).numpy()

    v = _round_trip(client, net, X, run)
    assert v.flavor == "pytorch" and v.file_name == "state_dict.pt"
    assert v.signature["outputs"][0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 2]}
    # given a module to load into, the weights come back in it, ready to predict
    into = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    loaded = nbtrack.load_model("models:/m/1", model=into)
    assert loaded is into and not loaded.training
    np.testing.assert_allclose(run(loaded, X), run(net, X), rtol=1e-6)
