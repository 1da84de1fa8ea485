"""Installing nbtrack as a user does: from a checkout without Node.js, and from the
production wheel ``make dist`` builds, into a fresh environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fresh_checkout(tmp_path: Path) -> Path:
    """The files a clone of this checkout has (tracked and new, nothing ignored or built)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    src = tmp_path / "nbtrack"
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    return src


def test_pip_install_without_node_fails_in_one_line_that_says_what_to_install(
    tmp_path: Path,
) -> None:
    # given a fresh checkout (no built extension) and a PATH without node
    src = fresh_checkout(tmp_path)
    assert not (src / "python/nbtrack/labextension").exists()
    empty = tmp_path / "bin"
    empty.mkdir()
    # when `pip install .` runs there (the build tools of this environment, so no download)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--target", str(tmp_path / "site"), "."],
        cwd=src, env={"PATH": str(empty), "HOME": str(tmp_path)}, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    # then it fails, and the build's whole output is one line naming what to install
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "[1 lines of output]" in said, said[-3000:]
    [line] = [x.strip() for x in said.splitlines() if "nbtrack: building" in x]
    assert "Node.js >= 18" in line and "no `node` on PATH" in line
    assert "prebuilt wheel" in line and "make dist" in line
    assert "Traceback" not in said
    assert not (tmp_path / "site").exists() or not any((tmp_path / "site").iterdir())
