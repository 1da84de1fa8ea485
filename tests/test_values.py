"""Kernel values as a run records them: parameters, descriptions, fingerprints, -m metrics."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import time
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nbtrack.metricvalues import metric_values
from nbtrack.values import describe, is_ignored, param_value


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Config:
    seed: int = 0
    layers: tuple = (64, 32)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (0.001, 0.001),
        (True, True),
        (None, None),
        ("rbf", "rbf"),
        (np.float32(0.5), 0.5),
        (np.int64(3), 3),
        (np.bool_(True), True),
        (Color.RED, "Color.RED"),
        (Path("data/train.csv"), "data/train.csv"),
        ([64, 32], [64, 32]),
        ((1, "a"), (1, "a")),
        ({"depth": 3, "lrs": [0.1, 0.01]}, {"depth": 3, "lrs": [0.1, 0.01]}),
        (argparse.Namespace(lr=0.1, opt="adam"), {"lr": 0.1, "opt": "adam"}),
        (types.SimpleNamespace(epochs=5), {"epochs": 5}),
        (Config(seed=7), {"seed": 7, "layers": (64, 32)}),
    ],
)
def test_small_plain_values_are_parameters(value, plain):
    assert param_value(value) == (True, plain)


@pytest.mark.parametrize(
    "value",
    [np.zeros(3), pd.DataFrame({"a": [1]}), list(range(1000)), "x" * 5000, object(), 1j,
     [[[[1]]]], {1: object()}, types.SimpleNamespace(X=np.zeros(3)), Config],
)  # fmt: skip
def test_data_models_and_big_values_are_not_parameters(value):
    assert param_value(value) == (False, None)


def test_a_notebook_class_of_settings_is_a_parameter_and_other_classes_are_not_inputs():
    """Kaggle's ``class CFG: lr = 1e-3`` (read as ``CFG.lr``): its plain class attributes,
    inherited ones too; a class with none, or a library's class, is not an input."""
    base = type("Base", (), {"__module__": "__main__", "seed": 0, "fit": lambda self: 0})
    cfg = type("CFG", (base,), {"__module__": "__main__", "lr": 1e-3, "_cache": {}})
    assert param_value(cfg) == (True, {"seed": 0, "lr": 1e-3})
    assert not is_ignored("CFG", cfg)
    net = type("Net", (), {"__module__": "__main__", "forward": lambda self: 0})
    assert is_ignored("Net", net) and is_ignored("Path", Path)
    assert param_value(cfg()) == (True, {"seed": 0, "lr": 1e-3})  # and an object of it


def test_arrays_and_frames_are_described_by_type_shape_and_a_content_fingerprint():
    a = describe(np.arange(12.0).reshape(3, 4))
    assert (a.type, a.shape) == ("numpy.ndarray", "3×4") and a.fingerprint.startswith("xxh64:")
    assert describe(np.arange(12.0).reshape(3, 4)).fingerprint == a.fingerprint
    assert describe(np.arange(1.0, 13.0).reshape(3, 4)).fingerprint != a.fingerprint
    f = describe(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    assert (f.type, f.shape) == ("pandas.DataFrame", "2×2") and f.fingerprint
    g = describe(pd.DataFrame({"x": [1, 3], "y": ["a", "b"]}))
    assert g.fingerprint != f.fingerprint


def test_huge_unpicklable_or_hostile_values_are_described_quickly_with_a_note():
    big = np.ones(50_000_000, dtype=np.uint8)  # sampled, not read whole
    t0 = time.perf_counter()
    d = describe(big)
    assert d.fingerprint.startswith("xxh64s:") and time.perf_counter() - t0 < 2

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __reduce__(self):
            raise RuntimeError("no pickle")

    h = describe(Hostile())
    assert h.type.endswith("Hostile") and h.fingerprint is None
    assert h.note == "not fingerprinted: cannot pickle (RuntimeError)"
    many = describe([bytes([i]) * (1 << 20) for i in range(100)])  # 100 MiB: given up
    assert many.fingerprint is None and many.note.startswith("not fingerprinted: larger than")
    assert describe(lambda: 1).note.startswith("not fingerprinted")


def test_m_variables_become_metrics_series_or_a_reason():
    assert metric_values("acc", np.float64(0.9)) == ({"acc": 0.9}, {}, None)
    assert metric_values("losses", np.array([3, 2, 1])) == ({}, {"losses": [3.0, 2.0, 1.0]}, None)
    assert metric_values("report", {"a": {"f1": 1, "support": 3}}) == (
        {"report.a.f1": 1.0, "report.a.support": 3.0},
        {},
        None,
    )
    assert metric_values("cv", {"fit_time": np.array([0.5, 0.25]), "note": "x"}) == (
        {},
        {"cv.fit_time": [0.5, 0.25]},
        "cv.note (a str)",
    )
    assert metric_values("s", pd.Series([0.5, 0.7])) == ({}, {"s": [0.5, 0.7]}, None)
    assert metric_values("s", pd.Series({"acc": 0.9, "f1": 0.8})) == (
        {"s.acc": 0.9, "s.f1": 0.8},
        {},
        None,
    )
    assert metric_values("m", np.zeros((2, 2)))[2] == "an array of shape (2, 2) and dtype float64"
    assert metric_values("m", ["a"])[2] == "a list with items that are not numbers"
    assert metric_values("m", {"a": "b"})[2] == "a dict without numbers"
    assert metric_values("m", None)[2] == "a NoneType"


def test_a_torch_scalar_named_with_m_is_a_metric_as_log_metric_takes_it(project_dir, kernel):
    """Found by a new user's fifth trial: in a PyTorch loop ``-m loss`` (the last loss, a
    0-d tensor) warned "not a metric: a torch.Tensor", while ``nbtrack.log_metric("l",
    loss)`` in the same cell took it; a list of such losses was no series either."""
    from test_lineage import _cell_runs
    from test_magics import _settle

    kernel.ok("import torch")
    reply = kernel.ok(
        "%%track fit -m loss -m losses\nlosses = []\nfor w in (1.0, 0.5):\n"
        "    loss = torch.tensor(w) * 0.5\n    losses.append(loss.detach())"
    )
    assert "not a metric" not in reply.text, reply.text
    client = _settle(project_dir)
    (run,) = _cell_runs(client, "fit")
    assert run.metrics["loss"] == 0.25
    series = client.metric_series(run.run_id, ["losses"])["losses"]
    assert [p.value for p in series] == [0.5, 0.25]


def test_a_dict_of_score_arrays_named_with_m_is_one_series_per_key(project_dir, kernel):
    """Found by the sixth trial: ``res = cross_validate(clf, X, y, scoring=[...])`` is a
    dict of per-fold arrays, and ``-m res`` warned "not a metric: a dict without numbers"
    and recorded nothing, while ``-m scores`` on ``cross_val_score``'s array is a series."""
    from test_lineage import _cell_runs
    from test_magics import _settle

    kernel.ok("import numpy as np")
    reply = kernel.ok(
        "%%track cv -m res -m folds\nres = {'test_accuracy': np.array([0.9, 0.8, 1.0]),\n"
        "       'test_f1': np.array([0.85, 0.75, 0.95]), 'fold': 'stratified'}\n"
        "import pandas as pd\nfolds = pd.Series(res['test_f1'])"
    )
    assert "-m folds" not in reply.text  # a pandas Series of fold scores is a series too
    assert "a dict without numbers" not in reply.text
    assert "-m res: not a metric: res.fold (a str)" in reply.text
    client = _settle(project_dir)
    (run,) = _cell_runs(client, "cv")
    assert run.metrics["res.test_accuracy"] == 1.0  # the last fold, as any series
    # and the mean of the folds: a series given at once has no meaningful last item
    assert run.metrics["res.test_accuracy.mean"] == (0.9 + 0.8 + 1.0) / 3
    assert run.metrics["folds.mean"] == (0.85 + 0.75 + 0.95) / 3
    assert "res.test_accuracy.mean=0.9" in reply.text
    series = client.metric_series(run.run_id, ["res.test_accuracy", "res.test_f1"])
    assert [p.value for p in series["res.test_accuracy"]] == [0.9, 0.8, 1.0]
    assert [p.step for p in series["res.test_f1"]] == [0, 1, 2]
    assert run.metrics["folds"] == 0.95


def test_a_tensor_made_again_with_the_same_values_keeps_its_fingerprint(project_dir, kernel):
    """Found by the sixth trial: ``X = torch.randn(256, 8)`` after ``torch.manual_seed(0)``
    had a new fingerprint in every kernel (a tensor's pickle holds ``torch.save``'s
    serialization id), so two papermill runs of one notebook diffed "read X: changed",
    and so did a model (its parameters are tensors)."""
    from test_lineage import _cell_runs
    from test_magics import _settle

    setup = (
        "import torch\ntorch.manual_seed({seed})\nX = torch.randn(64, 8)\nm = torch.nn.Linear(8, 2)"
    )
    train = "%%track fit -m out\nout = float(m(X).sum())"
    kernel.ok(setup.format(seed=0), cell_id="setup")
    kernel.ok(train, cell_id="fit")
    kernel.ok(setup.format(seed=0), cell_id="setup")
    same = kernel.ok(train, cell_id="fit").text
    kernel.ok(setup.format(seed=1), cell_id="setup")
    moved = kernel.ok(train, cell_id="fit").text
    assert "read X" not in same and "read m" not in same, same
    assert "read X: changed" in moved and "read m: changed" in moved, moved
    a, b, c = _cell_runs(_settle(project_dir), "fit")
    fingerprints = [{i.name: i.fingerprint for i in r.named_inputs} for r in (a, b, c)]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    assert fingerprints[0]["X"] == describe(torch_randn_seed0()).fingerprint  # any process


def torch_randn_seed0():
    import torch

    torch.manual_seed(0)
    return torch.randn(64, 8)
