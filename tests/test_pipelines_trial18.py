"""Headless runs as a data scientist launches them (eighteenth papermill and pipeline
trial): parameters cells with type hints and comments, parameters read through a
function, grids of two parameters filtered and sorted afterwards, sweep members
re-run and compared, notebooks with no tracked cell, output notebooks and files written
into the project, with real kernels, real papermill and the real CLI, then the record
read back as a user would.

Each test is a reproducer: what was run, and what the record must say.
"""

from __future__ import annotations

import json

from conftest import run_cli
from test_pipelines_trial12 import _notebook

LOAD = "%load_ext nbtrack"


def test_a_grid_over_parameters_named_like_sql_keywords_is_filtered_by_their_bare_names(
    tmp_path,
):
    """``nbtrack sweep nb.ipynb -p order 1 2 -p group a b`` (a polynomial's order, a data
    group: names a notebook uses), then ``nbtrack ls --where "order > 1 and group = 'b'"``:
    "bad filter …: syntax error at or near "order"", where ``lr > 0.1`` finds runs by
    their bare names; only ``params.order`` or a quoted ``"order"`` worked."""
    (tmp_path / ".nbtrack").mkdir()
    fit = "%%track fit -m s\ns = order * (2 if group == 'b' else 1)"
    _notebook(
        tmp_path / "nb.ipynb", [(LOAD, []), ("order = 1\ngroup = 'a'", ["parameters"]), (fit, [])]
    )
    done = run_cli(
        "sweep", "nb.ipynb", "-p", "order", "1", "2", "-p", "group", "a", "b", "-j", "2",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    def where(condition: str, kind: str = "notebook") -> list[tuple[object, ...]]:
        done = run_cli("ls", "--kind", kind, "--where", condition, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        runs = json.loads(done.stdout)["runs"]
        return sorted(
            (r["params"]["order"], r["params"]["group"], r["metrics"].get("s")) for r in runs
        )

    assert where("order > 1 and group = 'b'") == [(2, "b", None)]
    assert where("order = 1 OR group = 'a'", "cell") == [(1, "a", 1), (1, "b", 2), (2, "a", 2)]
    assert where("s >= 2 and order < 2", "cell") == [(1, "b", 2)]
    # a filter that is wrong stays an error naming the filter as written
    done = run_cli("ls", "--where", "order >", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert "bad filter 'order >'" in done.stderr
