"""The reproduced verdict: tolerances, NaN, moved metrics, changed files, cells that did not run."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from nbtrack.models import DataVersion, Run
from nbtrack.pipelines.verdict import (
    DataChange,
    MetricChange,
    OutcomeChange,
    judge,
    match_cells,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def cell(run_id: str, *, at: int = 0, metrics=None, data=(), status="finished", **kw) -> Run:
    kw.setdefault("name", "train")
    return Run(
        run_id=run_id,
        kind="cell",
        status=status,
        started_at=T0 + timedelta(seconds=at),
        metrics=dict(metrics or {}),
        data=list(data),
        **kw,
    )


def notebook(run_id: str, status: str = "finished", error: str | None = None) -> Run:
    return Run(run_id=run_id, kind="notebook", name="nb", status=status, error=error, started_at=T0)


def dv(path: str, role: str, digest: str) -> DataVersion:
    return DataVersion(path=path, role=role, hash=digest, size=1)


def test_same_metrics_within_tolerance_and_same_hashes_reproduce():
    before = cell(
        "a" * 32, metrics={"acc": 0.9, "loss": math.nan}, data=[dv("out.csv", "output", "xxh3:1")]
    )
    after = cell(
        "b" * 32,
        metrics={"acc": 0.9 + 1e-12, "loss": math.nan},
        data=[dv("out.csv", "output", "xxh3:1")],
    )
    verdict = judge(before, [before], notebook("n" * 32), [after])
    assert verdict.reproduced
    assert verdict.to_dict()["reproduced"] is True
    assert (verdict.cells_compared, verdict.metrics_compared, verdict.outputs_compared) == (1, 2, 1)
    assert verdict.lines() == [
        "reproduced: 1 cell run(s), 2 metric(s) within rtol=1e-7 atol=1e-12, 1 output(s) with the same hash"
    ]


def test_what_moved_is_named_metric_output_input_and_outcome():
    before = cell(
        "a" * 32,
        metrics={"acc": 0.9, "gone": 1.0},
        data=[dv("data.csv", "input", "xxh3:in1"), dv("out.csv", "output", "xxh3:o1")],
    )
    after = cell(
        "b" * 32,
        metrics={"acc": 0.8, "new": 2.0},
        data=[dv("data.csv", "input", "xxh3:in2"), dv("out.csv", "output", "xxh3:o2")],
    )
    verdict = judge(before, [before], notebook("n" * 32), [after], rtol=0.01)
    assert not verdict.reproduced
    assert verdict.metrics == [
        MetricChange("train", "acc", 0.9, 0.8),
        MetricChange("train", "gone", 1.0, None),
        MetricChange("train", "new", None, 2.0),
    ]
    assert verdict.outputs == [DataChange("train", "out.csv", "output", "xxh3:o1", "xxh3:o2")]
    assert verdict.inputs == [DataChange("train", "data.csv", "input", "xxh3:in1", "xxh3:in2")]
    text = "\n".join(verdict.lines())
    assert "metric acc (train): 0.9 -> 0.8 (delta -0.1)" in text
    assert "output out.csv (train) changed" in text
    assert "input data.csv (train) no longer matches its recorded version" in text


def test_the_verdict_writes_numbers_as_the_cli_and_the_panel_do():
    # Given metrics that moved across scales (tests/fixtures/number_format.json's rule)
    big = MetricChange("train", "loss", 1234567.0, 0.00001)
    rise = MetricChange("train", "acc", 0.5, 0.75)
    whole = MetricChange("train", "n", 3.0, None)
    # Then each reads as `nbtrack ls` and the panel print it: 1e-5, not 1e-05; 1.23457e6, not -1.23457e+06
    assert big.describe() == "metric loss (train): 1234567 -> 1e-5 (delta -1.23457e6)"
    assert rise.describe() == "metric acc (train): 0.5 -> 0.75 (delta +0.25)"
    assert whole.describe() == "metric n (train): 3, not logged by the rerun"


def test_a_wider_tolerance_accepts_what_the_default_rejects():
    before = cell("a" * 32, metrics={"acc": 0.90})
    after = cell("b" * 32, metrics={"acc": 0.9001})
    assert not judge(before, [before], notebook("n" * 32), [after]).reproduced
    assert judge(before, [before], notebook("n" * 32), [after], rtol=1e-3).reproduced
    assert judge(before, [before], notebook("n" * 32), [after], atol=1e-3).reproduced


def test_a_cell_that_did_not_run_or_failed_is_an_outcome_change():
    first = cell("a" * 32, at=0, name="prep")
    second = cell("c" * 32, at=1, name="train")
    original = notebook("o" * 32)
    failed = notebook("n" * 32, status="failed", error="cell 2 raised ValueError: boom")
    rerun_prep = cell("b" * 32, at=5, name="prep", status="failed", error="ValueError: boom")
    verdict = judge(original, [first, second], failed, [rerun_prep])
    assert verdict.outcomes == [
        OutcomeChange("notebook", "finished", "failed", "cell 2 raised ValueError: boom"),
        OutcomeChange("prep", "finished", "failed", "ValueError: boom"),
        OutcomeChange("train", "finished", None, "cell 2 raised ValueError: boom"),
    ]
    assert "train: did not run in the rerun" in "\n".join(verdict.lines())


def test_cells_match_by_id_then_code_then_name_in_execution_order():
    a1 = cell("a1" * 16, at=0, cell_id="c1")
    a2 = cell("a2" * 16, at=1, cell_id="c1")
    b = cell("b0" * 16, at=2, name="eval", source="x = 1")
    c = cell("c0" * 16, at=3, name="plot", cell_id=None)
    r1 = cell("r1" * 16, at=10, cell_id="c1")
    r2 = cell("r2" * 16, at=11, cell_id="c1")
    rb = cell("rb" * 16, at=12, name="eval", source="x = 1", cell_id="zz")
    rc = cell("rc" * 16, at=13, name="plot", cell_id="yy")
    pairs = match_cells([c, b, a2, a1], [rc, rb, r2, r1])
    assert [(x.run_id[:2], y.run_id[:2] if y else None) for x, y in pairs] == [
        ("a1", "r1"),
        ("a2", "r2"),
        ("b0", "rb"),
        ("c0", "rc"),
    ]
