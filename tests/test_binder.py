"""Binder: the repository's own binder/ folder, and ``nbtrack binder RUN`` for a user's project.

The repository checks are real: repo2docker renders the Dockerfile Binder would build
(no Docker needed with ``--no-build``), and ``binder/postBuild`` runs in a fresh
virtual environment standing in for Binder's image. That last test builds the
JupyterLab extension from a copy of the checkout and executes the examples; it is
the slow one. Measured on 2 cores: 125 s at a load average of about 3 (the fresh
environment 33 s; postBuild 84 s, of which installing nbtrack with its extension build
59 s and the example runs 25 s), 294 s at a load average of 7. Run with ``-s`` to see
where postBuild's time goes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from factory import record_run
from nbtrack.binder import binder_spec, checkout_requirement, requirement_for, self_requirement
from nbtrack.cli import main as cli_main
from nbtrack.client import Client
from nbtrack.exceptions import UsageError
from nbtrack.models import Environment, Run

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "python"
BIN = Path(sys.executable).parent


def run_ok(
    args: list[str], timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with (the end of) its output if it fails or outlives ``timeout``.

    The command gets its own process group, so a timeout also stops what it started
    (pip's build, the demo's sweeps and kernels) instead of leaving them running.
    """
    with subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"{args} still running after {timeout} s:\n{out[-3000:]}\n{err[-3000:]}")
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}"
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


# --- the repository's binder/ folder -------------------------------------------------


def test_repo2docker_builds_from_the_binder_folder() -> None:
    # given the repository, as mybinder.org would see it (uid 1000, user jovyan)
    # when repo2docker renders the Dockerfile without building it
    done = run_ok(
        [
            str(BIN / "jupyter-repo2docker"),
            "--no-build",
            "--debug",
            "--user-id",
            "1000",
            "--user-name",
            "jovyan",
            str(REPO),
        ]
    )
    dockerfile = done.stdout
    # then it installs binder/requirements.txt into the Python 3.11 environment of runtime.txt
    assert "Building conda environment for python=3.11" in done.stderr
    # (repo2docker escapes the lock file name it copies: "-2e" is ".", "-2d" is "-")
    assert "environment-2epy-2d3-2e11-2dlinux-2d64-2elock" in dockerfile
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    # and runs binder/postBuild after copying the repository, as the notebook user
    assert dockerfile.index("COPY --chown=1000:1000 src/ ${REPO_DIR}/") < dockerfile.index(
        "RUN ./binder/postBuild"
    )
    # and the root pyproject.toml is not installed behind our back (postBuild does it)
    assert "pip install --no-cache-dir ." not in dockerfile


def test_binder_files_say_what_postbuild_does() -> None:
    post_build = (REPO / "binder" / "postBuild").read_text()
    # executable, strict, installs the checkout and creates the example runs
    assert os.access(REPO / "binder" / "postBuild", os.X_OK)
    assert "set -euo pipefail" in post_build
    assert "python -m pip install --no-cache-dir ." in post_build
    assert "python examples/demo.py --workdir examples" in post_build
    assert (REPO / "binder" / "runtime.txt").read_text() == "python-3.11\n"
    overrides = json.loads((REPO / "binder" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def checkout_copy(dest: Path) -> None:
    """The files a clone has: those git tracks (as they are in the work tree).

    A file the build needs but nobody committed makes this test fail, as it would
    make Binder's build fail.
    """
    listed = run_ok(["git", "ls-files", "--cached", "-z"], cwd=REPO).stdout
    assert listed, f"{REPO} has no files committed to git: the test copies what a clone has"
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if not src.is_file():
            continue  # deleted in the work tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


@pytest.mark.timeout(1000)
def test_postbuild_in_a_fresh_environment(tmp_path: Path) -> None:
    started = time.perf_counter()
    # given a copy of the checkout
    repo = tmp_path / "repo"
    checkout_copy(repo)
    assert not (repo / "node_modules").exists()
    # and a fresh virtual environment standing in for Binder's image, with
    # binder/requirements.txt installed (JupyterLab, Notebook, scikit-learn), as
    # repo2docker does before postBuild
    venv = tmp_path / "venv"
    run_ok([sys.executable, "-m", "venv", str(venv)])
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("NBTRACK_", "VIRTUAL_ENV", "PYTHON", "JUPYTER"))
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])
    run_ok(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            "binder/requirements.txt",
        ],
        cwd=repo,
        env=env,
        timeout=300,
    )
    base_ready = time.perf_counter()

    # when postBuild runs from the repository root
    done = run_ok(["bash", "binder/postBuild"], cwd=repo, env=env, timeout=600)
    finished = time.perf_counter()
    print(
        f"fresh venv + requirements {base_ready - started:.0f} s, "
        f"postBuild {finished - base_ready:.0f} s"
    )
    print("\n".join(line for line in done.stdout.splitlines() if line.startswith("postBuild:")))

    # then nbtrack is installed from the checkout, with its prebuilt JupyterLab extension
    labext = venv / "share/jupyter/labextensions/nbtrack"
    assert (labext / "package.json").is_file()
    listed = run_ok([str(venv / "bin/jupyter"), "labextension", "list"], env=env)
    assert "nbtrack" in listed.stdout + listed.stderr
    assert "enabled" in listed.stdout + listed.stderr
    server = run_ok([str(venv / "bin/jupyter"), "server", "extension", "list"], env=env)
    server_text = re.sub(r"\x1b\[[0-9;]*m", "", server.stdout + server.stderr)  # no colours
    assert "nbtrack enabled" in server_text
    assert "nbtrack 0.1.0 OK" in server_text
    # and the news prompt is switched off
    assert (venv / "share/jupyter/lab/settings/overrides.json").is_file()
    # and the build leftovers are gone from the image
    assert not (repo / "node_modules").exists()
    # and the examples' store holds the demo's runs, so the panel is not empty on launch
    assert "nbtrack ls" in done.stdout
    listing = run_ok(
        [str(venv / "bin/nbtrack"), "ls", "--json", "--limit", "100"],
        cwd=repo / "examples",
        env=env,
    )
    runs = json.loads(listing.stdout)
    runs = runs["runs"] if isinstance(runs, dict) else runs
    names = {run["name"] for run in runs}
    assert {"prepare", "train", "evaluate"} <= names
    assert sum(1 for run in runs if run["name"] == "train") >= 5
    assert (repo / "examples/data/train.csv").is_file()

    # and `nbtrack binder` on one of those runs pins this environment; the nbtrack
    # installed from this copy (no public origin) cannot be pinned by name, and the
    # user is told what to add by hand
    binder_dir = tmp_path / "user-binder"
    pinned = run_ok(
        [str(venv / "bin/nbtrack"), "binder", "last", "--out", str(binder_dir)],
        cwd=repo / "examples",
        env=env,
    )
    requirements = (binder_dir / "requirements.txt").read_text()
    sklearn_version = run_ok(
        [str(venv / "bin/python"), "-c", "import sklearn; print(sklearn.__version__)"], env=env
    ).stdout.strip()
    assert f"scikit-learn=={sklearn_version}" in requirements.splitlines()
    assert not any(line.startswith("nbtrack") for line in requirements.splitlines())
    assert "nbtrack is installed from the" in pinned.stdout
    assert "'nbtrack @ git+<repository URL>@" in pinned.stdout


# --- nbtrack binder RUN ------------------------------------------------------------


def test_requirement_for_pins_pypi_packages_and_explains_the_rest() -> None:
    assert requirement_for("requests-oauthlib", "2.0.0") == ("requests-oauthlib==2.0.0", None)
    line, reason = requirement_for("torch", "2.4.0+cu121")
    assert line is None and "local version label +cu121" in str(reason)
    line, reason = requirement_for("my package", "1.0")
    assert line is None and reason == "not a valid package name"
    line, reason = requirement_for("weird", "not-a-version")
    assert line is None and "not a PEP 440 version" in str(reason)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    (folder / ".nbtrack").mkdir(parents=True)
    monkeypatch.setenv("NBTRACK_STORE", str(folder))
    monkeypatch.chdir(folder)
    return folder


def test_binder_pins_the_recorded_python_and_packages(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a run recorded in this environment
    run_id = record_run(project, "train", kind="notebook", notebook_path="train.ipynb")
    run = Client.open().get_run(run_id)
    assert run.environment is not None
    # when `nbtrack binder` writes its files
    code = cli_main(["binder", run_id[:8], "--out", str(project / "binder")])
    out = capsys.readouterr().out
    # then runtime.txt names this Python, and requirements.txt pins what was recorded
    assert code == 0
    major, minor = sys.version_info[:2]
    assert (project / "binder/runtime.txt").read_text() == f"python-{major}.{minor}\n"
    lines = (project / "binder/requirements.txt").read_text().splitlines()
    import duckdb
    import pandas

    assert f"duckdb=={duckdb.__version__}" in lines
    assert f"pandas=={pandas.__version__}" in lines
    pins = [line for line in lines if not line.startswith("#")]
    assert len(pins) == len(binder_spec(run).requirements) > 20
    assert f"wrote binder/requirements.txt ({len(pins)} pinned packages)" in out
    assert f"wrote binder/runtime.txt (python-{major}.{minor})" in out


def test_binder_refuses_to_overwrite_without_force(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = record_run(project, "train", kind="notebook", notebook_path="train.ipynb")
    (project / "binder").mkdir()
    (project / "binder/requirements.txt").write_text("numpy\n")
    # without --force: an error naming the file, and nothing written
    # (exit code 1: an error, not a usage error — the command line was right)
    assert cli_main(["binder", run_id, "--out", str(project / "binder")]) == 1
    assert "requirements.txt already exists; pass --force" in capsys.readouterr().err
    assert (project / "binder/requirements.txt").read_text() == "numpy\n"
    assert not (project / "binder/runtime.txt").exists()
    # with --force: replaced
    assert cli_main(["binder", run_id, "--out", str(project / "binder"), "--force"]) == 0
    assert (
        (project / "binder/requirements.txt").read_text().startswith("# Written by `nbtrack binder")
    )


def test_binder_json_lists_what_it_left_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = record_run(project, "train", kind="notebook", notebook_path="train.ipynb")
    assert cli_main(["binder", run_id, "--out", str(project / "b"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run_id"] == run_id
    assert sorted(Path(p).name for p in report["written"]) == ["requirements.txt", "runtime.txt"]
    assert report["binder_url"] is None  # no GitHub origin here


def test_binder_spec_skips_local_builds_and_warns_about_other_platforms() -> None:
    run = Run(
        run_id="0" * 32,
        environment=Environment(
            env_id="e",
            python="3.12.4",
            platform="macOS-14.5-arm64-arm-64bit",
            packages={"numpy": "2.1.0", "torch": "2.4.0+cpu", "Bad Name": "1"},
        ),
    )
    spec = binder_spec(run)
    assert spec.python == "3.12"
    assert [r for r in spec.requirements if not r.startswith("nbtrack")] == ["numpy==2.1.0"]
    assert [s.name for s in spec.skipped] == ["Bad Name", "torch"]
    assert any("Binder runs Linux" in warning for warning in spec.warnings)
    # nbtrack itself is always there, as this environment installs it, or a warning says
    # what to do (this checkout may have no public remote)
    own, problem = self_requirement()
    assert (own in spec.requirements) if own else (problem in spec.warnings)
    files = spec.files()
    assert files["runtime.txt"] == "python-3.12\n"
    assert "#   torch 2.4.0+cpu: local version label +cpu" in files["requirements.txt"]


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _checkout(folder: Path) -> None:
    """A git repository with one commit in ``folder``."""
    _git(folder, "init", "-q")
    _git(
        folder,
        "-c",
        "user.name=a",
        "-c",
        "user.email=a@b",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://github.com/alice/nbtrack.git", "https://github.com/alice/nbtrack.git"),
        ("git@github.com:alice/nbtrack.git", "https://github.com/alice/nbtrack.git"),
        ("https://gitlab.example.org/team/nbtrack", "https://gitlab.example.org/team/nbtrack"),
    ],
)
def test_nbtrack_from_a_checkout_is_pinned_to_its_repository_and_commit(
    tmp_path: Path, origin: str, expected: str
) -> None:
    # given nbtrack installed from a git checkout whose origin is a public repository
    _checkout(tmp_path)
    _git(tmp_path, "remote", "add", "origin", origin)
    commit = _git(tmp_path, "rev-parse", "HEAD")
    # when Binder's requirement for it is made
    # then pip installs that repository at that commit, with no credentials
    assert checkout_requirement(tmp_path) == (f"nbtrack @ git+{expected}@{commit}", None)


def test_nbtrack_from_a_checkout_without_a_remote_says_what_to_do(tmp_path: Path) -> None:
    # given a checkout with no remote, and a folder that is no checkout at all
    plain = tmp_path / "plain"
    plain.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    _checkout(repo)
    commit = _git(repo, "rev-parse", "HEAD")
    # then no requirement, and a message naming the fix and the commit
    line, problem = checkout_requirement(repo)
    assert line is None
    assert "no public origin remote" in str(problem) and "git remote add origin" in str(problem)
    assert f"git+<repository URL>@{commit}" in str(problem)
    line, problem = checkout_requirement(plain)
    assert line is None and "not a git checkout" in str(problem)


def test_nbtrack_from_pypi_is_pinned_to_its_release(tmp_path: Path) -> None:
    # given a fresh environment where nbtrack is a plain install (as from PyPI: no
    # direct_url.json), made from this checkout's metadata
    site = tmp_path / "site"
    info = site / "nbtrack-9.8.7.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: nbtrack\nVersion: 9.8.7\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from nbtrack.binder import self_requirement; print(self_requirement())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(SRC)])}
    done = subprocess.run(
        [sys.executable, "-c", code, str(site)], env=env, capture_output=True, text=True, check=True
    )
    # then Binder installs that release by name and version
    assert done.stdout.strip() == "('nbtrack==9.8.7', None)"


def test_binder_spec_needs_an_environment() -> None:
    with pytest.raises(UsageError, match="no recorded environment"):
        binder_spec(Run(run_id="f" * 32))


def test_binder_prints_the_launch_url_of_a_github_repository(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a project that is a git repository on GitHub, with notebooks in a subfolder
    for args in (
        ["init", "-q", "-b", "main"],
        ["remote", "add", "origin", "git@github.com:alice/cancer-study.git"],
    ):
        run_ok(["git", *args], cwd=project)
    run_id = record_run(project, "train", kind="notebook", notebook_path="train.ipynb")
    # when `nbtrack binder` writes the files at the repository root
    assert cli_main(["binder", run_id]) == 0
    out = capsys.readouterr().out
    # then they are in binder/ and the URL opens the run's notebook on mybinder.org
    assert (project / "binder/requirements.txt").is_file()
    assert (
        "launch: https://mybinder.org/v2/gh/alice/cancer-study/main?urlpath=lab/tree/train.ipynb"
        in out
    )
