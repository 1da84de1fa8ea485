"""``nbtrack dag``: the graph of notebooks inferred from recorded notebook runs.

Notebook runs and their cell runs are recorded in a real store the way a pipeline
records them (``factory.record_run``), with real files; the CLI is run as a user
types it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat

from conftest import VENV_BIN, kernel_env, run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.pipelines.dag import build
from nbtrack.project import resolve_project
from notebook_maker import record_execution


def dag_of(folder: Path):  # noqa: ANN201 - the Dag, read as the CLI reads it
    return build(Client(resolve_project(folder)).notebook_heads())


def test_a_notebook_that_reads_what_another_wrote_is_downstream_of_it(project_dir):
    # given: prepare writes two files, train reads both and writes a model, report is alone
    (project_dir / ".nbtrack").mkdir()
    record_execution(project_dir, "prepare.ipynb", writes=("data/train.csv", "data/test.csv"))
    record_execution(
        project_dir,
        "train.ipynb",
        reads=("data/train.csv", "data/test.csv"),
        writes=("models/m.pkl",),
    )
    record_execution(project_dir, "report.ipynb", writes=("report.md",))

    # when: the graph is printed as text, Mermaid and DOT
    text = run_cli("dag", cwd=project_dir)
    mermaid = run_cli("dag", "--format", "mermaid", cwd=project_dir)
    dot = run_cli("dag", "--format", "dot", cwd=project_dir)

    # then: one edge, through both files; the lone notebook is listed on its own
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "prepare.ipynb -> train.ipynb  (data/test.csv, data/train.csv)",
        "report.ipynb",
    ]
    assert mermaid.stdout.splitlines()[0] == "flowchart TD"
    assert '-->|"data/test.csv, data/train.csv"|' in mermaid.stdout
    assert '["prepare.ipynb"]' in mermaid.stdout and '["train.ipynb"]' in mermaid.stdout
    assert '"prepare.ipynb" -> "train.ipynb"' in dot.stdout
    assert dot.stdout.startswith("strict digraph {")


def test_the_newest_finished_run_is_the_notebooks_current_state(project_dir):
    # given: train read a.csv when it last finished; a newer run that read b.csv failed
    (project_dir / ".nbtrack").mkdir()
    record_execution(project_dir, "make_a.ipynb", writes=("a.csv",))
    record_execution(project_dir, "make_b.ipynb", writes=("b.csv",))
    good = record_execution(project_dir, "train.ipynb", reads=("a.csv",))
    record_execution(project_dir, "train.ipynb", reads=("b.csv",), status="failed")

    # when / then: the failed run is not what the graph is made of
    dag = dag_of(project_dir)
    assert dag.stages["train.ipynb"].run.run_id == good
    assert dag.upstream("train.ipynb") == ["make_a.ipynb"]


def test_files_a_notebook_writes_and_reads_back_itself_are_not_edges(project_dir):
    # given: a notebook that writes a model, then reads it back in a later cell
    (project_dir / ".nbtrack").mkdir()
    (project_dir / "nb.ipynb").write_text("{}")  # a notebook run needs no parsable file
    (project_dir / "model.pkl").write_text("model")
    parent = record_run(project_dir, "nb", kind="notebook", notebook_path="nb.ipynb")
    record_run(
        project_dir,
        "train",
        parent_id=parent,
        notebook_path="nb.ipynb",
        outputs=[project_dir / "model.pkl"],
    )
    record_run(project_dir, "evaluate", parent_id=parent, notebook_path="nb.ipynb", inputs=[project_dir / "model.pkl"])  # fmt: skip

    # when / then: no self-edge, no cycle, and the model is an output, not an input
    dag = dag_of(project_dir)
    assert dag.edges == {}
    assert dag.order() == ["nb.ipynb"]
    assert list(dag.stages["nb.ipynb"].inputs) == [] and list(dag.stages["nb.ipynb"].outputs) == [
        "model.pkl"
    ]


def test_a_folder_read_links_to_the_notebooks_that_wrote_files_inside_it(project_dir):
    # given: two notebooks each write one file into shards/, a third reads the folder
    (project_dir / ".nbtrack").mkdir()
    record_execution(project_dir, "one.ipynb", writes=("shards/1.txt",))
    record_execution(project_dir, "two.ipynb", writes=("shards/2.txt",))
    record_execution(project_dir, "merge.ipynb", reads=("shards",))

    # when / then: both writers are upstream of the reader (a diamond's top half)
    dag = dag_of(project_dir)
    assert dag.upstream("merge.ipynb") == ["one.ipynb", "two.ipynb"]
    assert dag.order() == ["one.ipynb", "two.ipynb", "merge.ipynb"]
    assert dag.select(["merge.ipynb"]) == {"one.ipynb", "two.ipynb", "merge.ipynb"}
    assert dag.select(["shards/1.txt"]) == {"one.ipynb"}


def test_of_two_writers_of_a_path_the_producer_is_the_one_whose_version_was_read(project_dir):
    # given: old.ipynb and new.ipynb both wrote out.txt; reader read new's version
    (project_dir / ".nbtrack").mkdir()
    record_execution(project_dir, "old.ipynb", writes=("out.txt",))
    record_execution(project_dir, "new.ipynb", writes=("out.txt",))
    record_execution(project_dir, "reader.ipynb", reads=("out.txt",))

    # when / then
    assert dag_of(project_dir).upstream("reader.ipynb") == ["new.ipynb"]


def test_a_cycle_is_a_one_line_error_naming_the_notebooks_and_files(project_dir):
    # given: a.ipynb reads b.txt and writes a.txt; b.ipynb reads a.txt and writes b.txt
    (project_dir / ".nbtrack").mkdir()
    (project_dir / "b.txt").write_text("seed\n")
    record_execution(project_dir, "a.ipynb", reads=("b.txt",), writes=("a.txt",))
    record_execution(project_dir, "b.ipynb", reads=("a.txt",), writes=("b.txt",))

    # when: the graph is drawn, or brought up to date
    for verb in (["dag"], ["repro", "--dry-run"]):
        done = run_cli(*verb, cwd=project_dir)

        # then: exit 1 and one line that names the loop and what closes it
        assert done.returncode == 1, done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("nbtrack: error: the notebooks form a cycle: ")
        assert (
            "a.ipynb -> b.ipynb -> a.ipynb" in lines[0]
            or "b.ipynb -> a.ipynb -> b.ipynb" in lines[0]
        )
        assert "reads a.txt from a.ipynb" in lines[0] and "reads b.txt from b.ipynb" in lines[0]
        assert "Traceback" not in done.stderr


def test_a_target_nobody_produces_is_a_one_line_error(project_dir):
    # given: one recorded notebook writing data.csv
    (project_dir / ".nbtrack").mkdir()
    record_execution(project_dir, "make.ipynb", writes=("data.csv",))

    # when: targets no run wrote, and a notebook never run
    missing = run_cli("repro", "--dry-run", "other.csv", cwd=project_dir)
    never = run_cli("dag", "never.ipynb", cwd=project_dir)
    json_out = run_cli("dag", "--format", "json", "data.csv", cwd=project_dir)

    # then: one line each, naming the target; a produced target selects its producer
    assert missing.returncode == 1
    assert missing.stderr.strip() == "nbtrack: error: no recorded notebook run writes other.csv"
    assert never.returncode == 1
    assert (
        never.stderr.strip()
        == "nbtrack: error: no finished notebook run of never.ipynb is recorded"
    )
    assert [n["notebook"] for n in json.loads(json_out.stdout)["notebooks"]] == ["make.ipynb"]


def test_an_empty_store_draws_nothing_and_says_so(project_dir):
    (project_dir / ".nbtrack").mkdir()
    done = run_cli("dag", cwd=project_dir)
    assert done.returncode == 0
    assert done.stdout == ""
    assert "no finished notebook runs are recorded" in done.stderr


def _plain_papermill(
    folder: Path, name: str, code: str, script: bool = False, saved: bool = True, **env: str
) -> None:
    """``papermill NAME out/NAME -p seed 1`` as a user types it (or, ``script``, the same
    through ``papermill.execute_notebook`` in a Python script, ``saved`` or with no output
    notebook): no nbtrack sweep, ``%load_ext`` inside."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells = [nbformat.v4.new_code_cell("%load_ext nbtrack"), nbformat.v4.new_code_cell(code)]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells.append(nbformat.v4.new_code_cell(f"%%track {name}\n{code}"))
    nbformat.write(nb, folder / name)
    args = [f"{VENV_BIN}/papermill", name, f"out/{name}", "-k", "python3", "-p", "seed", "1"]
    if script:
        out = repr(f"out/{name}") if saved else None
        call = f"execute_notebook({name!r}, {out}, kernel_name='python3', parameters={{'seed': 1}})"
        args = [f"{VENV_BIN}/python", "-c", f"from papermill import execute_notebook; {call}"]
    done = subprocess.run(args, cwd=folder, env=kernel_env(**env), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_plain_papermill_runs_draw_the_pipeline_and_a_script_s_runs_are_explained(project_dir):
    """A new user's trial: ``papermill prepare.ipynb out.ipynb`` then the same for train:
    ``dag`` draws prepare -> train (the kernel reads its notebook from papermill's command
    line). papermill called from a script is found by the output notebook it writes;
    with none, it names no notebook: ``dag`` says what it found and how to name one."""
    (project_dir / ".nbtrack").mkdir()
    (project_dir / "out").mkdir()
    prepare = "seed = 0\nopen('data.csv', 'w').write(f'x\\n{seed}\\n')"
    train = "seed = 0\nrows = open('data.csv').read().split()"
    _plain_papermill(project_dir, "prepare.ipynb", prepare, script=True, saved=False)
    done = run_cli("dag", cwd=project_dir)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr.strip() == (
        "1 finished notebook run is recorded, but none names its notebook (papermill called "
        "from Python with no output notebook does not tell the kernel which notebook it "
        "runs): run the notebooks "
        "with nbtrack sweep NOTEBOOK, the papermill command, or set NBTRACK_NOTEBOOK=NOTEBOOK: "
        "nothing to draw"
    )
    repro = run_cli("repro", "--dry-run", cwd=project_dir)
    assert repro.returncode == 2 and "1 finished notebook run is recorded, but none" in repro.stderr
    # then: a script writing its output, and one told its notebook, draw the pipeline
    _plain_papermill(project_dir, "prepare.ipynb", prepare, script=True)
    _plain_papermill(
        project_dir, "train.ipynb", train, script=True, saved=False, NBTRACK_NOTEBOOK="train.ipynb"
    )
    edges = json.loads(run_cli("dag", "--format", "json", cwd=project_dir).stdout)["edges"]
    assert edges == [{"from": "prepare.ipynb", "to": "train.ipynb", "paths": ["data.csv"]}]
