"""The run views as a user reaches them: real JupyterLab, the shipped examples run
with papermill (as examples/demo.py runs them), headless Chromium.

The lineage of the training run shows 01_prepare → data/train.csv → 02_train; the
Models view lists a registered version and sets an alias after a confirmation; an
image a run wrote is previewed and enlarged. Screenshots of the lineage and Models
views go to test-output/browser/ (and to docs/img/ with NBTRACK_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from factory import record_run
from nbtrack.client import Client
from nbtrack.project import resolve_project

from .conftest import Lab

REPO = Path(__file__).resolve().parents[2]
DOCS_IMG = REPO / "docs" / "img"


def png(width: int, height: int) -> bytes:
    """A real PNG (an RGB gradient), written by hand: no imaging library needed."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def nbtrack(*args: str, cwd: Path) -> str:
    """The nbtrack command as a user types it in the demo folder."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("NBTRACK_STORE", None)
    done = subprocess.run(
        ["nbtrack", *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=600
    )
    assert done.returncode == 0, f"nbtrack {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def demo(lab: Lab) -> dict[str, str]:
    """The examples run in ``demo/`` under the lab's root (their own store), a model
    registered from the training run, and a run that wrote a plot."""
    folder = lab.root / "demo"
    (folder / ".nbtrack").mkdir(parents=True)
    for name in ("01_prepare.ipynb", "02_train.ipynb"):
        shutil.copy2(REPO / "examples" / name, folder / name)
    nbtrack("sweep", "01_prepare.ipynb", cwd=folder)
    nbtrack("sweep", "02_train.ipynb", "-p", "model", "sgd", "gbm", cwd=folder)
    runs = json.loads(nbtrack("ls", "--json", cwd=folder))
    runs = runs["runs"] if isinstance(runs, dict) else runs
    by_name = {(run["name"], run["params"].get("model")): run["run_id"] for run in runs}
    client = Client(resolve_project(folder))
    # Two versions of one model: v1 from the SGD run, v2 from the boosted trees.
    for kind in ("sgd", "gbm"):
        run_id = by_name["train", kind]
        [model_file] = [
            d.path for d in client.get_run(run_id).outputs if d.path.startswith("models/")
        ]
        nbtrack("models", "register", run_id, model_file, "--name", "breast-cancer", cwd=folder)
    # A second version of the training data (labels flipped), for the drift view.
    nbtrack("sweep", "01_prepare.ipynb", "-p", "label_noise", "0.3", cwd=folder)
    (folder / "plots").mkdir()
    (folder / "plots" / "roc.png").write_bytes(png(240, 160))
    plot = record_run(
        client,
        "plot",
        outputs=[folder / "plots" / "roc.png"],
        notebook_path=str(folder / "02_train.ipynb"),
        cell_id="plot",
    )
    return {"prepare": by_name["prepare", None], "train": by_name["train", "sgd"], "plot": plot}


def open_demo_notebook(page: Page, lab: Lab) -> None:
    page.goto(lab.page_url("lab/tree/demo/02_train.ipynb"))
    expect(page.locator("#jp-main-statusbar").get_by_text("Idle")).to_be_visible(timeout=90_000)


def palette(page: Page, label: str, answer: str | None = None) -> None:
    """Run a command from the command palette; answer its question if it asks one."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    expect(search).to_be_visible()
    search.fill(label)
    page.locator(".lm-CommandPalette-item", has_text=label).first.click()
    if answer is not None:
        field = page.locator(".jp-Dialog input")
        expect(field).to_be_visible()
        field.fill(answer)
        page.locator(".jp-Dialog .jp-mod-accept").click()


def test_lineage_of_the_training_run_shows_prepare_data_and_train(
    page: Page, lab: Lab, demo: dict[str, str], output_dir: Path
) -> None:
    open_demo_notebook(page, lab)
    palette(page, "Show the Lineage of a Run", answer=demo["train"][:8])

    view = page.locator(".nbtrack-lineage").last
    expect(view.locator(".nbtrack-lineage-chart canvas").first).to_be_visible(timeout=30_000)
    edges = view.locator(".nbtrack-lineage-edges li")
    prepare, train = demo["prepare"][:8], demo["train"][:8]
    expect(edges.filter(has_text=f"01_prepare · prepare {prepare} → data/train.csv")).to_have_count(
        1
    )
    expect(edges.filter(has_text=f"data/train.csv → 02_train · train {train}")).to_have_count(1)
    # The model registered from the run's output hangs off it.
    expect(edges.filter(has_text=f"02_train · train {train} → breast-cancer v1")).to_have_count(1)
    page.locator(".jp-MainAreaWidget:visible").last.screenshot(path=str(output_dir / "lineage.png"))

    # Every node is also a button: picking the data shows who wrote and read it...
    view.locator(".nbtrack-lineage-edges summary").click()
    view.locator(".nbtrack-lineage-node", has_text="data/train.csv").click()
    facts = view.locator(".nbtrack-lineage-info")
    expect(facts).to_contain_text(f"written as data/train.csv by 01_prepare · prepare {prepare}")
    expect(facts).to_contain_text(f"read as data/train.csv by 02_train · train {train}")
    # ...and opens its drift across versions: the flipped labels moved `target`.
    facts.get_by_role("button", name="Drift of this file").click()
    drift = page.locator(".nbtrack-drift")
    expect(drift.locator("h2")).to_have_text("Drift of data/train.csv", timeout=60_000)
    expect(drift.locator('tr[data-column="target"]')).to_be_visible()
    expect(drift.locator(".nbtrack-drift-chart canvas").first).to_be_visible()
    page.locator(".jp-MainAreaWidget:visible").last.screenshot(path=str(output_dir / "drift.png"))

    # A run node opens that run's details.
    page.locator(".lm-TabBar-tab", has_text=f"Lineage {train}").click()
    view.locator(".nbtrack-lineage-node", has_text=f"01_prepare · prepare {prepare}").click()
    facts.get_by_role("button", name="Open run").click()
    detail = page.locator(".nbtrack-detail").last
    expect(detail.locator("h2")).to_contain_text(f"prepare {prepare}")
    expect(detail.locator('[data-section="system"]')).to_contain_text("peak_rss_mb")


def test_models_view_lists_the_version_and_sets_an_alias(
    page: Page, lab: Lab, demo: dict[str, str], output_dir: Path
) -> None:
    open_demo_notebook(page, lab)
    palette(page, "Show nbtrack Models")
    view = page.locator(".nbtrack-models")
    expect(view.locator('[data-model="breast-cancer"]')).to_be_visible(timeout=30_000)
    expect(view.locator("tr[data-version]")).to_have_count(2)  # newest first
    expect(view.locator("tr[data-version]").first).to_have_attribute("data-version", "2")
    row = view.locator('tr[data-version="1"]')
    expect(row).to_contain_text("pickle")
    expect(row).to_contain_text(demo["train"][:8])

    def set_alias(version: str, alias: str, question: str) -> None:
        # Setting an alias asks for its name, then for a confirmation.
        view.locator(f'tr[data-version="{version}"]').get_by_role(
            "button", name="Set alias…"
        ).click()
        page.locator(".jp-Dialog input").fill(alias)
        page.locator(".jp-Dialog .jp-mod-accept").click()
        expect(page.locator(".jp-Dialog")).to_contain_text(question)
        page.locator(".jp-Dialog .jp-mod-accept", has_text="Move").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)

    set_alias("1", "champion", "Set @champion of breast-cancer on v1?")
    expect(view.locator('.nbtrack-alias-chip[data-alias="champion"]')).to_contain_text("v1")
    set_alias("2", "champion", "Move @champion of breast-cancer from v1 to v2?")
    set_alias("1", "challenger", "Set @challenger of breast-cancer on v1?")
    expect(view.locator('.nbtrack-alias-chip[data-alias="champion"]')).to_contain_text("v2")
    history = view.locator(".nbtrack-alias-history li")
    expect(history).to_have_count(3)
    expect(history.filter(has_text="@champion moved v1 → v2")).to_have_count(1)
    # The notifications fade before the screenshot.
    expect(page.locator(".Toastify__toast")).to_have_count(0, timeout=15_000)
    page.locator(".jp-MainAreaWidget:visible").last.screenshot(path=str(output_dir / "models.png"))
    assert nbtrack("models", "show", "breast-cancer@champion", cwd=lab.root / "demo")


def test_an_image_a_run_wrote_is_previewed_and_enlarged(
    page: Page, lab: Lab, demo: dict[str, str], output_dir: Path
) -> None:
    open_demo_notebook(page, lab)
    palette(page, "Open a Run", answer=demo["plot"])
    images = page.locator('.nbtrack-detail [data-section="images"]')
    thumb = images.locator('figure[data-path="plots/roc.png"] img')
    expect(thumb).to_be_visible(timeout=30_000)
    assert thumb.evaluate("img => img.naturalWidth") == 240
    images.locator('figure[data-path="plots/roc.png"]').click()
    full = page.locator(".jp-Dialog .nbtrack-image-full img")
    expect(full).to_be_visible()
    assert full.evaluate("img => img.naturalHeight") == 160
    page.locator(".jp-Dialog .jp-mod-accept").click()

    # Updating the docs' screenshots is asked for, not done on every run.
    if os.environ.get("NBTRACK_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for name in ("lineage.png", "models.png", "drift.png"):
            shutil.copyfile(output_dir / name, DOCS_IMG / name)
