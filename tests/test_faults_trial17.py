"""Faults of the seventeenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (a kernel logging keys with control characters or a
megabyte long, ...) and then asks what a user would ask: does the cell's summary stay
readable, is every run still there, whole.
"""

from __future__ import annotations

import json

from conftest import run_cli
from factory import record_run


def test_a_key_with_control_characters_or_a_megabyte_long_is_escaped_and_cut_under_the_cell(
    kernel, project_dir
) -> None:
    # Given: a cell logging a parameter and a metric whose keys carry a screen-clearing
    # escape and a carriage return, and a metric whose key is a megabyte long
    code = (
        "%%track\n"
        "nbtrack.log_param('p\\x1b[2J\\r', 'v')\n"
        "nbtrack.log_metric('m\\x1b]0;title\\x07', 1)\n"
        "nbtrack.log_metric('M' * 1_000_000, 2.0)\n"
        "nbtrack.log_param('P' * 1_000_000, 3)\n"
    )

    # When: it runs, twice (the second summary lists what changed)
    kernel.ok(code, cell_id="c1")
    reply = kernel.ok(code.replace("2.0", "4.0"), cell_id="c1")

    # Then: the summary under the cell shows the keys escaped and cut; before, the raw
    # escape cleared a console's screen, the carriage return wrote over the line in
    # Jupyter, and the two keys put 2 MB into the notebook's output
    text = reply.text
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text, repr(text[:500])
    assert "p\\x1b[2J\\r=" in text and "m\\x1b]0;title\\x07=" in text
    assert len(text) < 5_000, len(text)
    assert "metric MMMM" in text and "…: 2 → 4" in text

    # And: the store keeps every key whole
    out = run_cli("ls", "--json", cwd=project_dir)
    runs = json.loads(out.stdout)["runs"]
    assert len(runs) == 2
    assert runs[0]["metrics"]["M" * 1_000_000] == 4.0
    assert runs[0]["params"]["P" * 1_000_000] == 3
    assert runs[0]["params"]["p\x1b[2J\r"] == "v"


def test_checkout_force_with_a_folder_where_a_data_file_was_does_not_tell_to_use_force(
    project_dir,
) -> None:
    # Given: a run that read data.csv, and since then a folder of that name in its place
    (project_dir / "data.csv").write_text("a\n1\n")
    record_run(project_dir, "train", inputs=[project_dir / "data.csv"])
    (project_dir / "data.csv").unlink()
    (project_dir / "data.csv").mkdir()
    (project_dir / "data.csv" / "part-0").write_text("mine")

    # When: the user checks the run's files out, and then again with --force
    plain = run_cli("checkout", "last", cwd=project_dir)
    forced = run_cli("checkout", "last", "--force", cwd=project_dir)

    # Then: both refuse to replace the folder, in one line each; before, the --force
    # one still ended "--force overwrites the modified ones", which it had not done
    for out in (plain, forced):
        assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, out.stderr
        assert "a folder is in the way" in out.stdout
    assert "--force overwrites" in plain.stderr
    assert "--force" not in forced.stderr and "move or remove the folder" in forced.stderr
    assert (project_dir / "data.csv" / "part-0").read_text() == "mine"
