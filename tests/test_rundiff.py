"""Diffs are value objects: falsy when empty, with stats, and a JSON round trip."""

from __future__ import annotations

import math

from nbtrack.models import DataVersion, Environment, NamedInput, Run
from nbtrack.rundiff import RunDiff, diff_runs


def run(run_id: str, **kw) -> Run:
    env = Environment("e1", "3.11.7", "linux", {"numpy": "2.0", "pandas": "3.0"})
    defaults = dict(status="finished", source="x = 1\n", environment=env)
    defaults.update(kw)
    return Run(run_id=run_id, **defaults)


def test_identical_runs_have_an_empty_falsy_diff():
    a = run("a", params={"lr": 0.1}, metrics={"acc": math.nan})
    d = diff_runs(a, run("b", params={"lr": 0.1}, metrics={"acc": math.nan}))
    assert not d and d.params == [] and d.code == ""
    everything = diff_runs(a, run("b", params={"lr": 0.1}), include_same=True)
    assert [c.kind for c in everything.params] == ["same"]


def test_every_section_reports_what_moved():
    a = run(
        "a",
        params={"lr": 0.1, "opt": "adam", "old": 1},
        metrics={"acc": 0.8, "loss": 0.5},
        data=[
            DataVersion("d.csv", "input", "xxh3:1", 100),
            DataVersion("m.pkl", "output", "xxh3:2", 5),
        ],
    )
    b = run(
        "b",
        params={"lr": 0.2, "opt": "adam", "new": True},
        metrics={"acc": 0.9, "loss": 0.5},
        data=[
            DataVersion("d.csv", "input", "xxh3:9", 150),
            DataVersion("p.png", "output", "xxh3:3", 7),
        ],
        source="x = 2\n",
        status="failed",
        error="ValueError",
        environment=Environment("e2", "3.11.7", "linux", {"numpy": "2.1", "torch": "2.0"}),
    )
    d = diff_runs(a, b)
    assert d
    assert {c.key: c.kind for c in d.params} == {"lr": "changed", "new": "added", "old": "removed"}
    acc = d.metrics[0]
    assert (acc.key, round(acc.delta, 6)) == ("acc", 0.1) and len(d.metrics) == 1
    assert {(c.path, c.kind) for c in d.data} == {
        ("d.csv", "changed"),
        ("m.pkl", "removed"),
        ("p.png", "added"),
    }
    assert next(c for c in d.data if c.path == "d.csv").size_delta == 50
    # in words, a path only one run wrote is not said to be gone (a new user's trial read
    # "removed" as deleted, with the file still on disk)
    assert {c.path: c.label() for c in d.data} == {
        "d.csv": "changed", "m.pkl": "not written by B", "p.png": "written by B only",
    }  # fmt: skip
    assert "-x = 1" in d.code and "+x = 2" in d.code
    assert {c.key: c.kind for c in d.environment} == {
        "package numpy": "changed",
        "package pandas": "removed",
        "package torch": "added",
    }
    assert {c.key for c in d.outcome} == {"status", "error"}
    assert d.stats["params"] == {"changed": 1, "added": 1, "removed": 1} and d.stats["code"] == {
        "changed": 1
    }
    again = RunDiff.from_dict(d.to_dict())
    assert again.to_dict() == d.to_dict()


def test_a_data_detail_failure_does_not_hide_the_rest():
    a = run("a", data=[DataVersion("t.csv", "input", "xxh3:1", 1)])
    b = run("b", data=[DataVersion("t.csv", "input", "xxh3:2", 2)])

    def broken(x, y):
        raise RuntimeError("profile failed")

    d = diff_runs(a, b, data_detail=broken)
    assert d.data[0].detail == {"error": "could not compare the contents: profile failed"}


def test_values_read_from_the_namespace_are_compared_by_content_and_producer():
    x1 = NamedInput("X", "numpy.ndarray", shape="3×4", fingerprint="xxh64:1", producer_run_id="p1")
    x2 = NamedInput("X", "numpy.ndarray", shape="3×4", fingerprint="xxh64:2", producer_run_id="p2")
    lr = NamedInput("lr", "float")
    a = run("a", params={"lr": 0.1}, named_inputs=[x1, lr])
    b = run("b", params={"lr": 0.1}, named_inputs=[x2, lr])
    d = diff_runs(a, b)
    assert d and [(c.name, c.kind) for c in d.inputs] == [("X", "changed")]  # lr is a param
    assert d.stats["inputs"] == {"changed": 1}
    assert RunDiff.from_dict(d.to_dict()) == d
    assert not diff_runs(a, run("c", params={"lr": 0.1}, named_inputs=[x1, lr]))


def test_equal_content_read_from_another_producer_is_the_same_input_only_when_hashed_whole():
    def x(fp: str, producer: str) -> NamedInput:
        return NamedInput(
            "X", "numpy.ndarray", shape="3×4", fingerprint=fp, producer_run_id=producer
        )

    def kinds(a: NamedInput, b: NamedInput) -> list[str]:
        return [
            c.kind for c in diff_runs(run("a", named_inputs=[a]), run("b", named_inputs=[b])).inputs
        ]

    assert kinds(x("xxh64:1", "p1"), x("xxh64:1", "p2")) == []  # whole content: the same
    assert kinds(x("xxh64s:1", "p1"), x("xxh64s:1", "p2")) == ["changed"]  # a sample
    assert kinds(x("xxh64s:1", "p1"), x("xxh64s:1", "p1")) == []
    no_fp = NamedInput("X", "Model", producer_run_id="p1")
    assert kinds(no_fp, NamedInput("X", "Model", producer_run_id="p2")) == ["changed"]
