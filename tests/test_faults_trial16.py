"""Faults of the sixteenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (another program holding the store open, an
environment variable set to "for ever", a kernel told of a notebook that is not there)
and then asks what a user would ask: does the command end and say why in one line, is
every run still there, and in the store it belongs to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from factory import record_run


@pytest.mark.parametrize("value", ["inf", "1e400", "1e12"])
def test_a_query_timeout_of_for_ever_lists_and_queries_without_a_traceback(
    project_dir: Path, value: str
) -> None:
    # Given: a store with a run, and a user who wants queries never cut short
    run_id = record_run(project_dir, "one", metrics={"acc": 0.5})
    env = kernel_env(NBTRACK_QUERY_TIMEOUT=value)

    # When: they list runs and query the store
    listing = run_cli("ls", cwd=project_dir, env=env)
    query = run_cli("sql", "SELECT count(*) AS n FROM runs", cwd=project_dir, env=env)

    # Then: both work, quietly; before, a timer thread died with a 15-line
    # `OverflowError: timestamp out of range for platform time_t`
    assert listing.returncode == 0 and listing.stderr == "", listing.stderr
    assert run_id[:8] in listing.stdout
    assert query.returncode == 0 and query.stderr == "", query.stderr
