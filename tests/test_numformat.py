"""The one number format of the CLI, the summary and the panel, against the shared fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbtrack.numformat import format_number

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "number_format.json").read_text())


@pytest.mark.parametrize(("value", "expected"), FIXTURE["cases"])
def test_every_case_of_the_shared_fixture_prints_as_the_panel_prints_it(value, expected):
    # given a number from the fixture the panel's tests read too
    # when it is formatted
    # then the text is the one the fixture names
    assert format_number(value) == expected


def test_non_finite_values_and_negative_scientific_values():
    assert [format_number(v) for v in (float("nan"), float("inf"), float("-inf"))] == [
        "NaN",
        "inf",
        "-inf",
    ]
    assert format_number(-1234567.89) == "-1.23457e6"
    assert format_number(-0.0) == "0"
    assert format_number(10**30) == str(10**30)  # an integer stays whole, however large
