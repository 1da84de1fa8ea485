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

REQUIREMENTS = [
    "mlflow-skinny",
    "pandas<3",
    f"scikit-learn=={metadata.version('scikit-learn')}",
    f"skops=={metadata.version('skops')}",
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
