"""The git state a run records, asked of git again only when the work tree changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nbtrack.gitstate import git_state

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]


def _repo(folder: Path) -> None:
    (folder / "src").mkdir()
    (folder / "src" / "model.py").write_text("LR = 0.1\n")
    (folder / "train.ipynb").write_text("{}")
    subprocess.run([*GIT, "init", "-q"], cwd=folder, check=True)
    subprocess.run([*GIT, "add", "."], cwd=folder, check=True)
    subprocess.run([*GIT, "commit", "-qm", "one"], cwd=folder, check=True)


def _head(folder: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True)
    return out.stdout.strip()


def test_each_change_to_the_work_tree_shows_in_the_next_state(tmp_path):
    # Given a clean repository, asked twice (the second answer comes from the fingerprint)
    _repo(tmp_path)
    first = git_state(tmp_path / "src")
    assert first == {"git_commit": _head(tmp_path), "git_dirty": False, "git_diff": None}
    assert git_state(tmp_path) == first

    # When a tracked file is edited (as an editor would, outside the kernel)
    (tmp_path / "src" / "model.py").write_text("LR = 0.2\n")
    dirty = git_state(tmp_path)
    # Then the state is dirty with the diff
    assert dirty["git_dirty"] is True and "+LR = 0.2" in dirty["git_diff"]

    # When it is committed, then the new commit is clean
    subprocess.run([*GIT, "commit", "-qam", "two"], cwd=tmp_path, check=True)
    committed = git_state(tmp_path)
    assert committed == {"git_commit": _head(tmp_path), "git_dirty": False, "git_diff": None}
    assert committed["git_commit"] != first["git_commit"]

    # When a file is added to the index, or a tracked file removed, the state says so
    (tmp_path / "src" / "new.py").write_text("x = 1\n")
    subprocess.run([*GIT, "add", "src/new.py"], cwd=tmp_path, check=True)
    assert git_state(tmp_path)["git_dirty"] is True
    subprocess.run([*GIT, "commit", "-qm", "three"], cwd=tmp_path, check=True)
    assert git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "train.ipynb").unlink()
    gone = git_state(tmp_path)
    assert gone["git_dirty"] is True and "train.ipynb" in gone["git_diff"]

    # When the branch moves back, then the state names the old commit
    subprocess.run(["git", "checkout", "-q", "--", "train.ipynb"], cwd=tmp_path, check=True)
    subprocess.run(["git", "reset", "-q", "--hard", first["git_commit"]], cwd=tmp_path, check=True)
    assert git_state(tmp_path) == first


def test_outside_a_repository_or_before_the_first_commit_there_is_no_state(tmp_path):
    assert git_state(tmp_path) == {}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a")
    assert git_state(tmp_path) == git_state(tmp_path) == {}
    # and the first commit is seen as soon as it is made
    subprocess.run([*GIT, "add", "."], cwd=tmp_path, check=True)
    assert git_state(tmp_path) == {}
    subprocess.run([*GIT, "commit", "-qm", "first"], cwd=tmp_path, check=True)
    assert git_state(tmp_path) == {
        "git_commit": _head(tmp_path),
        "git_dirty": False,
        "git_diff": None,
    }
