"""What a run records about the kernel's environment (capture.py)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from nbtrack import capture


def test_the_environment_lists_every_package_as_its_metadata_says() -> None:
    # given this interpreter's installed distributions, read by importlib's full parser
    expected = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            expected[name.lower().replace("_", "-")] = dist.version
    # when nbtrack lists the environment (reading only the metadata's header block)
    env = capture._list_environment()
    # then every package and version is the same
    assert env.packages == expected
    assert len(env.env_id) == 16


def test_a_package_is_named_by_its_header_not_by_its_description(tmp_path: Path) -> None:
    # given a distribution whose long description quotes other metadata fields
    info = tmp_path / "my_pkg-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: My_Pkg\nVersion: 2.0\nSummary: s\n\n"
        "Name: not-this\nVersion: 9.9\n"
    )
    egg = tmp_path / "old-1.0-py3.11.egg-info"
    egg.write_text("Metadata-Version: 1.0\r\nName: old\r\nVersion: 1.0\r\n")
    # when nbtrack reads them, then the header's fields are what it records
    assert capture._name_and_version(metadata.PathDistribution(info)) == ("My_Pkg", "2.0")
    assert capture._name_and_version(metadata.PathDistribution(egg)) == ("old", "1.0")


def test_a_cell_run_again_gets_its_literals_afresh() -> None:
    # given a cell's literals read once, and the values then changed by whoever got them
    source = "layers = [64, 32]\nlr = 0.01\nname = 'svc'\nn = len(x)"
    first = capture.literal_assignments(source)
    first["layers"].append(16)
    first["lr"] = 1.0
    # when the same cell runs again
    again = capture.literal_assignments(source)
    # then its literals are what its code says, computed values left out
    assert again == {"layers": [64, 32], "lr": 0.01, "name": "svc"}
