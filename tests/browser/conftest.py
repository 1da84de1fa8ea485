"""A real ``jupyter lab`` and Debian's headless Chromium for the browser tests.

These tests run as their own pytest invocation (``make test-browser``):
pytest-jupyter's event loop and Playwright's sync API do not share a process.
A missing browser is a failure, never a skip: CI must not pass without them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

#: Runs in the large store of the ``big/`` project.
BIG_STORE_RUNS = 20_000

#: Screenshots land here (gitignored); the best ones are copied to docs/img/.
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Never throttle a page's animation frames and timers: ECharts renders (and
    # installs its brushes) in one, and a throttled frame lost a test's drag.
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]

#: The notebook a user would write: every "Run All" in the same kernel divides lr by ten,
#: so runs differ; a fresh kernel (a re-run) starts again at lr = 0.1.
TRAIN_CELLS = [
    "%load_ext nbtrack",
    "try:\n    attempt += 1\nexcept NameError:\n    attempt = 0\nlr = 0.1 / 10**attempt",
    "%%track train -p lr -m acc\n"
    "import nbtrack\n"
    "epochs = 6\n"
    "for step in range(epochs):\n"
    "    nbtrack.log_metric('loss', lr * 10 / (step + 1))\n"
    "acc = round(1 - lr, 4)",
]


@dataclass
class Lab:
    """A running JupyterLab: where it listens and which folder it serves."""

    url: str
    token: str
    root: Path

    def page_url(self, path: str) -> str:
        """A page of this server; JupyterLab pages start from a clean layout (``reset``)."""
        reset = "&reset" if path.startswith("lab") else ""
        return f"{self.url}{path}?token={self.token}{reset}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        }
    )
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in TRAIN_CELLS]
    path.write_text(nbformat.writes(notebook))


def _big_store(folder: Path) -> None:
    """Bulk-load ``BIG_STORE_RUNS`` runs with the benchmark's generator (20 params, 20 metrics)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        from bench_server import build_store
    finally:
        sys.path.pop(0)
    build_store(folder, BIG_STORE_RUNS)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on a free port, serving a project with one tracked notebook."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "project"
    (root / ".nbtrack").mkdir(parents=True)
    _write_notebook(root / "train.ipynb")
    # A second project with a large store, for the virtualized list.
    (root / "big").mkdir()
    _write_notebook(root / "big" / "big.ipynb")
    _big_store(root / "big")
    settings = base / "settings"
    settings.mkdir()
    # The "news" toast would cover the panel in screenshots.
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {
                    "fetchNews": "false",
                    "checkForUpdates": False,
                }
            }
        )
    )
    port, token = _free_port(), secrets.token_hex(16)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("NBTRACK_STORE", None)
    env["JUPYTER_RUNTIME_DIR"] = str(base / "runtime")
    log = (base / "lab.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.workspaces_dir={base / 'workspaces'}",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"jupyter lab did not start: {(base / 'lab.log').read_text()[-3000:]}"
                ) from None
            time.sleep(0.25)
    try:
        with urllib.request.urlopen(f"{url}nbtrack/api/status?token={token}", timeout=30):
            pass
    except OSError as exc:
        process.kill()
        raise RuntimeError(
            f"the nbtrack server extension is not enabled in this environment ({exc}): "
            "install nbtrack (make setup) so jupyter_server_config.d/nbtrack.json is there"
        ) from None
    yield Lab(url=url, token=token, root=root)
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def chromium(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (Playwright cannot download its own here): required, never skipped."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    browser = playwright_instance.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


def choose_from_menu(page: Page, menu: str, *items: str) -> None:
    """Open ``menu`` in the menu bar and click ``items`` in turn, as a user does:
    ``choose_from_menu(page, "View", "Left Sidebar", "Show nbtrack runs")``.

    A menu opened while the app is still settling can close again before its first
    item shows (Notebook 7 on a busy machine once left "Left Sidebar" unseen for 30 s);
    a user opens it again, and so does this, three times at most."""
    first = page.locator(".lm-Menu-itemLabel", has_text=items[0]).first
    for patience in (5_000, 5_000, 30_000):
        page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
        try:
            expect(first).to_be_visible(timeout=patience)
            break
        except AssertionError:
            if patience == 30_000:
                raise
            page.keyboard.press("Escape")
    for item in items:
        page.locator(".lm-Menu-itemLabel", has_text=item).first.click()
