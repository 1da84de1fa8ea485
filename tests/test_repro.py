"""``nbtrack repro``: only the stale notebooks re-executed, upstream first, with real papermill.

Two projects, each built once per module and then changed step by step as a user
would: a copy of the shipped examples (01_prepare writes data/, 02_train reads it),
and a diamond of small notebooks (left and right read raw.txt, join reads both).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import run_cli
from nbtrack.client import Client
from nbtrack.models import Run, RunQuery
from nbtrack.project import resolve_project
from notebook_maker import pipeline_notebook, record_execution

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def notebook_runs(folder: Path) -> list[Run]:
    """Every notebook run of the project's store, oldest first, in full."""
    client = Client(resolve_project(folder))
    page = client.list_runs(
        RunQuery(kind="notebook", limit=500, sort="started_at", descending=False)
    )
    return client.get_runs([r.run_id for r in page.runs])


def cli_ok(folder: Path, *args: str) -> str:
    done = run_cli(*args, cwd=folder)
    assert done.returncode == 0, f"nbtrack {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def set_default(notebook: Path, old: str, new: str) -> None:
    """Edit the ``parameters`` cell of ``notebook`` as a user would in JupyterLab."""
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert old in cell.source, cell.source
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, notebook)


def plan_of(folder: Path, *args: str) -> dict[str, dict]:
    """``repro --dry-run --json``: each notebook's verdict, by notebook."""
    steps = json.loads(cli_ok(folder, "repro", "--dry-run", "--json", *args))["steps"]
    return {s["notebook"]: s for s in steps}


# ------------------------------------------------------------------ judging, without a kernel


@pytest.fixture
def recorded(project_dir: Path) -> Path:
    """make.ipynb wrote data.txt from raw.txt, use.ipynb read it: recorded, not executed."""
    (project_dir / ".nbtrack").mkdir()
    (project_dir / "raw.txt").write_text("raw\n")
    record_execution(project_dir, "make.ipynb", reads=["raw.txt"], writes=["data.txt"])
    record_execution(project_dir, "use.ipynb", reads=["data.txt"], writes=["result.txt"])
    return project_dir


def test_a_deleted_output_makes_its_producer_stale(recorded):
    # given: the intermediate file is deleted
    (recorded / "data.txt").unlink()

    # when
    plan = plan_of(recorded)

    # then: its producer re-makes it before its reader runs
    assert plan["make.ipynb"]["reasons"] == ["output data.txt is missing"]
    assert plan["use.ipynb"]["reasons"] == [
        "input data.txt is missing",
        "upstream make.ipynb is stale",
    ]


def test_saving_outputs_or_markdown_does_not_make_a_notebook_stale(recorded):
    # given: the notebook saved with an output and a new markdown cell, as JupyterLab does
    path = recorded / "make.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="done\n")]
    nb.cells[-1].execution_count = 7
    nb.cells.append(nbformat.v4.new_markdown_cell("notes"))
    nbformat.write(nb, path)

    # when / then
    step = plan_of(recorded)["make.ipynb"]
    assert step["stale"] is False
    assert step["reasons"][0].endswith("(only outputs or markdown changed in the notebook)")


def test_a_changed_notebook_whose_snapshot_was_pruned_is_stale_and_says_why(recorded):
    # given: the snapshot blobs are gone (gc) and make.ipynb was edited
    shutil.rmtree(recorded / ".nbtrack" / "cache")
    set_default(recorded / "make.ipynb", "scale = 1", "scale = 1  # same value")

    # when / then
    assert plan_of(recorded)["make.ipynb"]["reasons"] == [
        "the notebook changed since its last run (its recorded snapshot is not in the cache "
        "to tell code from outputs)"
    ]


def test_a_deleted_notebook_is_not_executed_and_its_outputs_stand(recorded):
    # given: make.ipynb is deleted; its output is still there
    (recorded / "make.ipynb").unlink()

    # when
    plan = plan_of(recorded)

    # then
    assert plan["make.ipynb"]["stale"] is False
    assert plan["make.ipynb"]["reasons"] == [
        "the notebook file is gone: its recorded outputs are taken as they are"
    ]
    assert plan["use.ipynb"]["stale"] is False


# ------------------------------------------------------------------ the shipped examples


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples run once each, 02 with an injected alpha, as `nbtrack sweep` runs them."""
    folder = tmp_path_factory.mktemp("examples")
    for name in ("01_prepare.ipynb", "02_train.ipynb"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / ".nbtrack").mkdir()
    cli_ok(folder, "sweep", "01_prepare.ipynb", "--no-progress")
    cli_ok(folder, "sweep", "02_train.ipynb", "-p", "alpha", "0.01", "--no-progress")
    return folder


def test_with_nothing_changed_repro_reruns_nothing_and_says_why(examples):
    # given: both examples ran once
    before = notebook_runs(examples)

    # when
    out = cli_ok(examples, "repro")

    # then: each notebook is skipped with its reason; no run was added
    assert "01_prepare.ipynb  skip   up to date with run" in out
    assert "02_train.ipynb    skip   up to date with run" in out
    assert "same code, parameters and inputs" in out
    assert out.strip().endswith("repro: nothing to do, 2 notebook(s) up to date")
    assert len(notebook_runs(examples)) == len(before)


def test_check_gates_the_final_notebook_after_repro(examples):
    # given: the pipeline is up to date; 02_train logged acc
    # when: repro is asked to gate it
    passing = run_cli("repro", "--check", "acc >= 0.5", cwd=examples)
    failing = run_cli("repro", "--check", "acc >= 2", cwd=examples)
    unknown = run_cli("repro", "--check", "no_such_metric > 1", cwd=examples)
    bad = run_cli("repro", "--check", "acc >=", cwd=examples)

    # then: the exit code says whether the gate holds (1), or could not be applied (2)
    assert passing.returncode == 0, passing.stderr
    assert "PASS" in passing.stdout.upper()
    assert failing.returncode == 1, failing.stdout
    assert unknown.returncode == 2
    assert "no_such_metric" in unknown.stderr
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_changed_code_makes_a_notebook_and_its_downstream_stale(examples):
    # given: a line added to 01_prepare's tracked cell (outputs and markdown do not count)
    path = examples / "01_prepare.ipynb"
    original = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n<!-- a markdown edit is not a code change -->"
    nbformat.write(nb, path)
    assert plan_of(examples)["01_prepare.ipynb"]["stale"] is False
    cell = next(c for c in nb.cells if c.cell_type == "code" and "%%track" in c.source)
    cell.source += "\nprint('done')"
    nbformat.write(nb, path)
    before = len(notebook_runs(examples))
    try:
        # when
        plan = plan_of(examples)

        # then: 01 for its code, 02 for its upstream; a dry run executes nothing
        assert plan["01_prepare.ipynb"]["reasons"] == [
            "code changed since its last run (1 code cell(s) edited, added or removed)"
        ]
        assert plan["02_train.ipynb"]["reasons"] == ["upstream 01_prepare.ipynb is stale"]
        assert len(notebook_runs(examples)) == before
    finally:
        path.write_bytes(original)


def test_after_a_parameter_change_repro_reruns_01_then_02_and_nothing_else(examples):
    # given: the split's test_size edited in 01_prepare's parameters cell
    before = {r.run_id for r in notebook_runs(examples)}
    set_default(examples / "01_prepare.ipynb", "test_size = 0.25", "test_size = 0.3")

    # when
    dry = plan_of(examples)
    out = cli_ok(examples, "repro")

    # then: the dry run said why; 01 ran, then 02, and nothing else
    assert dry["01_prepare.ipynb"]["reasons"] == [
        "parameter test_size: 0.25 -> 0.3 in the parameters cell"
    ]
    assert dry["02_train.ipynb"]["reasons"] == ["upstream 01_prepare.ipynb is stale"]
    assert out.index("01_prepare.ipynb: finished") < out.index("02_train.ipynb: finished")
    new = [r for r in notebook_runs(examples) if r.run_id not in before]
    assert [r.name for r in new] == ["01_prepare", "02_train"]
    assert new[0].tags["repro"] == new[1].tags["repro"]
    assert new[0].ended_at <= new[1].started_at
    # 01 ran with its new default; 02 kept the alpha injected into its last run
    assert new[0].params["test_size"] == 0.3
    assert (new[1].params["alpha"], new[1].param_sources["alpha"]) == (0.01, "papermill")
    # 02 trained on the data 01 has just written
    client = Client(resolve_project(examples))
    written = {d.path: d.hash for c in client.children(new[0].run_id) for d in c.outputs}
    read = {d.path: d.hash for c in client.children(new[1].run_id) for d in c.inputs}
    assert read["data/train.csv"] == written["data/train.csv"]

    # and then: everything is up to date again
    assert "repro: nothing to do" in cli_ok(examples, "repro")


def test_an_injected_value_stands_until_the_notebook_edits_that_parameter(examples):
    # given: 02_train's last run had alpha=0.01 injected; its epochs default is edited
    path = examples / "02_train.ipynb"
    original = path.read_bytes()
    set_default(path, "epochs = 20", "epochs = 5")
    try:
        plan = plan_of(examples)["02_train.ipynb"]
        assert plan["reasons"] == ["parameter epochs: 20 -> 5 in the parameters cell"]
        assert plan["parameters"] == {"alpha": 0.01}  # epochs comes from the notebook

        # when: the notebook's alpha default is edited too
        set_default(path, "alpha = 0.001", "alpha = 0.1")
        plan = plan_of(examples)["02_train.ipynb"]

        # then: the notebook is the truth for what it changed
        assert plan["parameters"] == {}
        assert "parameter alpha: 0.001 -> 0.1 in the parameters cell" in plan["reasons"]
    finally:
        path.write_bytes(original)


# ------------------------------------------------------------------ a diamond of small notebooks


@pytest.fixture(scope="module")
def diamond(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """left and right read raw.txt (two seconds each), join reads what both wrote."""
    folder = tmp_path_factory.mktemp("diamond")
    (folder / ".nbtrack").mkdir()
    (folder / "raw.txt").write_text("raw\n")
    pipeline_notebook(folder / "left.ipynb", reads=["raw.txt"], writes=["left.txt"], sleep=2)
    pipeline_notebook(folder / "right.ipynb", reads=["raw.txt"], writes=["right.txt"], sleep=2)
    pipeline_notebook(
        folder / "join.ipynb", reads=["left.txt", "right.txt"], writes=["out/joined.txt"]
    )
    for name in ("left.ipynb", "right.ipynb", "join.ipynb"):
        cli_ok(folder, "sweep", name, "--no-progress")
    return folder


def test_an_edited_input_makes_its_readers_stale_and_a_dry_run_executes_nothing(diamond):
    # given: the raw file both branches read is edited
    (diamond / "raw.txt").write_text("raw, edited\n")
    before = len(notebook_runs(diamond))

    # when
    out = cli_ok(diamond, "repro", "--dry-run")
    plan = plan_of(diamond)
    only_left = plan_of(diamond, "left.txt")

    # then: both readers for their input, join for its upstream; no run was added
    assert plan["left.ipynb"]["reasons"][0].startswith("input raw.txt changed since its last run")
    assert plan["right.ipynb"]["reasons"][0].startswith("input raw.txt changed since its last run")
    assert plan["join.ipynb"]["reasons"] == [
        "upstream left.ipynb is stale",
        "upstream right.ipynb is stale",
    ]
    assert "dry run: would re-execute 3 (left.ipynb, right.ipynb, join.ipynb)" in out
    assert list(only_left) == ["left.ipynb"]  # a target brings up to date only what makes it
    assert len(notebook_runs(diamond)) == before


def test_with_j2_independent_branches_run_at_the_same_time_and_the_join_after_both(diamond):
    # given: raw.txt was edited (previous test), so all three are stale
    before = {r.run_id for r in notebook_runs(diamond)}

    # when
    cli_ok(diamond, "repro", "-j", "2")

    # then: left and right overlap in time; join starts after both ended
    new = {r.name: r for r in notebook_runs(diamond) if r.run_id not in before}
    assert sorted(new) == ["join", "left", "right"]
    left, right, join = new["left"], new["right"], new["join"]
    assert left.started_at < right.ended_at and right.started_at < left.ended_at
    assert join.started_at >= max(left.ended_at, right.ended_at)
    assert (
        diamond / "out/joined.txt"
    ).read_text() == "raw, edited\n(1,)\nraw, edited\n(1,)\n(1,)\n"


def test_a_failure_stops_its_downstream_but_not_an_independent_branch(diamond):
    # given: left now raises; right's parameter is edited
    pipeline_notebook(
        diamond / "left.ipynb",
        reads=["raw.txt"],
        writes=["left.txt"],
        extra="raise RuntimeError('boom')",
    )
    set_default(diamond / "right.ipynb", "scale = 1", "scale = 3")
    before = {r.run_id for r in notebook_runs(diamond)}

    # when
    done = run_cli("repro", "-j", "2", cwd=diamond)

    # then: right ran, left failed, join was not run; the exit code says so
    assert done.returncode == 1, done.stdout + done.stderr
    assert "right.ipynb: finished" in done.stdout
    assert "left.ipynb: failed" in done.stdout and "boom" in done.stdout
    assert "join.ipynb: not run: upstream left.ipynb failed" in done.stdout
    new = {r.name: r.status for r in notebook_runs(diamond) if r.run_id not in before}
    assert new == {"left": "failed", "right": "finished"}
