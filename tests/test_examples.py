"""The examples never rot: every example notebook runs under papermill with a real kernel,
and what the store holds afterwards is what examples/README.md promises.

The story of the README is followed in order (module-scoped, one store): prepare the
data, train two models, change the data, train again; then ``examples/demo.py`` runs
end to end in its own folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbtrack.client import Client
from nbtrack.hashing import hash_file
from nbtrack.models import Run, RunQuery
from nbtrack.project import resolve_project

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
BIN = Path(sys.executable).parent


def user_env() -> dict[str, str]:
    """What a user's shell has: this environment's tools first, no store forced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACK_", "JPY_"))}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


def papermill(workdir: Path, notebook: str, **parameters: object) -> nbformat.NotebookNode:
    """``papermill NOTEBOOK executed/NOTEBOOK -p KEY VALUE ...`` in ``workdir``; the executed notebook."""
    output = workdir / "executed" / notebook
    output.parent.mkdir(exist_ok=True)
    args = [str(BIN / "papermill"), notebook, str(output), "--cwd", str(workdir), "-k", "python3"]
    for key, value in parameters.items():
        args += ["-p", key, str(value)]
    done = subprocess.run(args, cwd=workdir, env=user_env(), capture_output=True, text=True)
    assert done.returncode == 0, f"{notebook} failed:\n{done.stderr[-3000:]}"
    return nbformat.read(output, as_version=4)


def runs_named(client: Client, name: str) -> list[Run]:
    """Runs of one tracked cell, oldest first, read back in full."""
    page = client.list_runs(
        RunQuery(text=None, kind="cell", limit=500, sort="started_at", descending=False)
    )
    return [client.get_run(run.run_id) for run in page.runs if run.name == name]


def data_of(run: Run, role: str) -> dict[str, str]:
    return {d.path: d.hash for d in run.data if d.role == role}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/ with its own store, as a user who copies the folder has."""
    folder = tmp_path_factory.mktemp("examples")
    for name in NOTEBOOKS:
        shutil.copy2(EXAMPLES / name, folder / name)
    (folder / ".nbtrack").mkdir()
    return folder


@pytest.fixture(scope="module")
def client(workdir: Path) -> Client:
    return Client(resolve_project(workdir))


def test_examples_are_the_two_notebooks_the_readme_walks_through() -> None:
    assert NOTEBOOKS == ["01_prepare.ipynb", "02_train.ipynb"]
    for name in NOTEBOOKS:
        notebook = nbformat.read(EXAMPLES / name, as_version=4)
        # committed without outputs, with a papermill parameters cell
        assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1
        assert any(c.source.startswith("%%track") for c in notebook.cells)


def test_prepare_records_its_parameters_and_the_files_it_writes(
    workdir: Path, client: Client
) -> None:
    papermill(workdir, "01_prepare.ipynb")
    (prepare,) = runs_named(client, "prepare")
    assert prepare.status == "finished"
    assert prepare.params == {"test_size": 0.25, "seed": 0, "label_noise": 0.0}
    logged = {k: v for k, v in prepare.metrics.items() if not k.startswith("system/")}
    assert logged == {"n_train": 426.0, "n_test": 143.0}
    assert data_of(prepare, "output") == {
        "data/train.csv": hash_file(workdir / "data/train.csv"),
        "data/test.csv": hash_file(workdir / "data/test.csv"),
    }


def test_train_reads_those_files_and_logs_a_loss_series(workdir: Path, client: Client) -> None:
    executed = papermill(workdir, "02_train.ipynb", epochs=5)
    (prepare,) = runs_named(client, "prepare")
    (train,) = runs_named(client, "train")
    assert train.status == "finished"
    assert train.params["model"] == "sgd"
    assert train.params["epochs"] == 5
    assert 0.85 < train.metrics["acc"] <= 1.0
    loss = client.metric_series(train.run_id, ["loss"])["loss"]
    assert [point.step for point in loss] == [0, 1, 2, 3, 4]
    # the data it read are the versions prepare wrote: lineage through content hashes
    inputs = data_of(train, "input")
    assert inputs["data/train.csv"] == data_of(prepare, "output")["data/train.csv"]
    assert inputs["data/test.csv"] == data_of(prepare, "output")["data/test.csv"]
    model_file = "models/sgd_alpha=0.001_epochs=5_seed=0.pkl"  # one file per parameter set
    assert data_of(train, "output") == {model_file: hash_file(workdir / model_file)}
    # evaluate loads that very model
    (evaluate,) = runs_named(client, "evaluate")
    assert data_of(evaluate, "input") == data_of(train, "output")
    assert {"precision", "recall"} <= set(evaluate.metrics)
    # both cells ran in one papermill execution: children of one notebook run with its parameters
    assert evaluate.parent_id == train.parent_id != prepare.parent_id
    assert client.get_run(train.parent_id).params["epochs"] == 5
    # the notebook's last cell lists the runs, as `nbtrack ls` would
    listing = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for o in executed.cells[-1].outputs
    )
    assert "train" in listing and "evaluate" in listing


def test_a_second_model_differs_in_parameters_metrics_and_model_file(
    workdir: Path, client: Client
) -> None:
    papermill(workdir, "02_train.ipynb", model="gbm", n_estimators=10, max_depth=1)
    first, second = runs_named(client, "train")
    assert second.params["model"] == "gbm"
    assert [p.step for p in client.metric_series(second.run_id, ["loss"])["loss"]] == list(
        range(10)
    )
    diff = client.diff(first.run_id, second.run_id)
    changed_params = {change.key: (change.a, change.b) for change in diff.params}
    assert changed_params["model"] == ("sgd", "gbm")
    assert changed_params["n_estimators"] == (60, 10)
    assert (
        "acc" in {change.key for change in diff.metrics}
        or first.metrics["acc"] == second.metrics["acc"]
    )
    # same data in, a different model out
    assert data_of(first, "input") == data_of(second, "input")
    assert {(change.path, change.kind) for change in diff.data} == {
        ("models/sgd_alpha=0.001_epochs=5_seed=0.pkl", "removed"),
        ("models/gbm_n=10_depth=1_seed=0.pkl", "added"),
    }


def test_changed_data_shows_in_the_diff_of_two_otherwise_equal_runs(
    workdir: Path, client: Client
) -> None:
    # when the data is prepared again with noisy labels and the first model is retrained
    papermill(workdir, "01_prepare.ipynb", label_noise=0.2)
    papermill(workdir, "02_train.ipynb", epochs=5)
    clean, _, noisy = runs_named(client, "train")
    # then the two runs have the same parameters but read another data/train.csv
    assert clean.params == noisy.params
    assert data_of(clean, "input")["data/train.csv"] != data_of(noisy, "input")["data/train.csv"]
    assert data_of(clean, "input")["data/test.csv"] == data_of(noisy, "input")["data/test.csv"]
    diff = client.diff(clean.run_id, noisy.run_id)
    assert not diff.params
    changed = {change.path: change.kind for change in diff.data}
    assert changed["data/train.csv"] == "changed"
    assert "data/test.csv" not in changed  # only what differs


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``examples/demo.py`` run as ``make demo`` runs it: its folder and its output."""
    workdir = tmp_path_factory.mktemp("demo") / "demo-output"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--workdir", str(workdir)],
        cwd=workdir.parent,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return workdir, done.stdout


def test_demo_runs_end_to_end_and_shows_the_table_and_a_diff(demo: tuple[Path, str]) -> None:
    workdir, out = demo
    # the commands a user would type, in order
    steps = [
        "$ nbtrack sweep 01_prepare.ipynb",
        "$ nbtrack sweep 02_train.ipynb -p alpha 0.0001 0.001 3.0",
        "$ nbtrack sweep 02_train.ipynb -p model gbm -p max_depth 1 3",
        "$ nbtrack ls",
        "$ nbtrack diff",
        "$ nbtrack sweep 01_prepare.ipynb -p label_noise 0.2",
        "$ nbtrack sweep 02_train.ipynb\n",
        "$ nbtrack models register",
        "export BEFORE=",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    table = out[out.index("$ nbtrack ls") : out.index("$ nbtrack diff")]
    assert table.count("train") >= 5 and "prepare" in table
    diff = out[out.index("$ nbtrack diff") :]
    assert "acc" in diff
    # and its store holds what the table shows, and the training around the data change
    client = Client(resolve_project(workdir))
    trained = runs_named(client, "train")
    assert len(trained) == 6
    assert {run.params.get("alpha") for run in trained} >= {0.0001, 0.001, 3.0}
    # each training run (two ran at a time) holds its own model file, never its neighbour's
    for run in trained:
        models = [d.path for d in run.data if d.role == "output" and d.path.startswith("models/")]
        assert len(models) == 1, (run.params, models)
        alpha, depth = run.params.get("alpha"), run.params.get("max_depth")
        assert f"alpha={alpha}_" in models[0] or f"depth={depth}_" in models[0], (
            run.params,
            models,
        )
    before, after = (client.get_run(ref) for ref in tour_ids(out).values())
    assert before.params == after.params and before.source == after.source
    assert data_of(before, "input")["data/train.csv"] != data_of(after, "input")["data/train.csv"]
    assert (workdir / ".gitignore").read_text() == "*\n"


def tour_ids(out: str) -> dict[str, str]:
    """``BEFORE`` and ``AFTER`` from the demo's ``export BEFORE=… AFTER=…`` line."""
    line = next(x for x in out.splitlines() if x.strip().startswith("export BEFORE="))
    return dict(word.split("=", 1) for word in line.split()[1:])


def tour_commands() -> list[str]:
    """The shell lines of the README's tour: every line of its bash blocks, as written."""
    readme = (REPO / "README.md").read_text()
    tour = readme[readme.index("## Five-minute tour") :]
    tour = tour[: tour.index("\n## ", 1)]
    blocks = tour.split("```bash\n")[1:]
    return [
        line
        for block in blocks
        for line in block[: block.index("```")].splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_every_command_of_the_readme_tour_works_as_typed_after_the_demo(
    demo: tuple[Path, str],
) -> None:
    # given the demo's folder and the `export` line it printed, as a user's shell has them
    workdir, out = demo
    # (a filter's time limit raised: a test machine shared by many runs can be slow)
    env = {**user_env(), **tour_ids(out), "NBTRACK_QUERY_TIMEOUT": "120"}
    commands = tour_commands()
    assert len(commands) >= 12 and any("$BEFORE" in c for c in commands)
    for command in commands:
        # when each command of the README's tour is typed, in order
        done = subprocess.run(
            ["bash", "-c", command], cwd=workdir, env=env, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        # then it works: exit 0, no traceback
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{said[-3000:]}"
        assert "Traceback" not in said, f"{command!r}:\n{said[-3000:]}"
        if command.startswith("nbtrack rerun"):  # and the rerun says what the README says
            assert "\nreproduced: 1 cell run(s), 2 metric(s)" in said, said[-2000:]
