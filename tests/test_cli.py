"""The ``nbtrack`` command as a user types it: tables, JSON, CSV, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import kernel_env, run_cli
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter


@pytest.fixture
def two_runs(project_dir: Path) -> list[str]:
    project = resolve_project(project_dir)
    ids = []
    for lr, acc, src in [
        (0.1, 0.8, "lr = 0.1\nfit()"),
        (0.01, float("nan"), "lr = 0.01\nfit(more=True)"),
    ]:
        w = RunWriter.start(
            project, name="train", params={"lr": lr, "opt": "adam"}, param_source="auto", source=src
        )
        for i in range(3):
            w.log_metric("loss", 1.0 / (i + 1 + lr))
        w.log_metric("acc", acc)
        w.finish()
        w.wait()
        ids.append(w.run_id)
    return ids


def test_ls_prints_a_table_newest_first_with_params_and_metrics(project_dir, two_runs):
    r = run_cli("ls", cwd=project_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # the params and metrics that differ between the runs come first, then the run's
    # other fields, then what every run shares (opt)
    assert lines[0].split() == [
        "run",
        "name",
        "status",
        "lr",
        "acc",
        "loss",
        "started",
        "duration",
        "notebook",
        "cell",
        "opt",
    ]
    assert lines[1].startswith(two_runs[1][:8]) and "NaN" in lines[1]
    assert lines[2].startswith(two_runs[0][:8]) and "0.8" in lines[2]


def test_ls_json_csv_where_sort_and_limit(project_dir, two_runs):
    page = json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)
    assert page["total"] == 2 and page["runs"][0]["metrics"]["acc"] == "NaN"
    rows = list(
        csv.DictReader(
            io.StringIO(
                run_cli("ls", "--csv", "--sort", "lr", "--ascending", cwd=project_dir).stdout
            )
        )
    )
    assert [float(r["params.lr"]) for r in rows] == [0.01, 0.1]  # CSV: always prefixed
    only = json.loads(run_cli("ls", "--json", "--where", "lr > 0.05", cwd=project_dir).stdout)
    assert [r["run_id"] for r in only["runs"]] == [two_runs[0]]
    one = json.loads(run_cli("ls", "--json", "--limit", "1", cwd=project_dir).stdout)
    assert len(one["runs"]) == 1 and one["total"] == 2


def test_show_and_diff_and_sql(project_dir, two_runs):
    shown = run_cli("show", two_runs[0][:6], cwd=project_dir)
    assert two_runs[0] in shown.stdout and "param lr" in shown.stdout and "fit()" in shown.stdout
    as_json = json.loads(run_cli("show", "last", "--json", cwd=project_dir).stdout)
    assert as_json["run_id"] == two_runs[1] and as_json["params"] == {"lr": 0.01, "opt": "adam"}

    d = run_cli("diff", two_runs[0], two_runs[1], cwd=project_dir)
    assert d.returncode == 0
    assert "lr" in d.stdout and "changed" in d.stdout and "opt" not in d.stdout
    # a changed number shows its delta in the table, as in --json
    [lr_row] = [line for line in d.stdout.splitlines() if line.split()[:2] == ["param", "lr"]]
    assert lr_row.split()[-1] == "-0.09"
    assert "-fit()" in d.stdout and "+fit(more=True)" in d.stdout
    everything = json.loads(
        run_cli("diff", two_runs[0], two_runs[1], "--all", "--json", cwd=project_dir).stdout
    )
    assert {c["key"]: c["kind"] for c in everything["params"]} == {"lr": "changed", "opt": "same"}
    loss = next(c for c in everything["metrics"] if c["key"] == "loss")
    assert loss["delta"] == pytest.approx(1 / 3.01 - 1 / 3.1)

    same = run_cli("diff", two_runs[0], two_runs[0], cwd=project_dir)
    assert "no differences" in same.stdout

    q = run_cli(
        "sql",
        "SELECT key, count(*) AS n FROM metrics GROUP BY key ORDER BY key",
        "--json",
        cwd=project_dir,
    )
    assert json.loads(q.stdout) == [{"key": "acc", "n": 2}, {"key": "loss", "n": 6}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "deadbeef"], "no run matches"),
        (["show", "zz"], "no run 'zz'"),
        (["diff", "last"], "required: b"),
        (["ls", "--limit", "many"], "not a whole number"),
        (["ls", "--where", "nosuchcol = 1"], "bad filter"),
        (["ls", "--sort", "nope"], "cannot sort by"),
        (["ls", "--kind", "weird"], "invalid choice"),
        (["sql", "SELEC 1"], "SQL error"),
        (["frobnicate"], "invalid choice"),
        (["ls", "--columns", "nosuch*"], "matches no column"),
        (["ls", "--parent", "abcdef123456"], "no run or sweep matches"),
        ([], "required"),
        # a byte that is not UTF-8 (a Latin-1 terminal): tracebacks, or the store blamed
        (["ls", "--where", "name = '\udcff'"], "is not UTF-8 text"),
        (["sql", "SELECT '\udcff'"], "is not UTF-8 text"),
        (["check", "acc\udcff > 1"], "is not UTF-8 text"),
    ],
)
def test_bad_arguments_give_one_line_and_a_non_zero_exit(project_dir, two_runs, args, message):
    r = run_cli(*args, cwd=project_dir)
    assert r.returncode != 0
    assert r.stdout == ""
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nbtrack: error:") and message in err[0], r.stderr
    assert "error: nbtrack" not in err[0]  # one prefix, not two
    # a bad command line is a usage error (2); a run that is not there, an error (1)
    assert r.returncode == (1 if message.startswith("no run") else 2)


def test_the_store_can_be_named_explicitly(tmp_path, two_runs, project_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run_cli("--store", str(project_dir / ".nbtrack"), "ls", "--json", cwd=elsewhere)
    assert json.loads(r.stdout)["total"] == 2
    env = kernel_env(NBTRACK_STORE=str(project_dir / ".nbtrack" / "runs.duckdb"))
    r = run_cli("ls", "--json", cwd=elsewhere, env=env)
    assert json.loads(r.stdout)["total"] == 2


def test_store_flag_names_the_store_for_one_call_only(
    tmp_path_factory, two_runs, project_dir, monkeypatch, capsys
):
    from nbtrack.cli import main

    # given the runs in project_dir's store, and a caller working in an unrelated folder
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))

    # when one call names the store and the next does not
    assert main(["--store", str(project_dir), "ls", "--json"]) == 0
    named = json.loads(capsys.readouterr().out)
    assert main(["ls", "--json"]) == 0
    unnamed = json.loads(capsys.readouterr().out)

    # then only the first one read that store: --store set nothing for the process
    assert named["total"] == 2
    assert unnamed["total"] == 0


def test_diff_shows_what_changed_inside_a_csv(project_dir):
    from nbtrack.client import Client
    from nbtrack.hashing import StatCache
    from nbtrack.versioning import version_path

    project = resolve_project(project_dir)
    client = Client(project)
    ids = []
    for rows in ("a,b\n1,x\n2,y\n", "a,b,c\n1,x,0.5\n2,y,0.7\n3,z,\n"):
        (project_dir / "t.csv").write_text(rows)
        v = version_path(project, "t.csv", "input", cache=client.cache, stat_cache=StatCache())
        w = RunWriter.start(project, name="prep")
        w.log_data([v])
        w.finish()
        w.wait()
        ids.append(w.run_id)
    out = run_cli("diff", *ids, cwd=project_dir).stdout
    assert "t.csv" in out and "changed" in out
    assert "rows 2 → 3" in out.replace("->", "→") and "c" in out


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM runs",
        "DROP TABLE runs",
        "SELECT 1; DELETE FROM params",
        "CHECKPOINT; DROP TABLE runs",
        "ATTACH 'x.db'",
    ],
)
def test_sql_is_read_only_unless_asked_to_write(project_dir, two_runs, statement):
    before = (project_dir / ".nbtrack" / "runs.duckdb").read_bytes()
    r = run_cli("sql", statement, cwd=project_dir)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "--write" in r.stderr, r.stderr
    assert (project_dir / ".nbtrack" / "runs.duckdb").read_bytes() == before
    assert json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["total"] == 2


def test_sql_write_backs_the_store_up_first_and_says_where(project_dir, two_runs):
    r = run_cli(
        "sql", "--write", f"DELETE FROM runs WHERE run_id = '{two_runs[0]}'", cwd=project_dir
    )
    assert r.returncode == 0, r.stderr
    [line] = r.stderr.splitlines()
    backup = Path(line.split("backed up the store to ")[1].split(" before writing")[0])
    assert backup.parent == project_dir / ".nbtrack" and backup.is_file()
    assert json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["total"] == 1
    # The backup is the store as it was: copied back, it lists both runs.
    restored = project_dir / "restored" / "runs.duckdb"
    restored.parent.mkdir()
    restored.write_bytes(backup.read_bytes())
    listed = run_cli("ls", "--json", cwd=project_dir, env=kernel_env(NBTRACK_STORE=str(restored)))
    assert json.loads(listed.stdout)["total"] == 2


def test_sql_never_installs_or_loads_an_extension(project_dir, two_runs):
    r = run_cli("sql", "--write", "INSTALL sqlite", cwd=project_dir)
    assert r.returncode == 2 and "extensions is not allowed" in r.stderr


def test_each_verb_builds_only_its_module_and_the_table_of_verbs_is_complete():
    import argparse
    import importlib

    from nbtrack import cli

    # given every verb module registering on a parser of its own
    registered = {}
    for name in cli.MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"nbtrack.cli.{name}").register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    # then the table the command line picks a module by is exactly that
    assert registered == cli.VERBS
    # and a command line naming a verb (after --store) builds that verb alone
    assert cli.command_of(["--store", "x", "models", "ls"]) == "models"
    assert cli.command_of(["--store=x", "drift", "p"]) == "drift"
    assert cli.command_of(["--help"]) is None
    parser = cli.build_parser("models")
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(verbs.choices) == {"models", "register"}


def test_help_and_an_unknown_verb_still_list_every_verb(capsys):
    from nbtrack.cli import main

    # an unknown verb: the error names the valid ones, from every module
    assert main(["modles", "ls"]) == 2
    err = capsys.readouterr().err
    assert "modles" in err and "models" in err and "rerun" in err and "drift" in err


def test_columns_chooses_by_name_and_glob_in_the_order_given(project_dir, two_runs):
    # given two runs with params lr, opt and metrics acc, loss
    # when a user names the columns, a glob among them
    r = run_cli("ls", "--columns", "run,metrics.*,params.l*", cwd=project_dir)
    # then exactly those columns come, in that order (a glob in name order)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["run", "acc", "loss", "lr"]
    # and system metrics, left out by default, are there when asked for
    from factory import record_run

    record_run(project_dir, "sys", metrics={"system/cpu_percent": 12.5})
    system = run_cli("ls", "--columns", "run,metrics.system/*", cwd=project_dir)
    assert "system/" in system.stdout.splitlines()[0]
    assert "system/" not in run_cli("ls", cwd=project_dir).stdout


def test_control_characters_in_recorded_text_are_shown_escaped(project_dir):
    # given a run (from a hostile bundle, say) whose texts hold terminal escapes and breaks
    from factory import record_run

    record_run(
        project_dir,
        "evil\x1b[2J\nsecond",
        params={"p\x1b]0;title\x07": "a\rb"},
        tags={"t": "\x9b31m"},
    )
    # when it is listed and shown, then no control character reaches the terminal (it
    # cleared the screen, set the window title, broke the table's rows)
    for args in (["ls"], ["show", "last"]):
        out = run_cli(*args, cwd=project_dir).stdout
        assert not [c for c in out if (ord(c) < 32 and c != "\n") or 127 <= ord(c) < 160], out
    listed = run_cli("ls", cwd=project_dir).stdout.splitlines()
    assert len(listed) == 2 and "evil\\x1b[2J\\nsecond" in listed[1]


def test_a_param_and_a_metric_of_the_same_name_get_prefixed_columns(project_dir):
    # given runs whose parameter and metric share the name `score`
    from factory import record_run

    for value in (1, 2):
        record_run(project_dir, "t", params={"score": value, "k": 3}, metrics={"score": value / 4})
    # when they are listed
    header = run_cli("ls", cwd=project_dir).stdout.splitlines()[0].split()
    # then the two are told apart; a name no metric has stays bare
    assert "params.score" in header and "metrics.score" in header and "k" in header
    assert "score" not in header


def test_the_table_fits_the_terminal_and_says_what_it_left_out(project_dir):
    # given runs with long names and many parameters
    from factory import record_run

    for i in range(3):
        record_run(
            project_dir,
            "a-rather-long-run-name-" * 3 + str(i),
            params={f"parameter_{k}": i * k + 0.123456789 for k in range(12)},
            metrics={"accuracy": 0.9 + i / 100},
            notebook_path="notebooks/a/deeply/nested/folder/train.ipynb",
        )
    for width in (60, 100, 200):
        # when the terminal is `width` characters wide
        r = run_cli("ls", cwd=project_dir, env={**kernel_env(), "COLUMNS": str(width)})
        lines = r.stdout.splitlines()
        # then no line is wider, cut text ends in an ellipsis, and stderr names the
        # columns that did not fit
        assert r.returncode == 0 and len(lines) == 4
        assert max(len(line) for line in lines) <= width, lines
        assert "…" in r.stdout
        assert lines[0].startswith("run ") and "a-rather-long-run-name-" * 3 not in r.stdout
        if width == 60:  # 19 columns cannot all fit, even cut to 10 characters
            assert "more column(s) did not fit the terminal" in r.stderr
            assert "--columns" in r.stderr
    # and a pipe (no terminal, no COLUMNS) gets every character
    piped = {k: v for k, v in kernel_env().items() if k != "COLUMNS"}
    full = run_cli("ls", cwd=project_dir, env=piped).stdout
    assert "a-rather-long-run-name-" * 3 in full and "notebooks/a/deeply" in full


def test_ls_json_is_the_same_document_as_the_runs_it_lists(project_dir):
    # given runs holding every kind of value a listing carries: NaN and infinite
    # metrics and params, nested and odd string params, data versions, tags, named inputs
    from factory import record_run
    from nbtrack.client import Client
    from nbtrack.models import DataVersion, NamedInput, RunQuery

    (project_dir / "in.csv").write_text("a,b\n1,2\n")
    parent = record_run(project_dir, "nb", kind="notebook", params={"lr": 0.1})
    record_run(
        project_dir,
        "odd",
        params={
            "nan": float("nan"),
            "inf": float("-inf"),
            "nested": {"a": [1, 2.5, None, "NaN"], "b": {"c": True}},
            "quote": 'say "Infinity" \\ now\n',
            "unicode": "α→β",
            "big": 10**30,
        },
        metrics={"m": float("nan"), "p": float("inf"), "q": [1.0, -2.5e-7]},
        inputs=["in.csv"],
        data=[DataVersion("out/x.bin", "output", "xxh3:00", 12, mtime=1.5)],
        named_inputs=[NamedInput("df", "DataFrame", "upstream", "3×4", "xxh64:1", stale=True)],
        tags={"team": "a", "nbtrack.warning.git": "no git"},
        parent_id=parent,
        notebook_path="n.ipynb",
        cell_id="c1",
        source="x = 1",
    )
    record_run(project_dir, "plain", params={"lr": 0.01}, metrics={"acc": 0.5})
    client = Client.open(project_dir)
    for args, query in (
        ([], RunQuery()),
        (["--kind", "all"], RunQuery(kind=None)),
        (["--where", "lr > 0.001", "--kind", "all"], RunQuery(where="lr > 0.001", kind=None)),
        (["--parent", parent[:6]], RunQuery(parent_id=parent)),
        (["--sort", "metrics.acc", "--limit", "1"], RunQuery(sort="metrics.acc", limit=1)),
    ):
        # when `ls --json` lists them
        r = run_cli("ls", "--json", *args, cwd=project_dir)
        # then the document is the listing's, value for value, and strict JSON
        assert r.returncode == 0, r.stderr
        expected = json.loads(json.dumps(client.list_runs(query).to_dict(), allow_nan=False))
        assert json.loads(r.stdout, parse_constant=_refuse) == expected, args


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_ls_json_of_more_runs_than_a_chunk_is_one_document_in_order(project_dir):
    # given 1,234 runs (the page is written 500 runs at a time)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        from bench_server import build_store
    finally:
        sys.path.pop(0)
    from nbtrack.client import Client
    from nbtrack.models import RunQuery

    build_store(project_dir, 1_234)
    # when `ls --json` lists 1,001 of them, then all of them
    for limit, shown in ((1_001, 1_001), (5_000, 1_234)):
        r = run_cli("ls", "--json", "--limit", str(limit), cwd=project_dir)
        assert r.returncode == 0, r.stderr
        page = json.loads(r.stdout)
        # then it is one strict JSON document with every run once, newest first, as listed
        listed = Client.open(project_dir).list_runs(RunQuery(limit=limit))
        assert page["total"] == 1_234 and len(page["runs"]) == shown
        assert [run["run_id"] for run in page["runs"]] == [run.run_id for run in listed.runs]
        assert page["runs"][-1]["params"] == listed.runs[-1].params


def test_show_of_a_notebook_run_lists_its_cell_runs_and_their_metrics(project_dir):
    """Found by a new user's trial: the sweep table prints notebook-run ids, and `show`
    of one listed only its parameters, no result and no way to its cell runs."""
    from factory import record_run

    parent = record_run(project_dir, "nb", kind="notebook", params={"C": 0.1})
    record_run(project_dir, "fit", metrics={"score": 0.9}, parent_id=parent)
    record_run(project_dir, "evaluate", metrics={"auc": 0.75}, parent_id=parent)
    shown = run_cli("show", parent[:8], cwd=project_dir)
    assert shown.returncode == 0, shown.stderr
    tail = shown.stdout[shown.stdout.index(f"cell runs (nbtrack ls --parent {parent[:8]}):") :]
    assert tail.index("fit") < tail.index("evaluate")
    assert "score=0.9" in tail and "auc=0.75" in tail
    listed = run_cli("ls", "--parent", parent[:8], cwd=project_dir).stdout
    assert "fit" in listed and "evaluate" in listed


def test_diff_leaves_system_metrics_to_all_and_says_how_many(project_dir):
    """Found by a new user's trial: eight system/* rows (CPU, memory) buried the diff the
    README shows."""
    from factory import record_run

    a = record_run(project_dir, "t", metrics={"acc": 0.9, "system/cpu_percent": 50.0,
                                                "system/memory_mb": 100.0})  # fmt: skip
    b = record_run(project_dir, "t", metrics={"acc": 0.8, "system/cpu_percent": 70.0,
                                                "system/memory_mb": 120.0})  # fmt: skip
    short = run_cli("diff", a, b, cwd=project_dir).stdout
    assert "acc" in short and "system/" not in short
    assert "(2 system metrics (CPU, memory) differ too: --all shows them)" in short
    full = run_cli("diff", a, b, "--all", cwd=project_dir).stdout
    assert "system/cpu_percent" in full and "--all shows them" not in full


def test_show_and_diff_tell_a_list_from_its_text_and_show_a_none_parameter(project_dir):
    """Found by a new user's fifth trial: papermill's ``-p layers '[16, 4]'`` injects the
    text, not the list, and the cell broke on ``layers[0]``; ``nbtrack diff`` of that run
    and one given the list (``-y``) read ``param layers changed [16, 4] [16, 4]``, and
    ``nbtrack show`` left out ``max_depth = None`` (sklearn's "no limit") altogether.
    A text that reads as another type is shown quoted, a None parameter as None."""
    from test_lineage import _cell_runs, _papermill
    from test_magics import _settle

    cells = [
        ("%load_ext nbtrack", []),
        ("layers = [8, 4]\nmax_depth = None\nname = 'base'", ["parameters"]),
        ("%%track fit\nshape = (layers, max_depth, name)", []),
    ]
    _papermill(project_dir, cells, "-y", "layers: [16, 4]")
    _papermill(project_dir, cells, "-p", "layers", "[16, 4]")
    a, b = _cell_runs(_settle(project_dir), "fit")
    assert (a.params["layers"], b.params["layers"]) == ([16, 4], "[16, 4]")
    diffed = run_cli("diff", a.run_id, b.run_id, cwd=project_dir).stdout
    row = next(line for line in diffed.splitlines() if line.startswith("param"))
    assert row.split() == ["param", "layers", "changed", "[16,", "4]", '"[16,', '4]"'], diffed
    shown = run_cli("show", b.run_id, cwd=project_dir).stdout.splitlines()
    params = [line.split() for line in shown if line.startswith("param ")]
    assert params == [  # each value with where it came from
        ["param", "layers", '"[16,', '4]"', "(papermill)"],
        ["param", "max_depth", "None", "(default)"],
        ["param", "name", "base", "(default)"],
    ], shown
