"""``nbtrack checkout | gc | push | pull`` as a user types them (real processes)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from factory import record_run


def nbtrack(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


@pytest.fixture
def root(project_dir: Path) -> Path:
    (project_dir / ".nbtrack").mkdir()
    return project_dir


def test_checkout_restores_and_exits_zero(root: Path) -> None:
    (root / "a.csv").write_text("a\n1\n")
    run = record_run(root, inputs=["a.csv"])
    (root / "a.csv").unlink()
    out = nbtrack(root, "checkout", run[:8])
    assert out.returncode == 0, out.stderr
    assert "restored" in out.stdout and "a.csv" in out.stdout
    assert (root / "a.csv").read_text() == "a\n1\n"


def test_checkout_reports_what_it_could_not_restore_with_a_nonzero_exit(root: Path) -> None:
    (root / "kept.txt").write_text("kept")
    (root / "mine.txt").write_text("recorded")
    run = record_run(root, inputs=["kept.txt", "mine.txt"])
    (root / "mine.txt").write_text("edited by hand")
    out = nbtrack(root, "checkout", "last", "--json")
    assert out.returncode == 1
    body = json.loads(out.stdout)
    assert body["run_id"] == run and body["ok"] is False
    assert {i["path"]: i["status"] for i in body["items"]} == {
        "kept.txt": "unchanged",
        "mine.txt": "modified",
    }
    assert "could not be restored" in out.stderr
    assert (root / "mine.txt").read_text() == "edited by hand"
    forced = nbtrack(root, "checkout", "last", "mine.txt", "--force")
    assert forced.returncode == 0 and (root / "mine.txt").read_text() == "recorded"


def test_checkout_to_a_folder_and_inputs_only(root: Path, tmp_path: Path) -> None:
    (root / "in.txt").write_text("in")
    (root / "out.txt").write_text("out")
    record_run(root, inputs=["in.txt"], outputs=["out.txt"])
    dest = tmp_path / "elsewhere"
    out = nbtrack(root, "checkout", "last", "--inputs", "--to", str(dest))
    assert out.returncode == 0, out.stderr
    assert [p.name for p in dest.iterdir()] == ["in.txt"]


def test_gc_dry_run_then_prune(root: Path) -> None:
    (root / "old.bin").write_bytes(b"o" * 1000)
    record_run(root, inputs=["old.bin"])
    (root / "new.bin").write_bytes(b"n" * 10)
    record_run(root, inputs=["new.bin"])
    preview = nbtrack(root, "gc", "--keep-last", "1", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "would remove 1 blob(s), 1000 B" in preview.stdout
    done = nbtrack(root, "gc", "--keep-last", "1", "--json")
    body = json.loads(done.stdout)
    assert body["removed_count"] == 1 and body["removed_bytes"] == 1000
    assert body["kept_count"] == 1
    again = json.loads(nbtrack(root, "gc", "--json").stdout)
    assert again["removed_count"] == 0


def test_gc_older_than_keeps_recent_runs(root: Path) -> None:
    (root / "x.bin").write_bytes(b"x" * 10)
    record_run(root, inputs=["x.bin"])
    body = json.loads(nbtrack(root, "gc", "--older-than", "1", "--json").stdout)
    assert body["removed_count"] == 0 and body["kept_count"] == 1
    bad = nbtrack(root, "gc", "--keep-last", "-3")
    assert bad.returncode == 2 and "needs a number >= 0" in bad.stderr


def test_push_and_pull_through_the_cli(root: Path, tmp_path: Path) -> None:
    (root / "d.csv").write_text("d\n1\n")
    run = record_run(root, inputs=["d.csv"])
    remote = tmp_path / "remote"
    pushed = nbtrack(root, "push", str(remote), "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["runs"] == [run]
    other = tmp_path / "other"
    (other / ".nbtrack").mkdir(parents=True)
    pulled = nbtrack(other, "pull", str(remote))
    assert pulled.returncode == 0, pulled.stderr
    assert "pulled 1 run(s); copied 1 blob(s)" in pulled.stdout
    restored = nbtrack(other, "checkout", run)
    assert restored.returncode == 0 and (other / "d.csv").read_text() == "d\n1\n"


def test_unknown_run_is_an_error_not_a_traceback(root: Path) -> None:
    out = nbtrack(root, "checkout", "abcdef12")
    assert out.returncode != 0 and out.stderr.startswith("nbtrack: error:")
    assert "Traceback" not in out.stderr


def test_a_restored_folder_is_one_line_with_its_counts(root: Path) -> None:
    (root / "imgs").mkdir()
    for i in range(5):
        (root / "imgs" / f"{i}.png").write_bytes(bytes([i]))
    record_run(root, inputs=["imgs"])
    (root / "imgs" / "0.png").unlink()
    out = nbtrack(root, "checkout", "last")
    assert out.returncode == 0, out.stderr
    folder_line = next(line for line in out.stdout.splitlines() if "imgs/" in line)
    assert folder_line.split() == [
        "restored",
        "imgs/",
        "1",
        "file(s)",
        "restored,",
        "4",
        "file(s)",
        "unchanged",
    ]
