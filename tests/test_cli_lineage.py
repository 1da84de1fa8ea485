"""``nbtrack lineage``: a run's upstream and downstream on the command line, from a real kernel."""

from __future__ import annotations

import json

from conftest import run_cli


def _chain(kernel, project_dir) -> dict[str, str]:
    """prepare writes clean.csv; train reads it, keeps a kernel value and writes model.txt;
    score reads model.txt. Returns the run ids by name."""
    kernel.ok("open('raw.csv', 'w').write('a\\n1\\n2\\n')")
    kernel.ok(
        "%%track prepare\nrows = open('raw.csv').read().split()[1:]\n"
        "open('clean.csv', 'w').write('a\\n' + '\\n'.join(rows))"
    )
    kernel.ok(
        "%%track train\nlines = open('clean.csv').read().split()\n"
        "weights = [len(lines)]\nopen('model.txt', 'w').write(str(weights))"
    )
    kernel.ok("%%track report\nsummary = weights[0] * 2")
    kernel.ok("%%track score\nprint(open('model.txt').read())")
    page = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)
    ids = {r["name"]: r["run_id"] for r in page["runs"]}
    assert {"prepare", "train", "report", "score"} <= set(ids)
    return ids


def test_lineage_names_who_wrote_what_a_run_read_and_who_read_what_it_wrote(
    kernel, project_dir
) -> None:
    ids = _chain(kernel, project_dir)

    done = run_cli("lineage", ids["train"][:8], cwd=project_dir)

    assert done.returncode == 0, done.stderr
    text = done.stdout
    upstream, _, downstream = text.partition("wrote (-> the runs that read it):")
    # upstream: clean.csv came from prepare, which read raw.csv that no run wrote
    assert "clean.csv @" in upstream and f"<- prepare {ids['prepare'][:8]}" in upstream
    assert "raw.csv @" in upstream and "(no tracked run wrote these bytes)" in upstream
    # downstream: model.txt was read by score; the kernel value went to report
    assert "model.txt @" in downstream and f"-> score {ids['score'][:8]}" in downstream
    assert f"value weights -> report {ids['report'][:8]}" in downstream


def test_lineage_depth_one_stops_at_the_neighbours_and_json_is_the_rest_answer(
    kernel, project_dir
) -> None:
    ids = _chain(kernel, project_dir)

    near = run_cli("lineage", ids["score"], "--depth", "1", cwd=project_dir)
    far = run_cli("lineage", ids["score"], "--depth", "3", cwd=project_dir)
    as_json = run_cli("lineage", ids["score"], "--json", cwd=project_dir)

    assert near.returncode == far.returncode == as_json.returncode == 0
    assert f"<- train {ids['train'][:8]}" in near.stdout and "prepare" not in near.stdout
    assert f"<- prepare {ids['prepare'][:8]}" in far.stdout
    lin = json.loads(as_json.stdout)
    assert lin["run_id"] == ids["score"] and {r["run_id"] for r in lin["runs"]} >= {
        ids["train"],
        ids["score"],
    }


def test_lineage_refuses_a_bad_depth_fanout_or_run_in_one_line(kernel, project_dir) -> None:
    _chain(kernel, project_dir)
    for args, code, words in [
        (["last", "--depth", "9"], 2, "lineage depth must be between 1 and 5"),
        (["last", "--fanout", "0"], 2, "must be at least 1"),
        (["nosuchrun"], 1, "nosuchrun"),
    ]:
        done = run_cli("lineage", *args, cwd=project_dir)
        assert done.returncode == code, done.stderr
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
