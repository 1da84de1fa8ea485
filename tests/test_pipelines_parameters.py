"""Parameter values as typed on the command line, grids, samples and the ``parameters`` cell."""

from __future__ import annotations

import math

import nbformat
import pytest

from nbtrack.exceptions import UsageError
from nbtrack.pipelines.parameters import (
    NotebookParameters,
    grid,
    inspect_parameters,
    parse_assignments,
    parse_axes,
    parse_value,
    sample,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("True", True),
        ("false", False),
        ("None", None),
        ("null", None),
        ("3", 3),
        ("-2", -2),
        ("1_000", 1000),
        ("0.1", 0.1),
        ("1e-3", 0.001),
        ("inf", math.inf),
        ("adam", "adam"),
        ("a-b c", "a-b c"),
        ('"3"', "3"),
        ("'a b'", "a b"),
        ("[64, 32]", [64, 32]),
        ('{"a": 1}', {"a": 1}),
        ("(1, 2)", (1, 2)),
    ],
)
def test_values_parse_like_papermill_plus_literals(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_nan_is_a_float_value():
    assert math.isnan(parse_value("nan"))


@pytest.mark.parametrize("text", ["[0.1", "'abc", '{"a": }', "(1,"])
def test_a_value_that_starts_like_a_literal_but_is_not_one_is_a_usage_error(text):
    with pytest.raises(UsageError, match="malformed parameter value"):
        parse_value(text)


def test_names_must_be_identifiers_and_axes_need_values():
    with pytest.raises(UsageError, match="malformed parameter name '1lr'"):
        parse_axes([["1lr", "0.1"]])
    with pytest.raises(UsageError, match="malformed parameter name 'class'"):
        parse_assignments([["class", "1"]])
    with pytest.raises(UsageError, match="-p lr needs at least one value"):
        parse_axes([["lr"]])
    with pytest.raises(UsageError, match="given twice"):
        parse_axes([["lr", "1"], ["lr", "2"]])


def test_overrides_and_axes_parse_every_value():
    assert parse_assignments([["lr", "0.5"], ["opt", "sgd"], ["lr", "0.2"]]) == {
        "lr": 0.2,
        "opt": "sgd",
    }
    assert parse_axes([["lr", "0.1", "0.01"], ["depth", "3"]]) == {"lr": [0.1, 0.01], "depth": [3]}


def test_the_grid_varies_the_last_axis_fastest():
    assert grid({"lr": [0.1, 0.01], "depth": [3, 5]}) == [
        {"lr": 0.1, "depth": 3},
        {"lr": 0.1, "depth": 5},
        {"lr": 0.01, "depth": 3},
        {"lr": 0.01, "depth": 5},
    ]


def test_random_samples_are_distinct_in_grid_order_and_repeat_with_the_seed():
    points = grid({"a": list(range(6)), "b": list(range(5))})
    first = sample(points, 7, seed=42)
    assert first == sample(points, 7, seed=42)
    assert first != sample(points, 7, seed=43)
    assert len({(p["a"], p["b"]) for p in first}) == 7
    assert first == sorted(first, key=points.index)
    assert sample(points, 100, seed=1) == points
    with pytest.raises(UsageError):
        sample(points, 0, seed=None)


def _notebook(*cells: tuple[str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def test_the_parameters_cell_declares_names_and_unknown_ones_are_warned():
    declared = inspect_parameters(_notebook(("x = 1", []), ("lr = 0.1\ndepth = 3", ["parameters"])))
    assert declared == NotebookParameters(True, ("lr", "depth"), {"lr": "0.1", "depth": "3"})
    assert declared.warnings_for(["lr"], "nb.ipynb") == []
    [warning] = declared.warnings_for(["lr", "epochs"], "nb.ipynb")
    assert "'epochs' is not assigned in the 'parameters' cell" in warning
    assert "lr, depth" in warning


def test_a_notebook_without_a_parameters_cell_gets_papermills_behaviour_stated():
    declared = inspect_parameters(_notebook(("x = 1", [])))
    assert declared.has_parameters_cell is False
    assert declared.warnings_for([], "nb.ipynb") == []
    [warning] = declared.warnings_for(["x"], "nb.ipynb")
    assert "no cell tagged 'parameters'" in warning
    assert "injects the parameters in a new cell at the top" in warning
    assert "later assignment of x in the notebook overrides" in warning


def test_the_parameters_cell_is_read_as_papermill_reads_it_magics_and_comments_included():
    declared = inspect_parameters(
        _notebook(
            (
                "%matplotlib inline\nlr = 0.1  # the rate\nname: str = 'x'\nif lr:\n    pass",
                ["parameters"],
            )
        )
    )
    assert declared.names == ("lr", "name")
    assert declared.defaults == {"lr": "0.1", "name": "'x'"}
    tupled = inspect_parameters(_notebook(("a, b = 1, 2\nc: int = 3\nd == 4", ["parameters"])))
    assert tupled.names == ("a", "b", "c")
