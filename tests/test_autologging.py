"""``nbtrack.autolog()`` with real libraries in real kernels (scikit-learn, XGBoost, LightGBM)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from conftest import Kernel
from nbtrack.client import Client
from nbtrack.project import resolve_project

SEARCH = """
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
X, y = load_breast_cancer(return_X_y=True)
search = GridSearchCV(make_pipeline(StandardScaler(), SVC()),
                      {"svc__C": [0.1, 1, 10], "svc__gamma": ["scale", 0.01]}, cv=3)
search.fit(X, y)
print(search.best_params_, round(search.best_score_, 6))
predictions = search.predict(X).tolist()
"""


def _stored(project_dir: Path, n: int) -> Client:
    client = Client(resolve_project(project_dir))
    deadline = time.monotonic() + 30
    while True:
        if client.project.db_path.exists():
            _, rows = client.sql("SELECT count(*) FROM runs WHERE status = 'finished'")
            spool = client.project.spool_dir
            if rows[0][0] >= n and not (spool.exists() and any(spool.glob("*.spool"))):
                return client
        assert time.monotonic() < deadline, f"{n} finished runs never reached the store"
        time.sleep(0.1)


def _outputs(reply) -> list[str]:
    """What the user sees from the cell, without nbtrack's summary."""
    return [o["content"]["text"] for o in reply.outputs if o["msg_type"] == "stream"] + [
        str(o["content"]["data"]) for o in reply.outputs if o["msg_type"] == "execute_result"
    ]


def test_a_grid_search_records_the_search_not_its_hundred_inner_fits(
    kernel: Kernel, project_dir: Path
) -> None:
    # given the same search run with autolog off, then on, in one kernel
    off = kernel.ok("%%track search --no-system\n" + SEARCH)
    before = kernel.ok("print(predictions[:40])").text
    kernel.ok("nbtrack.autolog()")
    on = kernel.ok("%%track search --no-system\n" + SEARCH)
    after = kernel.ok("print(predictions[:40])").text
    # then the cell printed and predicted exactly the same
    assert _outputs(off) == _outputs(on) and before == after
    client = _stored(project_dir, 2)
    run = client.get_run("last")
    # and the run holds the search's parameters, its best ones and its score
    assert run.params["GridSearchCV.cv"] == 3
    assert run.params["GridSearchCV.estimator__svc__C"] == 1.0
    best = {k: v for k, v in run.params.items() if k.startswith("GridSearchCV.best.")}
    assert set(best) == {"GridSearchCV.best.svc__C", "GridSearchCV.best.svc__gamma"}
    assert f"{run.metrics['GridSearchCV.best_score']:.6f}".rstrip("0") in on.text
    # but no parameters of the 6 x 3 inner fits (and of the refit) of the pipeline or SVC
    assert not [k for k in run.params if k.startswith(("SVC", "Pipeline", "StandardScaler"))]
    assert all(run.param_sources[k] == "autolog" for k in best)
    # the summary names the best parameters first, not the unfitted estimator's (C=1.0
    # read as the model's C in a new user's fifth trial, 24 more hiding the best one)
    shown = next(line for line in on.text.splitlines() if "params:" in line).split()
    assert shown[1].startswith("GridSearchCV.best.svc__C="), shown[:3]
    # the candidate table is an output of the run, cached, and a series per candidate
    (table,) = [d for d in run.outputs if d.path.endswith("GridSearchCV.cv_results.csv")]
    frame = pd.read_csv(client.project.absolute(table.path))
    assert len(frame) == 6 and "mean_test_score" in frame and table.cached
    series = client.metric_series(run.run_id, ["GridSearchCV.mean_test_score"])
    assert [p.value for p in series["GridSearchCV.mean_test_score"]] == pytest_approx(
        frame["mean_test_score"].tolist()
    )


def pytest_approx(values: list[float]) -> object:
    import pytest

    return pytest.approx(values, rel=1e-12)


def test_plain_fits_cross_validation_and_boosters(kernel: Kernel, project_dir: Path) -> None:
    kernel.ok("%track autolog")
    kernel.ok(
        "%%track fits --no-system\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.model_selection import cross_val_score\n"
        "X, y = load_iris(return_X_y=True)\n"
        "clf = LogisticRegression(C=0.5, max_iter=500).fit(X, y)\n"
        "again = LogisticRegression(C=2.0, max_iter=500).fit(X, y)\n"
        "scores = cross_val_score(LogisticRegression(max_iter=500), X, y, cv=4)\n"
    )
    kernel.ok(
        "%%track boost --no-system\n"
        "import xgboost, lightgbm\n"
        "dtrain = xgboost.DMatrix(X, label=(y == 1).astype(int))\n"
        "booster = xgboost.train({'objective': 'binary:logistic', 'max_depth': 2}, dtrain,\n"
        "                        num_boost_round=5, evals=[(dtrain, 'train')])\n"
        "data = lightgbm.Dataset(X, label=y)\n"
        "gbm = lightgbm.train({'objective': 'multiclass', 'num_class': 3, 'verbose': -1}, data,\n"
        "                     num_boost_round=4, valid_sets=[data], valid_names=['train'])\n"
        "xgb = xgboost.XGBClassifier(n_estimators=3, max_depth=3).fit(X, y, eval_set=[(X, y)],\n"
        "                                                             verbose=False)\n"
    )
    client = _stored(project_dir, 2)
    fits, boost = (client.get_run(r) for r in client.runs_frame()["run_id"][::-1])
    assert fits.params["LogisticRegression.C"] == 0.5
    assert fits.params["LogisticRegression#2.C"] == 2.0
    assert 0.9 < fits.metrics["LogisticRegression.training_score"] <= 1.0
    folds = client.metric_series(fits.run_id, ["LogisticRegression#3.cv_test_score"])
    assert len(folds["LogisticRegression#3.cv_test_score"]) == 4
    assert fits.metrics["LogisticRegression#3.cv_test_score_mean"] > 0.9
    # boosters: their parameters and one point per iteration of each evaluation metric
    assert boost.params["xgboost.max_depth"] == 2
    series = client.metric_series(boost.run_id)
    assert [p.step for p in series["xgboost.train-logloss"]] == [0, 1, 2, 3, 4]
    assert boost.params["lightgbm.objective"] == "multiclass"
    assert [p.step for p in series["lightgbm.train-multi_logloss"]] == [0, 1, 2, 3]
    # the scikit-learn face of XGBoost goes through xgboost.train too
    assert len(series["xgboost#2.validation_0-mlogloss"]) == 3
    assert boost.params["xgboost#2.max_depth"] == 3


def test_boosters_record_their_rounds_and_where_early_stopping_stopped(
    kernel: Kernel, project_dir: Path
) -> None:
    """Found by a new user's fifth trial: ``XGBClassifier(n_estimators=200,
    early_stopping_rounds=5)`` and ``LGBMClassifier(n_estimators=100)`` with
    ``lightgbm.early_stopping(5)`` recorded neither the number of rounds nor the early
    stopping, both passed to ``train`` beside the booster's ``params``, nor where it
    stopped: the settings that matter most for a boosted model (MLflow records them)."""
    kernel.ok("%track autolog")
    kernel.ok(
        "%%track es --no-system\n"
        "import xgboost, lightgbm\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "X, y = load_breast_cancer(return_X_y=True)\n"
        "Xt, yt, Xv, yv = X[:400], y[:400], X[400:], y[400:]\n"
        "xgb = xgboost.XGBClassifier(n_estimators=200, max_depth=2, learning_rate=0.5,\n"
        "                            early_stopping_rounds=3)\n"
        "xgb.fit(Xt, yt, eval_set=[(Xv, yv)], verbose=False)\n"
        "gbm = lightgbm.LGBMClassifier(n_estimators=150, learning_rate=0.5, verbose=-1)\n"
        "gbm.fit(Xt, yt, eval_set=[(Xv, yv)], callbacks=[lightgbm.early_stopping(3, verbose=False)])\n"
        "stops = xgb.best_iteration, gbm.best_iteration_\n"
    )
    stops = kernel.ok("print(*stops)").text.split()
    client = _stored(project_dir, 1)
    (run,) = (client.get_run(r) for r in client.runs_frame()["run_id"])
    got = {k: v for k, v in run.params.items() if "round" in k}
    assert got == {
        "xgboost.num_boost_round": 200,
        "xgboost.early_stopping_rounds": 3,
        "lightgbm.num_boost_round": 150,
        "lightgbm.early_stopping_rounds": 3,
    }
    assert int(stops[0]) < 199 and int(stops[1]) < 150  # both stopped early
    assert run.metrics["xgboost.best_iteration"] == int(stops[0])
    assert run.metrics["lightgbm.best_iteration"] == int(stops[1])


def test_a_random_search_records_its_distributions_the_same_in_every_run(
    kernel: Kernel, project_dir: Path
) -> None:
    """Found by a new user's fifth trial: ``RandomizedSearchCV(pipe, {"clf__C":
    loguniform(1e-2, 1e2)})`` recorded ``param_distributions`` as ``{'clf__C': <...
    rv_continuous_frozen object at 0x7f42163286d0>}``: no bounds, and a memory address
    that made two identical searches differ in every diff."""
    from conftest import run_cli

    kernel.ok("%track autolog")
    search = (
        "%%track rs --no-system\n"
        "from scipy.stats import loguniform, randint\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.model_selection import RandomizedSearchCV\n"
        "from sklearn.tree import DecisionTreeClassifier\n"
        "X, y = load_iris(return_X_y=True)\n"
        "dists = {'max_depth': randint(2, 5), 'min_impurity_decrease': loguniform(1e-4, 1e-1)}\n"
        "RandomizedSearchCV(DecisionTreeClassifier(random_state=0), dists, n_iter=2, cv=2,\n"
        "                   random_state=0).fit(X, y)\n"
    )
    kernel.ok(search)
    kernel.ok(search)
    client = _stored(project_dir, 2)
    a, b = (client.get_run(r) for r in client.runs_frame()["run_id"][::-1])
    key = "RandomizedSearchCV.param_distributions"
    assert a.params[key] == {
        "max_depth": "randint(2, 5)",
        "min_impurity_decrease": "loguniform(0.0001, 0.1)",
    }
    assert a.params == b.params
    diffed = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    assert "param_distributions" not in diffed, diffed


def test_nothing_is_logged_outside_a_tracked_cell_and_disable_restores(project_dir) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import _validation

    import nbtrack

    original_fit, original_cv = LinearRegression.fit, _validation.cross_validate
    nbtrack.autolog()
    try:
        assert LinearRegression.fit is not original_fit
        model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0])
        assert abs(model.coef_[0] - 1.0) < 1e-9  # an untracked fit works and writes nothing
        assert not (project_dir / ".nbtrack").exists()
    finally:
        nbtrack.autolog(disable=True)
    assert LinearRegression.fit is original_fit and _validation.cross_validate is original_cv


def test_each_refit_becomes_a_new_version_of_the_registered_model(project_dir) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    import nbtrack
    from model_helpers import iris, make_client, tracked
    from nbtrack.registry.core import Registry

    client = make_client(project_dir)
    X, y = iris()
    nbtrack.autolog(registered_model_name="iris")
    try:
        # given autolog registering fits: a fit, a refit with another C, then a search
        fitted = []
        for c in (0.05, 5.0):
            with tracked(client) as run:
                fitted.append((run.run_id, LogisticRegression(C=c, max_iter=500).fit(X, y)))
        with tracked(client) as run:
            grid = {"C": [0.1, 1.0]}
            search = GridSearchCV(LogisticRegression(max_iter=500), grid, cv=3).fit(X, y)
            fitted.append((run.run_id, search.best_estimator_))
        # and a fit outside a tracked cell
        LogisticRegression(max_iter=500).fit(X, y)
    finally:
        nbtrack.autolog(disable=True)
    # then each tracked fit is a version, linked to its run, that predicts as the fit did
    # (the search: its refit best estimator, not the search)
    versions = Registry(client).versions("iris")
    assert [(v.version, v.run_id) for v in versions] == [
        (i + 1, run_id) for i, (run_id, _) in enumerate(fitted)
    ]
    for v, (_, model) in zip(versions, fitted, strict=True):
        loaded = nbtrack.load_model(f"models:/iris/{v.version}")
        assert type(loaded) is LogisticRegression and loaded.C == model.C
        assert np.array_equal(loaded.predict(X), model.predict(X))
        assert [c["name"] for c in v.signature["inputs"]] == list(X.columns)
    # and turning autolog off stops registering
    with tracked(client):
        LogisticRegression(max_iter=500).fit(X, y)
    assert len(Registry(client).versions("iris")) == 3
