"""Faults of the eighteenth trial: nothing lost, nothing stalls, one-line errors.

Each test makes the fault for real (a named pipe where the store file was, an empty
``--store`` or ``--run`` from a shell variable never set, ...) and then asks what a user
would ask: does the command end, with one line that says what to do, is every run still
there, whole.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import kernel_env, run_cli
from factory import record_run


def test_a_named_pipe_where_the_store_file_was_is_one_line_not_a_hang(project_dir) -> None:
    # Given: a project with a run, and its store file replaced by a named pipe (a
    # careless `mkfifo`, a restore script that streams into the old path)
    record_run(project_dir, "train", metrics={"acc": 0.9})
    db = project_dir / ".nbtrack" / "runs.duckdb"
    os.replace(db, project_dir / "runs.duckdb.saved")
    os.mkfifo(db)

    # When: the user lists the runs and asks the doctor
    started = time.monotonic()
    listed = run_cli("ls", cwd=project_dir)
    doctor = run_cli("doctor", cwd=project_dir)

    # Then: both end at once, with a line naming the pipe; before, both waited for ever
    # (opening the pipe to read its first bytes waited for a writer)
    assert time.monotonic() - started < 30
    assert listed.returncode == 1 and len(listed.stderr.splitlines()) == 1, listed.stderr
    assert "is a named pipe (FIFO), not an nbtrack store" in listed.stderr
    assert "move it away" in listed.stderr
    assert doctor.returncode == 1 and "named pipe" in doctor.stdout

    # And: the pipe is left as it was; the store put back, the run is there
    assert db.is_fifo()
    db.unlink()
    os.replace(project_dir / "runs.duckdb.saved", db)
    out = run_cli("ls", "--json", cwd=project_dir)
    assert [r["name"] for r in json.loads(out.stdout)["runs"]] == ["train"]


def test_an_empty_store_path_is_refused_not_a_new_store_in_the_current_folder(
    project_dir,
) -> None:
    # Given: a project with a run, and the user in a subfolder of it
    record_run(project_dir, "train")
    sub = project_dir / "notebooks"
    sub.mkdir()

    # When: a script passes --store "$STORE" with STORE never set
    outs = [run_cli("--store", "", "ls", cwd=sub), run_cli("--store=", "gc", cwd=sub)]

    # Then: one line, exit 2; before, an empty store was made in the subfolder
    # (runs.duckdb, its lock, cache/), `ls` listed no run and `gc` "removed 0 blob(s)"
    for out in outs:
        assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
        assert "--store: an empty path" in out.stderr
    assert list(sub.iterdir()) == []
    assert "train" in run_cli("ls", cwd=sub).stdout


def test_check_with_an_empty_run_is_refused_not_a_gate_on_the_newest_run(project_dir) -> None:
    # Given: a good run, then a newer one
    good = record_run(project_dir, "train", metrics={"acc": 0.95})
    record_run(project_dir, "train", metrics={"acc": 0.97})

    # When: a CI job gates `--run "$RUN_ID"` with RUN_ID empty (its step failed), or
    # compares --against an empty baseline
    empty_run = run_cli("check", "acc >= 0.96", "--run", "", cwd=project_dir)
    empty_base = run_cli(
        "check", "delta(acc) >= 0", "--run", good[:8], "--against", "", cwd=project_dir
    )

    # Then: exit 2, "a run reference is ..."; before, --run "" gated the newest run and
    # passed (exit 0) for a run nobody named
    for out in (empty_run, empty_base):
        assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
        assert "a run reference is an id" in out.stderr
    assert run_cli("check", "acc >= 0.96", "--run", good, cwd=project_dir).returncode == 1


def test_a_kernel_without_a_home_does_not_record_its_history_database_as_an_output(
    kernel_factory, project_dir
) -> None:
    # Given: a kernel started with HOME naming a folder that is not there (a container
    # user without a home), so IPython keeps its history database in a temp folder
    k = kernel_factory(HOME=str(project_dir / "no-such-home"))
    k.ok("%load_ext nbtrack\nimport nbtrack")

    # When: a tracked cell writing one file runs twice
    code = "%%track\nopen('o.txt', 'w').write('a')\n"
    k.ok(code, cell_id="c1")
    reply = k.ok(code, cell_id="c1")

    # Then: the run's one output is o.txt; before, the second run also recorded
    # /tmp/tmpXXXX/profile_default/history.sqlite (IPython wrote the first cell's
    # history there) and said it differed from the first run
    assert "history.sqlite" not in reply.text and "same as the previous run" in reply.text
    out = run_cli("show", "--json", "last", cwd=project_dir)
    assert [d["path"] for d in json.loads(out.stdout)["data"]] == ["o.txt"]


def test_a_console_that_cannot_write_unicode_gets_escapes_not_a_traceback(project_dir) -> None:
    # Given: a run with a parameter named λ, a value with an emoji, a metric précision
    record_run(project_dir, "entraînement", params={"λ": "é😀"}, metrics={"précision": 0.9})
    env = kernel_env(PYTHONIOENCODING="latin-1", LANG="C", LC_ALL="C")

    # When: the user lists and shows it from a latin-1 console (bytes, as it gets them)
    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "nbtrack", *args]
        return subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, timeout=60)

    outs = {args: cli(*args) for args in [("ls",), ("show", "last"), ("ls", "--json")]}

    # Then: each prints, what latin-1 lacks escaped; before, each ended with a
    # UnicodeEncodeError traceback, `ls --json` after half a line of JSON
    for args, out in outs.items():
        assert out.returncode == 0 and out.stderr == b"", (args, out.stderr[-300:])
    table = outs[("ls",)].stdout.decode("latin-1")
    assert "\\u03bb" in table and "é\\U0001f600" in table and "précision" in table
    assert "précision" in outs[("show", "last")].stdout.decode("latin-1")

    # And: the JSON is valid and whole
    run = json.loads(outs[("ls", "--json")].stdout)["runs"][0]
    assert run["params"] == {"λ": "é😀"} and run["name"] == "entraînement"


def test_a_file_name_with_a_newline_is_escaped_under_the_cell_and_in_lineage(
    kernel, project_dir
) -> None:
    # Given: a file whose name holds a newline and a carriage return (a name built
    # from a line read out of a file, its newline kept)
    (project_dir / "in\nput.csv").write_text("a\n1\n")
    code = "%%track\ntext = open('in\\nput.csv').read()\nopen('out\\r.txt', 'w').write(text)\n"

    # When: a cell reads it and writes another, twice (the second after an edit)
    kernel.ok(code, cell_id="c1")
    reply = kernel.ok(code.replace("(text)", "(text + 'x')"), cell_id="c1")
    lineage = run_cli("lineage", "last", cwd=project_dir)

    # Then: the summary under the cell and `nbtrack lineage` show the names escaped,
    # each on its line; before, "in" ended one line and "put.csv" began the next, and
    # the carriage return wrote over the summary's line in a console
    assert "\r" not in reply.text, repr(reply.text)
    assert "data:    in in\\nput.csv, out out\\r.txt" in reply.text
    assert "output out\\r.txt: changed (+1 bytes)" in reply.text
    assert "in\\nput.csv @" in lineage.stdout and "\nput.csv" not in lineage.stdout

    # And: the store keeps the names as they are
    out = run_cli("show", "--json", "last", cwd=project_dir)
    assert {d["path"] for d in json.loads(out.stdout)["data"]} == {"in\nput.csv", "out\r.txt"}


def test_a_project_moved_under_a_kernel_keeps_its_notebook_and_its_previous_run(
    kernel_factory, project_dir
) -> None:
    # Given: a notebook in a project, its kernel started by Jupyter (which names the
    # notebook by its absolute path), and a tracked cell that ran once
    import nbformat

    proj = project_dir / "proj"
    proj.mkdir()
    (proj / ".nbtrack").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), proj / "nb.ipynb")
    k = kernel_factory(proj, JPY_SESSION_NAME=str(proj / "nb.ipynb"))
    k.ok("%load_ext nbtrack\nimport nbtrack")
    k.ok("%%track\nnbtrack.log_metric('acc', 0.8)\n", cell_id="c1")

    # When: the user moves the project folder elsewhere (`mv proj ~/work/`) and runs
    # the cell again
    (project_dir / "elsewhere").mkdir()
    moved = project_dir / "elsewhere" / "proj"
    os.rename(proj, moved)
    reply = k.ok("%%track\nnbtrack.log_metric('acc', 0.9)\n", cell_id="c1")

    # Then: the run is compared with the cell's previous one and names the notebook as
    # the first did; before, it named the gone path (/…/proj/nb.ipynb) and was the
    # "first run of this cell", and warned that its session code was not kept (its
    # copy went to the cache of the gone folder)
    assert "acc: 0.8 → 0.9" in reply.text, reply.text
    assert "warning" not in reply.text and "No such file" not in reply.text
    out = run_cli("ls", "--json", cwd=moved)
    runs = json.loads(out.stdout)["runs"]
    assert [(r["notebook_path"], r["metrics"]["acc"]) for r in runs] == [
        ("nb.ipynb", 0.9),
        ("nb.ipynb", 0.8),
    ]


def test_an_empty_output_or_column_list_is_a_usage_error(project_dir) -> None:
    # Given: a run
    record_run(project_dir, "train", params={"lr": 0.1}, metrics={"acc": 0.9})

    # When: a script passes -o "$BUNDLE" or --columns "$COLS" with the variable empty
    export = run_cli("export", "last", "-o", "", cwd=project_dir)
    listed = run_cli("ls", "--columns", "", cwd=project_dir)

    # Then: exit 2, one line saying what is missing; before, export failed with exit 1
    # blaming the disk ("cannot write the bundle  (No such file or directory): give
    # -o a path in a writable folder with room") and `ls` printed every column, where
    # --columns ",," was already refused
    assert export.returncode == 2 and export.stderr.count("\n") == 1, export.stderr
    assert "-o names no file" in export.stderr
    assert listed.returncode == 2 and listed.stdout == "", listed.stdout
    assert listed.stderr == "nbtrack: error: --columns names no column\n"
    assert sorted(p.name for p in project_dir.iterdir()) == [".nbtrack"]


def test_doctor_on_a_truncated_store_without_a_backup_says_what_to_do(project_dir) -> None:
    # Given: a store cut to half its length (a copy interrupted, a disk that filled),
    # and no backup of it (`sql --write` never ran)
    for i in range(3):
        record_run(project_dir, "train", metrics={"acc": i})
    db = project_dir / ".nbtrack" / "runs.duckdb"
    run_cli("ls", cwd=project_dir)  # the log checkpointed into the file
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])

    # When: the user follows the error's advice, `nbtrack doctor`, then its --repair
    checked = run_cli("doctor", cwd=project_dir)
    repaired = run_cli("doctor", "--repair", cwd=project_dir)

    # Then: both say what is left to do; before, doctor said only that the file was
    # damaged and "left untouched", pointed at --repair, which changed nothing and
    # said only "problems remain"
    for out in (checked, repaired):
        assert out.returncode == 1
        assert "is damaged" in out.stdout
        assert "no backup of it in .nbtrack: copy back one you kept, or move it aside" in (
            out.stdout
        )


def test_output_to_a_full_disk_or_a_closed_stdout_is_one_line_not_a_traceback(
    project_dir,
) -> None:
    # Given: a run
    record_run(project_dir, "train", params={"lr": 0.1}, metrics={"acc": 0.9})
    cmd = [sys.executable, "-m", "nbtrack"]

    # When: the output goes to a full disk (/dev/full: `nbtrack ls > out.txt` with no
    # room left), or stdout is closed (`nbtrack ls >&-` in a script)
    full = {}
    for args in (["ls"], ["ls", "--json"], ["show", "last"], ["export", "last"]):
        with open("/dev/full", "wb") as sink:
            full[args[-1]] = subprocess.run(
                [*cmd, *args], cwd=project_dir, env=kernel_env(), stdout=sink,
                stderr=subprocess.PIPE, text=True, timeout=60,
            )  # fmt: skip
    closed = subprocess.run(
        ["sh", "-c", '"$0" -m nbtrack ls >&-', sys.executable],
        cwd=project_dir, env=kernel_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # Then: one line naming the cause, exit 1; before, a traceback from the write
    # (OSError: [Errno 28]), or for the closed stdout an AttributeError on None
    for name, out in full.items():
        assert out.returncode == 1, (name, out.stderr)
        assert out.stderr == (
            "nbtrack: error: cannot write the output (No space left on device): "
            "free room where it goes, or send it elsewhere\n"
        ), (name, out.stderr)
    assert closed.returncode == 0 and closed.stderr == "", closed.stderr
    assert "train" in run_cli("ls", cwd=project_dir).stdout


def test_the_store_folder_deleted_under_a_kernel_keeps_the_next_runs_whole(
    kernel, project_dir
) -> None:
    # Given: a kernel that tracked two cells
    import shutil

    (project_dir / ".nbtrack").mkdir()
    for i in range(2):
        kernel.ok(f"%%track\nnbtrack.log_metric('a', {i})\n", cell_id="c0")
    assert len(json.loads(run_cli("ls", "--json", cwd=project_dir).stdout)["runs"]) == 2

    # When: the user deletes .nbtrack (`rm -rf .nbtrack` to start afresh) and runs a
    # cell again
    shutil.rmtree(project_dir / ".nbtrack")
    kernel.ok("%%track\nnbtrack.log_metric('b', 1)\n", cell_id="c1")

    # Then: the new store holds the run and every blob it names; before, its session
    # code named the earlier cells' blobs as kept (nbtrack remembered storing them, in
    # the deleted folder) and doctor warned "3 blob(s) runs recorded as cached are gone"
    out = run_cli("ls", "--json", cwd=project_dir)
    assert [r["metrics"].get("b") for r in json.loads(out.stdout)["runs"]] == [1]
    doctor = run_cli("doctor", cwd=project_dir)
    assert doctor.returncode == 0, doctor.stdout
    assert "every blob a run recorded as cached is present" in doctor.stdout


def test_a_limit_with_an_underscore_or_a_non_ascii_digit_is_refused(project_dir) -> None:
    # Given: twelve runs
    for i in range(12):
        record_run(project_dir, "train", metrics={"acc": i})

    # When: --limit gets `1_0` (a typo for 10? 1? 0?) or `٣` (an Arabic-Indic three,
    # pasted from a document)
    outs = [run_cli("ls", f"--limit={v}", cwd=project_dir) for v in ("1_0", "٣")]

    # Then: exit 2, one line; before, Python's int() read them as 10 and 3 and `ls`
    # listed that many runs, where `0x10` and `1e9` were already refused
    for out in outs:
        assert out.returncode == 2 and out.stdout == "", out.stdout
        assert "argument --limit: not a whole number" in out.stderr
        assert len(out.stderr.splitlines()) == 1


def test_a_file_past_path_max_is_told_not_silently_left_out(kernel, project_dir) -> None:
    # Given: a cell that goes 25 folders of 200 characters deep (5,000 bytes, past
    # Linux's PATH_MAX of 4,096: only relative paths reach there) and writes a file
    code = (
        "%%track\n"
        "import os\n"
        "base = os.getcwd()\n"
        "for _ in range(25):\n"
        "    os.makedirs('d' * 200, exist_ok=True)\n"
        "    os.chdir('d' * 200)\n"
        "open('deep.txt', 'w').write('1')\n"
        "os.chdir(base)\n"
    )

    # When: it runs
    reply = kernel.ok(code, cell_id="c1")

    # Then: the summary says the file could not be versioned, and why, in one line cut
    # to its end; before, the run recorded no file and said nothing (the file seemed
    # gone: a temporary file the cell removed)
    lines = [line for line in reply.text.splitlines() if "warning:" in line]
    assert len(lines) == 1 and lines[0].endswith("/deep.txt: File name too long"), lines
    assert len(lines[0]) < 150
