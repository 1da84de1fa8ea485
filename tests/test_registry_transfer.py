"""Models move with their runs: bundles and push/pull carry versions, aliases and history."""

from __future__ import annotations

import io

import numpy as np
import pytest

from model_helpers import fitted, iris, make_client, tracked
from nbtrack.client import Client
from nbtrack.exceptions import UsageError
from nbtrack.pipelines.bundle import export_runs, import_bundle
from nbtrack.registry.core import Registry
from nbtrack.remotes import pull, push


@pytest.fixture
def stores(tmp_path, monkeypatch) -> tuple[Client, Client]:
    """Alice's project (the current folder) and Bob's, side by side."""
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    return make_client(tmp_path / "alice"), make_client(tmp_path / "bob")


def _champion(alice: Client) -> str:
    """Two versions of churn by one run; champion went 1 then 2."""
    X, _ = iris()
    with tracked(alice) as run:
        for c in (0.1, 1.0):
            Registry(alice).log_model(fitted(C=c), "churn", writer=run, input_example=X[:3])
    reg = Registry(alice)
    reg.set_alias("churn", 1, "champion")
    reg.set_alias("churn", 2, "champion")
    reg.set_alias("churn", 1, "challenger")
    return run.run_id


def _same_registry(a: Client, b: Client) -> None:
    ra, rb = Registry(a), Registry(b)
    assert [v.to_dict() for v in ra.versions("churn")] == [
        v.to_dict() for v in rb.versions("churn")
    ]
    assert [m.to_dict() for m in ra.history("churn")] == [m.to_dict() for m in rb.history("churn")]


def test_a_bundle_carries_versions_aliases_and_history_and_imports_once(stores):
    alice, bob = stores
    run_id = _champion(alice)
    buffer = io.BytesIO()
    written = export_runs(alice, [run_id], buffer)
    assert written.models == ["churn/1", "churn/2"]
    first = import_bundle(bob, buffer.getvalue())
    second = import_bundle(bob, buffer.getvalue())
    assert first.models == ["churn/1", "churn/2"] and second.models == []
    _same_registry(alice, bob)
    assert Registry(bob).get("churn@champion").version == 2
    # the bytes came too: the model loads in the other store and predicts the same
    X, _ = iris()
    model = Registry(bob).load("churn@champion")
    assert np.array_equal(model.predict(X), fitted(C=1.0).predict(X))


def test_push_and_pull_carry_the_registry_and_pulling_twice_adds_nothing(stores, tmp_path):
    alice, bob = stores
    _champion(alice)
    remote = str(tmp_path / "remote")
    pushed = push(alice, remote)
    assert pushed.models == ["churn/1", "churn/2"]
    # a later alias move pushed again merges into the remote's history
    Registry(alice).set_alias("churn", 1, "champion")
    push(alice, remote)
    first, second = pull(bob, remote), pull(bob, remote)
    assert first.models == ["churn/1", "churn/2"] and second.models == []
    _same_registry(alice, bob)
    assert Registry(bob).get("churn@champion").version == 1
    assert len(Registry(bob).history("churn", "champion")) == 3


def test_a_version_number_taken_by_another_model_is_refused_whole(stores):
    alice, bob = stores
    run_id = _champion(alice)
    X, _ = iris()
    with tracked(bob) as run:
        Registry(bob).log_model(fitted(), "churn", writer=run, input_example=X[:3])
    buffer = io.BytesIO()
    export_runs(alice, [run_id], buffer)
    with pytest.raises(UsageError, match="version 1 differs here"):
        import_bundle(bob, buffer.getvalue())
    assert [v.version for v in Registry(bob).versions("churn")] == [1]
