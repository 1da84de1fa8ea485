"""The Runs tab as a user drives it: real JupyterLab, real stores, headless Chromium.

The big project (``big/``, 20,000 runs of ``train.ipynb``) comes from conftest; the
notebooks opened here are written by the tests themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from factory import record_run

from .conftest import BIG_STORE_RUNS, Lab, _write_notebook, choose_from_menu

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
TAB = "#nbtrack-runs-tab-content"
#: ECharts' parallel component margins, as compareview.ts sets them.
PARALLEL_LEFT, PARALLEL_RIGHT, PARALLEL_TOP, PARALLEL_BOTTOM = 50, 90, 36, 28


@pytest.fixture(scope="module")
def big_notebook(lab: Lab) -> str:
    """The notebook the big store's runs were recorded from (big/train.ipynb)."""
    path = lab.root / "big" / "train.ipynb"
    if not path.exists():
        _write_notebook(path)
    return "big/train.ipynb"


def open_runs_tab(page: Page, lab: Lab, notebook: str) -> Locator:
    """Open a notebook, then the Runs tab from the sidebar's button, as a user does."""
    page.goto(lab.page_url(f"lab/tree/{notebook}"))
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=90_000)
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbtrack-runs"]').click()
    page.locator("#nbtrack-runs .nbtrack-open-tab").click()
    tab = page.locator(TAB)
    expect(tab).to_be_visible()
    return tab


def publish_screenshots(output_dir: Path, *names: str) -> None:
    """The docs show these screenshots; refresh them on request, not on every run."""
    if os.environ.get("NBTRACK_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for name in names:
            if (output_dir / name).exists():
                shutil.copyfile(output_dir / name, DOCS_IMG / name)


def drag_parallel_axis(
    page: Page, tab: Locator, axis: int, axes: int, top: float, bottom: float
) -> None:
    """Brush axis ``axis`` of ``axes`` from ``top`` to ``bottom`` (fractions of its height),
    once the chart has finished drawing and listens for brushes (``data-ready``)."""
    chart = tab.locator(".nbtrack-parallel[data-ready]")
    expect(chart).to_have_count(1, timeout=30_000)
    box = chart.bounding_box()
    assert box is not None
    width = box["width"] - PARALLEL_LEFT - PARALLEL_RIGHT
    height = box["height"] - PARALLEL_TOP - PARALLEL_BOTTOM
    x = box["x"] + PARALLEL_LEFT + width * axis / (axes - 1)
    y0 = box["y"] + PARALLEL_TOP + height * top
    y1 = box["y"] + PARALLEL_TOP + height * bottom
    page.mouse.move(x, y0)
    page.mouse.down()
    page.mouse.move(x, y1, steps=6)
    page.mouse.up()


def brush_parallel_axis(
    page: Page, tab: Locator, landed: Callable[[float], None], axis: int, top: float, bottom: float
) -> None:
    """Brush an axis of the 11 (``drag_parallel_axis``) until ``landed(timeout_ms)``
    passes, three drags at most (the last given longer). A drag that lands while the
    tab is still settling (the chart drawn anew for the notebook's scope, or for the
    table the last brush filtered) is lost with that chart, as it would be for a user,
    who drags again. The same stretch of the same axis dragged again is the same
    brush, so a drag that did land but showed late is not doubled."""
    for patience in (3_000, 3_000, 10_000):
        drag_parallel_axis(page, tab, axis=axis, axes=11, top=top, bottom=bottom)
        try:
            landed(patience)
            return
        except AssertionError:
            if patience == 10_000:
                raise


def test_runs_tab_with_20000_runs_scrolls_to_the_end(
    page: Page, lab: Lab, big_notebook: str, output_dir: Path
) -> None:
    # Given a store of 20,000 runs of the notebook in front
    tab = open_runs_tab(page, lab, big_notebook)
    # Then the tab lists them all, varying params and metrics as the first value columns
    expect(tab.locator(".nbtrack-info")).to_contain_text(f"{BIG_STORE_RUNS:,} runs", timeout=30_000)
    head = tab.locator(".nbtrack-head .nbtrack-cell[data-column]")
    expect(head.nth(2)).to_have_attribute("data-column", re.compile(r"^params\."))
    rows = tab.locator(".nbtrack-table .nbtrack-rows .nbtrack-row")
    expect(rows.first).to_have_attribute("aria-rowindex", "1")
    assert rows.count() < 100
    expect(tab.locator(".nbtrack-compare-note")).to_contain_text("2,000 runs", timeout=30_000)
    tab.screenshot(path=str(output_dir / "runs-tab.png"))

    # When the user scrolls to the end, the oldest run is the last row, loaded
    tab.locator(".nbtrack-table").evaluate("node => { node.scrollTop = node.scrollHeight; }")
    last = tab.locator(f'.nbtrack-row[aria-rowindex="{BIG_STORE_RUNS}"]')
    expect(last).to_be_visible()
    expect(last.locator('[data-column="name"]')).to_have_text("train0")
    assert rows.count() < 100

    # Grouped by notebook run (these runs were made outside any: one group), opened,
    # the list stays virtual and still scrolls to the oldest run, under its group row
    tab.locator(".nbtrack-group-by").select_option("parent")
    group = tab.locator(".nbtrack-rows .nbtrack-group-row")
    expect(group.locator('[data-column="name"]')).to_have_text(
        f"Interactive runs · {BIG_STORE_RUNS:,} runs", timeout=60_000
    )
    group.click()
    expect(tab.locator(".nbtrack-rows .nbtrack-mod-child").first).to_be_visible()
    tab.locator(".nbtrack-table").evaluate("node => { node.scrollTop = node.scrollHeight; }")
    last = tab.locator(f'.nbtrack-row[aria-rowindex="{BIG_STORE_RUNS + 1}"]')
    expect(last.locator('[data-column="name"]')).to_have_text("train0")
    assert rows.count() < 100


def test_three_selected_runs_show_scalar_bars_and_overlaid_curves(
    page: Page, lab: Lab, big_notebook: str, output_dir: Path
) -> None:
    tab = open_runs_tab(page, lab, big_notebook)
    rows = tab.locator(".nbtrack-table .nbtrack-rows .nbtrack-row[data-run-id]")
    expect(rows.first).to_be_visible(timeout=30_000)
    for index in range(3):
        rows.nth(index).locator(".nbtrack-check").check()
    expect(tab.locator(".nbtrack-selection")).to_have_text("3 selected")

    compare = tab.locator(".nbtrack-compare")
    compare.locator('.nbtrack-compare-tab[data-view="bars"]').click()
    # One chart per metric, each with the three runs side by side (a legend of three)
    bars = compare.locator(".nbtrack-bar-host[data-metric]")
    # (the first chart may wait for ECharts' chunk on a loaded machine)
    expect(bars.first).to_have_attribute("data-metric", "m00", timeout=30_000)
    assert bars.count() >= 3
    expect(bars.first.locator("canvas")).to_have_count(1)
    expect(compare.locator(".nbtrack-chart-key")).to_have_count(3)
    compare.screenshot(path=str(output_dir / "bars.png"))

    compare.locator('.nbtrack-compare-tab[data-view="curves"]').click()
    expect(compare.locator(".nbtrack-compare-note")).to_contain_text("of 3 runs")
    expect(compare.locator(".nbtrack-curves canvas")).to_have_count(1, timeout=30_000)
    # Log scale and smoothing redraw the same runs
    compare.locator(".nbtrack-log").check()
    expect(compare.locator(".nbtrack-compare-note")).to_contain_text("of 3 runs")
    expect(compare.locator(".nbtrack-curves canvas")).to_have_count(1)


def test_grouping_by_sweep_summarises_the_children_on_the_group_row(
    page: Page, lab: Lab, output_dir: Path
) -> None:
    # Given a sweep (as `nbtrack sweep` records it): three notebook runs tagged with the
    # sweep's id, each with two cell runs of its lr
    # (in a project of its own: the other tests' stores stay as they expect)
    project = lab.root / "sweeps"
    (project / ".nbtrack").mkdir(parents=True)
    notebook = project / "sweep.ipynb"
    _write_notebook(notebook)
    accs = {0.1: (0.71, 0.74), 0.01: (0.82, 0.93), 0.001: (0.61, 0.65)}
    for lr, values in accs.items():
        parent = record_run(
            project,
            "sweep.ipynb",
            kind="notebook",
            params={"lr": lr},
            tags={"sweep": "sw42"},
            notebook_path=str(notebook),
        )
        for acc in values:
            record_run(
                project,
                "train",
                params={"lr": lr, "seed": round(acc * 100)},
                metrics={"acc": acc},
                parent_id=parent,
                notebook_path=str(notebook),
                cell_id="c1",
            )
    tab = open_runs_tab(page, lab, "sweeps/sweep.ipynb")
    expect(tab.locator(".nbtrack-info")).to_contain_text("6 runs", timeout=30_000)

    # When the user groups the table by sweep
    tab.locator(".nbtrack-group-by").select_option("sweep")
    groups = tab.locator(".nbtrack-rows .nbtrack-group-row")
    # Then one row stands for the sweep and summarises its six cell runs
    expect(groups).to_have_count(1)
    expect(groups.locator('[data-column="name"]')).to_have_text("Sweep sw42 · 6 runs")
    expect(groups.locator('[data-column="metrics.acc"]')).to_have_text("0.93")
    tab.locator(".nbtrack-group-stat").select_option("min")
    expect(groups.locator('[data-column="metrics.acc"]')).to_have_text("0.61")

    # Grouped by notebook run: a row per sweep point, its lr (constant in it) and acc
    tab.locator(".nbtrack-group-by").select_option("parent")
    expect(groups).to_have_count(3)
    expect(groups.locator('[data-column="params.lr"]')).to_have_text(["0.001", "0.01", "0.1"])
    expect(groups.locator('[data-column="metrics.acc"]')).to_have_text(["0.61", "0.82", "0.71"])
    # the seed varies within a point: its group cell stays empty
    expect(groups.locator('[data-column="params.seed"]')).to_have_text(["", "", ""])
    # Opening a group shows its runs under it
    groups.nth(1).click()
    children = tab.locator(".nbtrack-rows .nbtrack-row.nbtrack-mod-child")
    expect(children).to_have_count(2)
    expect(children.locator('[data-column="metrics.acc"]')).to_have_text(["0.93", "0.82"])
    tab.screenshot(path=str(output_dir / "runs-groups.png"))
    publish_screenshots(output_dir, "runs-groups.png")

    # The sweep's link shows exactly the rows `nbtrack ls --parent sw42` lists
    tab.locator(".nbtrack-group-by").select_option("sweep")
    tab.locator(".nbtrack-sweep-link").click()
    expect(tab.locator(".nbtrack-chip-sweep")).to_be_visible()
    rows = tab.locator(".nbtrack-rows .nbtrack-row[data-run-id]")
    expect(rows).to_have_count(6)
    listed = subprocess.run(
        [sys.executable, "-m", "nbtrack", "ls", "--parent", "sw42", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = [run["run_id"] for run in json.loads(listed.stdout)["runs"]]
    shown = [rows.nth(i).get_attribute("data-run-id") for i in range(rows.count())]
    assert shown == expected


# After the grouping test on purpose: the Runs tab restored from a grouped table
# once showed "No metric logged yet" (the views' runs, dropped when the tab moved to
# another notebook's store and back before it loaded, were never fetched again).
def test_brushing_the_parallel_coordinates_filters_the_table(
    page: Page, lab: Lab, big_notebook: str, output_dir: Path
) -> None:
    tab = open_runs_tab(page, lab, big_notebook)
    expect(tab.locator(".nbtrack-info")).to_contain_text(f"{BIG_STORE_RUNS:,} runs", timeout=30_000)
    compare = tab.locator(".nbtrack-compare")
    expect(compare).to_have_attribute("data-view", "parallel")
    # The parallel coordinates draw the newest 2,000 runs: ten parameter axes and the metric
    note = compare.locator(".nbtrack-compare-note")
    expect(note).to_contain_text("2,000 runs", timeout=30_000)
    expect(compare.locator(".nbtrack-parallel canvas")).to_have_count(1)

    # When the user drags along the metric axis (the last of 11)
    chip = tab.locator(".nbtrack-chip-brush")
    brush_parallel_axis(
        page, tab, lambda ms: expect(chip).to_be_visible(timeout=ms), axis=10, top=0.05, bottom=0.45
    )
    # Then the table keeps only the runs inside the brush
    kept = int(re.sub(r"\D", "", chip.inner_text()))
    assert 0 < kept < 2000
    expect(tab.locator(".nbtrack-info")).to_contain_text(f"{kept:,} of {BIG_STORE_RUNS:,} runs")
    rows = tab.locator(".nbtrack-table .nbtrack-rows .nbtrack-row[data-run-id]")
    expect(rows.first).to_be_visible()
    # and a second axis narrows it further
    before = chip.inner_text()
    brush_parallel_axis(
        page,
        tab,
        lambda ms: expect(chip).not_to_have_text(before, timeout=ms),
        axis=0,
        top=0.5,
        bottom=0.95,
    )
    narrower = int(re.sub(r"\D", "", chip.inner_text()))
    assert narrower < kept
    compare.screenshot(path=str(output_dir / "parallel.png"))

    # Removing the brush shows every run again
    chip.locator(".nbtrack-chip-clear").click()
    expect(chip).to_have_count(0)

    publish_screenshots(output_dir, "runs-tab.png", "parallel.png")


def test_the_lists_follow_the_notebook_in_front(page: Page, lab: Lab) -> None:
    # Given two notebooks of one project, each with its own runs
    names = {"alpha": 2, "beta": 3}
    for name, count in names.items():
        _write_notebook(lab.root / f"{name}.ipynb")
        for i in range(count):
            record_run(
                lab.root,
                f"{name}-cell",
                params={"i": i},
                metrics={"acc": 0.5 + i / 10},
                notebook_path=str(lab.root / f"{name}.ipynb"),
                cell_id="c1",
            )
    page.goto(lab.page_url("lab/tree/alpha.ipynb"))
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=90_000)
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbtrack-runs"]').click()
    sidebar = page.locator("#nbtrack-runs")
    names_shown = sidebar.locator('.nbtrack-rows .nbtrack-row [data-column="name"]')
    expect(sidebar.locator(".nbtrack-info")).to_contain_text("2 runs", timeout=30_000)
    expect(names_shown).to_have_text(["alpha-cell"] * 2)

    # When the user opens the second notebook from the file browser
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
    page.locator(".jp-DirListing-item", has_text="beta.ipynb").dblclick()
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbtrack-runs"]').click()
    # Then the list shows its runs
    expect(sidebar.locator(".nbtrack-info")).to_contain_text("3 runs", timeout=30_000)
    expect(names_shown).to_have_text(["beta-cell"] * 3)

    # Switching back to the first notebook's tab brings its runs back
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="alpha.ipynb").click()
    expect(sidebar.locator(".nbtrack-info")).to_contain_text("2 runs")
    expect(names_shown).to_have_text(["alpha-cell"] * 2)

    # and the whole store is one click away
    sidebar.locator(".nbtrack-filter-scope").select_option("store")
    expect(names_shown.filter(has_text="beta-cell")).to_have_count(3)


def test_notebook_7_loads_the_extension_without_error(page: Page, lab: Lab) -> None:
    # Errors raised by nbtrack's code (its bundle is served from .../labextensions/nbtrack/)
    errors: list[str] = []
    page.on(
        "pageerror",
        lambda error: errors.append(str(error)) if "nbtrack" in f"{error}{error.stack}" else None,
    )
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and "nbtrack" in f"{message.text}{message.location}"
            else None
        ),
    )
    _write_notebook(lab.root / "seven.ipynb")
    page.goto(lab.page_url("tree"))
    expect(page.locator(".jp-DirListing-item", has_text="seven.ipynb")).to_be_visible(
        timeout=60_000
    )
    page.goto(lab.page_url("notebooks/seven.ipynb"))
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=60_000)
    # The panel's command is there: the plugin activated without ILabShell or a launcher
    choose_from_menu(page, "View", "Left Sidebar", "Show nbtrack runs")
    expect(page.locator("#nbtrack-runs")).to_be_visible()
    assert errors == []
