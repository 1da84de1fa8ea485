"""Installing nbtrack as a user does: from a checkout without Node.js, and from the
production wheel ``make dist`` builds, into a fresh environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
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


KERNEL_SCRIPT = r"""
import json, sys
from jupyter_client.manager import start_new_kernel

km, kc = start_new_kernel(kernel_name="python3")
try:
    for code in ("%load_ext nbtrack", "%%track smoke -m y\nx = 2\ny = x * 21"):
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""


def built_wheel() -> Path:
    """The wheel ``make dist`` builds into dist/, built now unless dist/ holds one newer
    than every source file (labextension/, python/, the build configuration)."""
    wheels = sorted((REPO / "dist").glob("nbtrack-*.whl"))
    sources = [p for d in ("labextension", "python/nbtrack") for p in (REPO / d).rglob("*")]
    sources += [REPO / "package.json", REPO / "pyproject.toml", REPO / "hatch_build.py"]
    built = ("python/nbtrack/labextension", "__pycache__")
    newest = max(
        p.stat().st_mtime for p in sources if p.is_file() and not any(b in str(p) for b in built)
    )
    if len(wheels) == 1 and wheels[0].stat().st_mtime > newest:
        return wheels[0]
    venv = Path(sys.prefix)
    stamp = venv / ".nbtrack-installed"
    done = subprocess.run(
        ["make", "-o", str(stamp), "dist", f"VENV={venv}"], cwd=REPO, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [wheel] = sorted((REPO / "dist").glob("nbtrack-*.whl"))
    assert sorted((REPO / "dist").glob("nbtrack-*.tar.gz")), "make dist builds an sdist too"
    return wheel


def test_the_dist_wheel_installs_into_a_fresh_environment_without_node(tmp_path: Path) -> None:
    # given the production wheel of `make dist`
    wheel = built_wheel()
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.endswith(".js.map")], "no source maps in a release"
    assert any(n.endswith("labextensions/nbtrack/package.json") for n in names)
    # and a fresh virtual environment, no Node.js on PATH, nothing of this checkout
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "JUPYTER", "JPY_", "NBTRACK_", "VIRTUAL_ENV"))
    }
    env |= {
        "PATH": str(venv / "bin"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "NBTRACK_STORE": str(tmp_path / "store"),
    }

    def run(*args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # no colours

    assert shutil.which("node", path=env["PATH"]) is None
    # when the wheel is installed there with pip (and JupyterLab, to list its extensions)
    run("pip", "install", "--quiet", str(wheel), "jupyterlab", timeout=900)
    # then JupyterLab lists the prebuilt panel and the server extension, enabled
    labext = run("jupyter", "labextension", "list")
    assert re.search(r"nbtrack v\S+ enabled\s+OK", labext), labext
    server = run("jupyter", "server", "extension", "list")
    assert re.search(r"nbtrack\s+enabled", server), server
    assert "nbtrack" in run("python", "-c", "import nbtrack; print(nbtrack.__file__)")
    assert str(venv) in run("python", "-c", "import nbtrack; print(nbtrack.__file__)")
    # and a kernel of that environment loads the extension and records a tracked cell
    run("python", "-c", KERNEL_SCRIPT, timeout=300)
    page = json.loads(run("nbtrack", "ls", "--json"))
    [smoke] = page["runs"]
    assert smoke["name"] == "smoke" and smoke["metrics"]["y"] == 42
