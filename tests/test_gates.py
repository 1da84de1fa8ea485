"""Metric gates: ``nbtrack check`` exits 0 / 1 / 2 with one line, for CI jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nbtrack
from conftest import run_cli
from nbtrack import gates
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter


def _run(project_dir: Path, metrics: dict[str, float], **fields: object) -> str:
    w = RunWriter.start(resolve_project(project_dir), name="train", **fields)  # type: ignore[arg-type]
    w.log_metrics(metrics)
    w.finish()
    w.wait()
    return w.run_id


@pytest.fixture
def runs(project_dir: Path) -> tuple[str, str]:
    base = _run(project_dir, {"acc": 0.93, "loss": 0.12, "system/peak_rss_mb": 900.0})
    new = _run(project_dir, {"acc": 0.915, "loss": 0.25, "system/peak_rss_mb": 1200.0})
    return base, new


def test_a_gate_that_holds_exits_0_and_one_that_fails_exits_1(project_dir, runs):
    base, new = runs
    # given a good run, when CI gates it, then it passes with the values it read
    r = run_cli("check", "acc >= 0.9 and loss < 0.2", "--run", base, cwd=project_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        f"PASS run {base[:8]}: acc >= 0.9 and loss < 0.2 (acc=0.93, loss=0.12)"
    )
    # when the newest run (the default) regressed on loss, then it fails and says which clause
    r = run_cli("check", "acc >= 0.9 and loss < 0.2", cwd=project_dir)
    assert r.returncode == 1
    assert r.stdout.strip() == f"FAIL run {new[:8]}: not loss < 0.2 (acc=0.915, loss=0.25)"
    assert len(r.stdout.splitlines()) == 1


def test_deltas_against_a_baseline_run(project_dir, runs):
    base, new = runs
    r = run_cli("check", "delta(acc) >= -0.01", "--against", base, cwd=project_dir)
    assert r.returncode == 1
    assert r.stdout.strip() == (
        f"FAIL run {new[:8]}: not delta(acc) >= -0.01 (acc=0.915; against {base[:8]}: acc=0.93)"
    )
    r = run_cli("check", "delta(acc) >= -0.02 and rdelta(loss) < 1.5", "--against", base,
                cwd=project_dir)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    # names with a slash go in backticks
    r = run_cli("check", "`system/peak_rss_mb` <= base(`system/peak_rss_mb`) * 1.5",
                "--against", base, cwd=project_dir)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "expr, message",
    [
        ("acc >=", "cannot parse"),
        ("__import__('os').system('true')", "__import__"),
        ("acc.__class__ == 1 or [1]", "not allowed"),
        ("f1 > 0.5", "the run has no metric 'f1'"),
        ("delta(acc) > 0", "need a baseline run"),
        ("acc", "not a condition"),
    ],
)
def test_a_gate_that_cannot_be_applied_exits_2_with_one_line(project_dir, runs, expr, message):
    r = run_cli("check", expr, cwd=project_dir)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_an_unknown_run_is_an_error_not_a_failed_gate(project_dir, runs):
    r = run_cli("check", "acc > 0", "--run", "ffffffff", cwd=project_dir)
    assert r.returncode == 2 and "no run matches" in r.stderr


def test_last_notebook_gates_the_newest_execution_with_its_cell_runs(project_dir):
    project = resolve_project(project_dir)
    (project_dir / "train.ipynb").write_text("{}")
    parent = RunWriter.start(project, kind="notebook", notebook_path="train.ipynb")
    cell = RunWriter.start(project, parent_id=parent.run_id, notebook_path="train.ipynb")
    cell.log_metric("acc", 0.97)
    for w in (cell, parent):
        w.finish()
        w.wait()
    _run(project_dir, {"acc": 0.5}, notebook_path="other.ipynb")
    r = run_cli("check", "acc > 0.95", "--last", "train.ipynb", "--json", cwd=project_dir)
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["run_id"] == parent.run_id and verdict["values"] == {"acc": 0.97}


def test_the_python_api_returns_a_truthy_verdict(project_dir, runs):
    base, new = runs
    assert nbtrack.check("acc > 0.9", base)
    result = nbtrack.check("loss < 0.2", new)
    assert not result and result.failed == ["loss < 0.2"]
    assert nbtrack.check("delta(loss) > 0.1", new, against=base).passed


def test_nan_fails_every_comparison_and_chains_work():
    gate = gates.parse("0.5 < acc <= 1 and not loss > 1")
    assert gate.metrics() == ["acc", "loss"]
    assert gates.evaluate(gate, {"acc": 0.7, "loss": 0.1}, run_id="r").passed
    assert not gates.evaluate(gate, {"acc": float("nan"), "loss": 0.1}, run_id="r").passed
    dotted = gates.parse("GridSearchCV.best_score >= 0.9")
    assert gates.evaluate(dotted, {"GridSearchCV.best_score": 0.95}, run_id="r").passed


def test_a_model_version_is_gated_on_its_run_and_on_drift_of_its_training_data(project_dir):
    import numpy as np
    import pandas as pd

    from model_helpers import fitted, make_client, tracked
    from nbtrack.hashing import StatCache
    from nbtrack.registry.core import Registry
    from nbtrack.versioning import version_path

    client = make_client(project_dir)
    data = project_dir / "train.csv"
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"age": rng.normal(40, 8, 2000), "plan": rng.choice(["a", "b"], 2000)})
    frame.to_csv(data, index=False)

    def read_train(writer: RunWriter) -> None:
        stats = StatCache.for_folder(client.project.folder)
        v = version_path(client.project, "train.csv", "input", cache=client.cache, stat_cache=stats)
        writer.log_data([v])

    # given a run that read the training data, scored auc 0.91 and registered churn/1
    with tracked(client) as w:
        read_train(w)
        w.log_metrics({"auc": 0.91})
        nbtrack.log_model(fitted(), "churn")
    Registry(client).set_alias("churn", 1, "champion")
    # and a newer run that scored worse (the default `last`), not behind the model
    _run(project_dir, {"auc": 0.5})
    # when CI gates the champion, then the model's own run is judged
    r = run_cli("check", "auc >= 0.9", "--model", "churn@champion", cwd=project_dir)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"PASS model churn/1 (run {w.run_id[:8]}): auc >= 0.9 (auc=0.91)"
    # and with no new data, its training data has not drifted
    r = run_cli("check", "drift.columns == 0", "--model", "churn", "--json", cwd=project_dir)
    assert r.returncode == 0, r.stderr
    verdict = json.loads(r.stdout)
    assert verdict["model"] == "churn/1" and verdict["values"] == {"drift.columns": 0}
    # when a later run records a shifted version of the training data
    frame.assign(age=frame.age + 12, plan="b").to_csv(data, index=False)
    with tracked(client, name="load") as later:
        read_train(later)
    # then the drift gate fails, naming the values it read
    r = run_cli(
        "check", "auc >= 0.9 and drift.max_psi < 0.2 and drift.min_chi2_p > 0.01",
        "--model", "churn@champion", cwd=project_dir,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    line = r.stdout.strip()
    assert line.startswith(f"FAIL model churn/1 (run {w.run_id[:8]}): not drift.max_psi < 0.2")
    assert "not drift.min_chi2_p > 0.01" in line and "auc=0.91" in line
    # and the same verdict from Python
    result = nbtrack.check("drift.columns == 0", model="churn@champion")
    assert not result and result.values["drift.columns"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["auc > 0", "--model", "nope@champion"], "nope"),
        (["auc > 0", "--model", "churn@missing"], "missing"),
        (["drift.max_psi < 0.2", "--model", "churn"], "read no table"),
        (["auc > 0", "--model", "churn", "--run", "last"], "not allowed with argument"),
    ],
)
def test_a_model_gate_that_cannot_be_applied_exits_2(project_dir, args, message):
    from model_helpers import fitted, make_client, tracked

    client = make_client(project_dir)
    with tracked(client) as w:
        w.log_metrics({"auc": 0.9})
        nbtrack.log_model(fitted(), "churn")
    r = run_cli("check", *args, cwd=project_dir)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
