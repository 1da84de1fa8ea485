"""The model registry: versions linked to runs, aliases with their history, refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nbtrack
from conftest import kernel_env, run_cli
from model_helpers import fitted, iris, make_client, tracked
from nbtrack.client import Client
from nbtrack.exceptions import (
    BlobCorruptError,
    BlobMissingError,
    ModelNotFoundError,
    NoActiveRunError,
    UsageError,
)
from nbtrack.models import DataVersion
from nbtrack.registry.core import Registry
from nbtrack.registry.flavors import LeastPortableWarning


@pytest.fixture
def client(project_dir: Path) -> Client:
    return make_client(project_dir)


def test_log_model_makes_numbered_versions_linked_to_the_run_that_loads_back(client):
    # given a fitted classifier in a tracked cell
    X, y = iris()
    clf = fitted()
    # when it is logged twice
    with tracked(client, C=1.0) as run:
        v1 = nbtrack.log_model(clf, "churn", input_example=X[:5])
        v2 = nbtrack.log_model(clf, "churn", input_example=X[:5], description="same again")
    # then the versions are numbered, saved with skops and linked to the run
    assert (v1.version, v2.version) == (1, 2)
    assert v1.flavor == "sklearn" and v1.flavor_meta["format"] == "skops"
    assert v1.run_id == run.run_id and v2.description == "same again"
    # the signature names the example's columns and dtypes, and the output's shape
    assert [(c["name"], c["type"]) for c in v1.signature["inputs"]] == [
        (str(c), "double") for c in X.columns
    ]
    assert v1.signature["outputs"] == [
        {"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}
    ]
    assert "scikit-learn==" + v1.env["library_version"] in v1.env["requirements"]
    # the run records the model's bytes as its output
    stored = client.get_run(run.run_id)
    assert {d.path for d in stored.outputs} == {"models:/churn/1", "models:/churn/2"}
    # and loading by URI gives the same predictions
    again = nbtrack.load_model("models:/churn/1")
    assert (again.predict(X) == clf.predict(X)).all()
    assert nbtrack.get_model_version("churn").version == 2  # the newest


def test_aliases_move_with_a_kept_history_and_load_by_alias(client):
    X, _ = iris()
    with tracked(client):
        for c in (0.1, 1.0):
            nbtrack.log_model(fitted(C=c), "churn", input_example=X[:3])
    reg = Registry(client)
    # when champion goes to 1, then to 2, and is then removed
    first = nbtrack.set_model_alias("churn", "champion", 1)
    second = nbtrack.set_model_alias("churn", "champion", 2)
    assert nbtrack.get_model_version("models:/churn@champion").version == 2
    assert reg.get("churn/2").aliases == ["champion"]
    nbtrack.delete_model_alias("churn", "champion")
    # then each move is kept, in order, with who made it
    moves = reg.history("churn")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, 1), (1, 2), (2, None)]
    assert moves[0].host and moves[0].user and moves[0].at <= second.at
    assert first.seq == 1 and second.seq == 2
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'"):
        nbtrack.load_model("models:/churn@champion")
    # and the CLI shows the history
    out = run_cli("models", "show", "churn/2", cwd=client.project.root)
    assert out.returncode == 0, out.stderr
    assert "champion: 1 -> 2" in out.stdout and "champion: 2 -> removed" in out.stdout


def test_a_repeated_load_by_alias_follows_a_move_made_by_another_process(client):
    with tracked(client):
        for c in (0.01, 10.0):
            nbtrack.log_model(fitted(C=c), "churn")
    nbtrack.set_model_alias("churn", "champion", 1)
    # given the champion loaded twice in this process (the second time from memory)
    for _ in range(2):
        first = nbtrack.load_model("models:/churn@champion")
        assert first.C == 0.01
    # when another process moves the alias
    out = run_cli("models", "alias", "churn", "2", "champion", cwd=client.project.root)
    assert out.returncode == 0, out.stderr
    # then the next load here gets the version it names now
    assert nbtrack.load_model("models:/churn@champion").C == 10.0
    # and once it is removed elsewhere, loading by it is refused
    out = run_cli("models", "rm-alias", "churn", "champion", cwd=client.project.root)
    assert out.returncode == 0, out.stderr
    with pytest.raises(ModelNotFoundError, match="no alias 'champion'"):
        nbtrack.load_model("models:/churn@champion")


def test_bad_references_are_refused_with_what_exists(client):
    X, _ = iris()
    with tracked(client):
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    reg = Registry(client)
    with pytest.raises(ModelNotFoundError, match="no registered model 'nope'"):
        reg.get("nope")
    with pytest.raises(ModelNotFoundError, match="has no version 7"):
        reg.get("churn/7")
    with pytest.raises(ModelNotFoundError, match="has no alias 'prod'"):
        reg.get("churn@prod")
    with pytest.raises(ModelNotFoundError, match="has no version 9"):
        reg.set_alias("churn", 9, "champion")
    assert reg.history("churn") == []  # nothing recorded by the refused move
    for bad in ("my model", "a/b/c", "x@", "-lead", ""):
        with pytest.raises(UsageError):
            reg.get(bad)
    for bad in ("my model", "teams/churn"):
        with tracked(client), pytest.raises(UsageError, match="bad model name"):
            nbtrack.log_model(fitted(), bad)
    for alias in ("latest", "v2", "has space"):
        with pytest.raises(UsageError):
            reg.set_alias("churn", 1, alias)
    out = run_cli("models", "show", "churn@prod", cwd=client.project.root)
    assert out.returncode == 1 and "has no alias 'prod'" in out.stderr


def test_log_model_outside_a_tracked_cell_says_where_it_works(client):
    with pytest.raises(NoActiveRunError, match="inside a %%track cell"):
        nbtrack.log_model(fitted(), "churn")


class Scorer:
    """No library's model: only the pickle flavor saves it."""

    def __init__(self, k: float) -> None:
        self.k = k

    def predict(self, X):
        return np.asarray(X).sum(axis=1) * self.k


def test_objects_no_flavor_knows_go_to_pickle_with_a_warning_or_are_refused(client):
    X, _ = iris()
    with tracked(client):
        with pytest.warns(LeastPortableWarning, match="least portable"):
            v = nbtrack.log_model(Scorer(2.0), "scorer", input_example=X[:4])
        with pytest.raises(UsageError, match="flavors are .*sklearn"):
            nbtrack.log_model(42, "answer")
        with pytest.raises(UsageError, match="does not save a Scorer"):
            nbtrack.log_model(Scorer(1.0), "scorer", flavor="xgboost")
        with pytest.raises(UsageError, match="no flavor 'keras'; the flavors are"):
            nbtrack.log_model(Scorer(1.0), "scorer", flavor="keras")
        with pytest.warns(LeastPortableWarning), pytest.raises(UsageError, match="pickle cannot"):
            nbtrack.log_model(lambda x: x, "scorer")
    assert v.flavor == "pickle"
    loaded = nbtrack.load_model("scorer")
    assert np.allclose(loaded.predict(X), Scorer(2.0).predict(X))


def test_a_corrupted_or_removed_blob_is_refused_with_the_fix(client):
    X, _ = iris()
    with tracked(client):
        v = nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    blob = client.cache.path_for(v.hash)
    nbtrack.load_model("churn/1")  # checked once: a later change must still be seen
    # given bytes changed on disk
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        f.seek(100)
        f.write(b"\x00garbage\x00")
    # then loading refuses, names the fix, and returns nothing half-loaded
    with pytest.raises(BlobCorruptError, match="no longer match.*nbtrack pull"):
        nbtrack.load_model("churn/1")
    # and once the bad blob is moved aside, it is missing, with the same fixes
    assert not blob.exists()
    with pytest.raises(BlobMissingError, match="nbtrack pull.*nbtrack doctor"):
        nbtrack.load_model("churn/1")
    out = run_cli("models", "export", "churn/1", "out", cwd=client.project.root)
    assert out.returncode == 1 and "not in this project's cache" in out.stderr
    assert not (client.project.root / "out").exists()


MOVER = textwrap.dedent(
    """
    import sys
    from nbtrack.client import Client
    from nbtrack.registry.core import Registry
    reg = Registry(Client.open(sys.argv[1]))
    first, second = int(sys.argv[2]), int(sys.argv[3])
    for i in range(int(sys.argv[4])):
        reg.set_alias("churn", first if i % 2 == 0 else second, "champion")
    """
)


def test_two_processes_moving_one_alias_lose_no_move(client):
    X, _ = iris()
    with tracked(client):
        for _ in range(3):
            nbtrack.log_model(fitted(), "churn", input_example=X[:3], format="joblib")
    root = str(client.project.root)
    moves = 12
    procs = [
        subprocess.Popen([sys.executable, "-c", MOVER, root, a, b, str(moves)], env=kernel_env())
        for a, b in (("1", "2"), ("3", "2"))
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0
    history = Registry(client).history("churn", "champion")
    # every move is there, numbered in order, each starting where the one before ended
    assert [m.seq for m in history] == list(range(1, 2 * moves + 1))
    assert all(
        m.from_version == prev.to_version for prev, m in zip(history, history[1:], strict=False)
    )
    assert history[0].from_version is None
    assert Registry(client).get("churn@champion").version == history[-1].to_version


def test_register_turns_a_file_a_run_wrote_into_a_version(client):
    import joblib

    X, _ = iris()
    clf = fitted()
    root = client.project.root
    (root / "models").mkdir()
    joblib.dump(clf, root / "models" / "svc.joblib")
    digest, size = client.cache.add_file(root / "models" / "svc.joblib")
    with tracked(client, name="fit") as run:
        run.log_data([DataVersion("models/svc.joblib", "output", digest, size, cached=True)])
    # when the file is registered from the command line
    out = run_cli(
        "models", "register", run.run_id[:8], "models/svc.joblib", "--name", "digits", cwd=root
    )
    assert out.returncode == 0, out.stderr
    assert "models:/digits/1 (sklearn" in out.stdout
    v = Registry(client).get("digits")
    assert (v.flavor, v.flavor_meta, v.source_path) == (
        "sklearn",
        {"format": "joblib"},
        "models/svc.joblib",
    )
    assert (nbtrack.load_model("models:/digits/1").predict(X) == clf.predict(X)).all()
    # a file the run did not write is refused with what it did write
    out = run_cli("register", run.run_id[:8], "other.pkl", "--name", "digits", cwd=root)
    assert out.returncode == 2 and "it wrote models/svc.joblib" in out.stderr


def test_show_prints_lineage_from_raw_data_to_the_runs_that_read_the_model(client):
    root = client.project.root
    X, _ = iris()
    (root / "raw.csv").write_text("a\n1\n")
    (root / "train.csv").write_text("a\n1\n2\n")
    raw, raw_size = client.cache.add_file(root / "raw.csv")
    train, train_size = client.cache.add_file(root / "train.csv")
    # given prep read raw.csv and wrote train.csv, and train read train.csv
    with tracked(client, name="prep") as prep:
        prep.log_data([DataVersion("raw.csv", "input", raw, raw_size, cached=True),
                       DataVersion("train.csv", "output", train, train_size, cached=True)])  # fmt: skip
    with tracked(client, name="fit", lr=0.1) as fit:
        fit.log_data([DataVersion("train.csv", "input", train, train_size, cached=True)])
        nbtrack.log_metric("acc", 0.93)
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    nbtrack.set_model_alias("churn", "champion", 1)
    # and an evaluation loaded the model in its own run
    with tracked(client, name="evaluate") as ev:
        nbtrack.load_model("models:/churn@champion")
        nbtrack.log_metric("holdout_acc", 0.91)
    # when the lineage is shown
    out = run_cli("models", "show", "churn@champion", cwd=root)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # then one screen holds the version, its run, params, metrics, data, upstream, readers
    assert "model churn version 1" in text and "aliases: champion" in text
    assert f"run         {fit.run_id[:8]} fit finished" in text
    assert "lr=0.1" in text and "acc=0.93" in text
    assert f"data read   train.csv  {train}" in text
    assert f"train.csv <- run {prep.run_id[:8]} prep" in text
    assert f"read by     run {ev.run_id[:8]} evaluate" in text and "holdout_acc=0.91" in text
    assert "inputs      sepal length (cm) double" in text
    lineage = nbtrack.model_lineage("churn/1").to_dict()
    assert [u["run_id"] for u in lineage["upstream"]] == [prep.run_id]


def test_diff_compares_producing_runs_signature_and_size(client):
    X, y = iris()
    with tracked(client, name="fit", C=0.1):
        nbtrack.log_model(fitted(C=0.1), "churn", input_example=X[:3])
    from sklearn.linear_model import LogisticRegression

    two = X.iloc[:, :2]
    with tracked(client, name="fit", C=1.0):
        small = LogisticRegression(C=1.0, max_iter=300).fit(two, y)
        nbtrack.log_model(small, "churn", input_example=two[:3], format="joblib")
    d = nbtrack.model_diff("churn/1", "churn/2")
    kinds = {what for what, _, _ in d.changes}
    assert {"bytes", "size", "signature inputs petal length (cm)"} <= kinds and d
    assert d.run_diff is not None and [c.key for c in d.run_diff.params] == ["C"]
    out = run_cli("models", "diff", "churn/1", "churn/2", cwd=client.project.root)
    assert out.returncode == 0, out.stderr
    assert "signature inputs petal width (cm): double -> " in out.stdout
    assert re.search(r"param\s+C\s+changed\s+0\.1\s+1\b", out.stdout), out.stdout


def test_tags_descriptions_archive_and_listing(client):
    X, _ = iris()
    with tracked(client):
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    root = client.project.root
    for args in (("tag", "churn/1", "team=risk"), ("tag", "churn", "domain=retail"),
                 ("describe", "churn/1", "baseline"), ("archive", "churn/2"),
                 ("alias", "churn", "1", "champion")):  # fmt: skip
        out = run_cli("models", *args, cwd=root)
        assert out.returncode == 0, out.stderr
    v1 = Registry(client).get("churn/1")
    assert (v1.tags, v1.description, v1.aliases) == ({"team": "risk"}, "baseline", ["champion"])
    # an archived version is no longer "the newest"
    assert Registry(client).get("churn").version == 1
    out = run_cli("models", "ls", cwd=root)
    assert "churn" in out.stdout and "champion=1" in out.stdout
    out = run_cli("models", "ls", "churn", "--json", cwd=root)
    import json

    rows = json.loads(out.stdout)
    assert [(r["version"], r["archived"]) for r in rows] == [(1, False), (2, True)]
    assert Registry(client).model("churn").tags == {"domain": "retail"}


def test_gc_keeps_registered_bytes_after_their_run_is_pruned(client):
    X, _ = iris()
    with tracked(client):
        nbtrack.log_model(fitted(), "churn", input_example=X[:3])
    result = client.gc(keep_last=0)
    assert result.removed == []
    assert nbtrack.load_model("churn/1") is not None


def test_the_notebook_door_logs_lists_and_shows(kernel, project_dir):
    kernel.ok(
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)"
    )
    kernel.ok(
        "%%track train\n"
        "clf = LogisticRegression(max_iter=300).fit(X, y)\n"
        "v = nbtrack.log_model(clf, 'iris', input_example=X[:5])\n"
    )
    r = kernel.ok("%track models alias iris 1 champion")
    assert "iris" in r.text
    r = kernel.ok("%track models ls")
    assert "iris" in r.text and "champion" in r.text
    r = kernel.ok("%track models show iris@champion")
    assert "model iris version 1" in r.text and "run " in r.text
    r = kernel.run("%track models show nope")
    assert r.status == "error" and "no registered model 'nope'" in r.text
    r = kernel.run("nbtrack.log_model(clf, 'iris')")
    assert r.status == "error" and r.ename == "NoActiveRunError"
