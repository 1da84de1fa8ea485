"""``nbtrack export`` / ``nbtrack import``: runs and their blobs move between stores, once."""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import zipfile
from pathlib import Path

import pytest

from conftest import run_cli
from factory import record_run
from nbtrack.client import Client
from nbtrack.exceptions import BlobCorruptError, UsageError
from nbtrack.models import DataVersion, NamedInput, RunQuery
from nbtrack.pipelines.bundle import decode_value, encode_value, export_runs, import_bundle
from nbtrack.project import resolve_project


def make_store(folder: Path) -> Client:
    (folder / ".nbtrack").mkdir(parents=True)
    return Client(resolve_project(folder))


def record_sweep_like_runs(client: Client, folder: Path) -> tuple[str, str]:
    """A notebook run with one cell run that read a cached file and logged a metric series."""
    project = client.project
    notebook = folder / "train.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    snapshot = client.cache.put_bytes(notebook.read_bytes())
    data = folder / "data.csv"
    data.write_text("a,b\n1,2\n")
    digest, size = client.cache.add_file(data)
    parent = record_run(
        project,
        "train",
        kind="notebook",
        params={"lr": 0.1, "layers": [64, 32]},
        param_source="papermill",
        tags={"sweep": "abc"},
        notebook_path=str(notebook),
        notebook_hash=snapshot,
    )
    child = record_run(
        project,
        "fit",
        parent_id=parent,
        notebook_path=str(notebook),
        data=[DataVersion("data.csv", "input", digest, size, cached=True)],
        metrics={"loss": [1.0, 0.5, 0.25], "acc": 0.93},
        named_inputs=[
            NamedInput("X", "numpy.ndarray", shape="3×4", fingerprint="xxh64:1f", stale=True,
                       producer_run_id=parent, execution_count=2, reason="x changed")
        ],
    )  # fmt: skip
    executed = project.executions_dir / f"{parent}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.write_text(notebook.read_text())
    return parent, child


def test_a_bundle_carries_runs_blobs_and_executed_notebooks_and_imports_once(tmp_path):
    source = make_store(tmp_path / "laptop")
    parent_id, child_id = record_sweep_like_runs(source, tmp_path / "laptop")
    buffer = io.BytesIO()
    written = export_runs(source, [child_id[:8]], buffer)
    assert written.runs == [parent_id, child_id]  # a cell run travels with its notebook run
    assert len(written.blobs) == 2 and written.missing_blobs == []
    assert written.executions == [f"{parent_id}.ipynb"]

    target = make_store(tmp_path / "cluster")
    added = import_bundle(target, buffer.getvalue())
    assert sorted(added.runs) == sorted([parent_id, child_id])
    assert len(added.blobs) == 2
    for ref in (parent_id, child_id):
        assert target.get_run(ref).to_dict() == source.get_run(ref).to_dict()
    assert [p.value for p in target.metric_series(child_id)["loss"]] == [1.0, 0.5, 0.25]
    imported = target.get_run(child_id)
    assert [(i.name, i.stale) for i in imported.named_inputs] == [("X", True)]
    assert target.cache.read_bytes(imported.data[0].hash) == b"a,b\n1,2\n"
    assert (target.project.executions_dir / f"{parent_id}.ipynb").is_file()

    again = import_bundle(target, buffer.getvalue())
    assert (again.runs, again.blobs, again.executions) == ([], [], [])
    assert (again.skipped_runs, again.skipped_blobs) == (2, 2)
    assert target.list_runs().total == 1


def test_the_cli_exports_to_stdout_or_a_file_and_imports_idempotently(tmp_path):
    source_dir, target_dir = tmp_path / "a", tmp_path / "b"
    source = make_store(source_dir)
    parent_id, _ = record_sweep_like_runs(source, source_dir)
    piped = run_cli_bytes(["export", parent_id[:6]], cwd=source_dir)
    assert zipfile.ZipFile(io.BytesIO(piped)).read("nbtrack-bundle.json")
    done = run_cli("export", parent_id[:6], "-o", str(tmp_path / "b.zip"), cwd=source_dir)
    assert done.returncode == 0, done.stderr
    assert "exported 2 run(s), 2 blob(s), 1 executed notebook(s)" in done.stderr

    make_store(target_dir)
    first = run_cli("import", str(tmp_path / "b.zip"), cwd=target_dir)
    assert first.returncode == 0, first.stderr
    assert "imported 2 run(s) (0 already here), 2 blob(s)" in first.stdout
    second = run_cli("import", str(tmp_path / "b.zip"), "--json", cwd=target_dir)
    assert json.loads(second.stdout)["runs"] == []
    assert json.loads(second.stdout)["skipped_runs"] == 2
    shown = run_cli("show", parent_id[:8], "--json", cwd=target_dir)
    assert json.loads(shown.stdout)["params"] == {"lr": 0.1, "layers": [64, 32]}


def test_a_run_twice_in_one_bundle_is_imported_once_and_counted_once(exported, tmp_path):
    doubled = {t: rows * 2 for t, rows in json.loads(_runs_with(exported, lambda d: d)).items()}
    bad = _rewrite(exported, tmp_path / "twice.zip", {"runs.json": json.dumps(doubled).encode()})
    target = make_store(tmp_path / "t")
    done = run_cli("import", str(bad), "--json", cwd=tmp_path / "t")
    # (it said "imported 4 run(s) (-2 already here)")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (len(summary["runs"]), summary["skipped_runs"]) == (2, 0)
    assert target.list_runs(RunQuery(kind=None)).total == 2


def test_a_bundle_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path):
    source = make_store(tmp_path)
    parent_id, _ = record_sweep_like_runs(source, tmp_path)
    for target in (tmp_path / "no" / "such" / "b.zip", Path("/proc/b.zip")):
        done = run_cli("export", parent_id[:6], "-o", str(target), cwd=tmp_path)
        # (a FileNotFoundError traceback)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert f"cannot write the bundle {target}" in done.stderr
        assert not target.exists() and not target.with_name("b.zip.part").exists()


def run_cli_bytes(args: list[str], cwd: Path) -> bytes:
    import subprocess
    import sys

    from conftest import kernel_env

    done = subprocess.run(
        [sys.executable, "-m", "nbtrack", *args],
        cwd=cwd,
        env=kernel_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bad_bundles_are_refused_with_a_reason(tmp_path):
    client = make_store(tmp_path / "s")
    with pytest.raises(UsageError, match="not a zip archive"):
        import_bundle(client, b"hello", name="hello.txt")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("nbtrack-bundle.json", json.dumps({"format": "nbtrack-bundle", "version": 99}))
    with pytest.raises(UsageError, match="version 99 bundle"):
        import_bundle(client, buffer.getvalue())
    done = run_cli("import", str(tmp_path / "missing.zip"), cwd=tmp_path / "s")
    assert done.returncode == 2 and "no such bundle" in done.stderr
    done = run_cli("export", "feedbeef", "-o", str(tmp_path / "x.zip"), cwd=tmp_path / "s")
    assert done.returncode == 1 and "feedbeef" in done.stderr
    assert not (tmp_path / "x.zip").exists()


def test_a_blob_whose_bytes_do_not_match_its_name_is_not_imported(tmp_path):
    source = make_store(tmp_path / "a")
    parent_id, child_id = record_sweep_like_runs(source, tmp_path / "a")
    buffer = io.BytesIO()
    export_runs(source, [parent_id], buffer)
    tampered = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src,
        zipfile.ZipFile(tampered, "w") as dst,
    ):
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, b"tampered" if item.filename.startswith("blobs/") else data)
    target = make_store(tmp_path / "b")
    with pytest.raises(BlobCorruptError, match="does not match its hash"):
        import_bundle(target, tampered.getvalue())
    assert target.list_runs().total == 0


def test_row_values_survive_the_json_of_a_bundle():
    row = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "nan": math.nan,
        "inf": -math.inf,
        "raw": b"\x00\xff",
        "nested": {"xs": [1, 2.5, None, "s"]},
    }
    back = decode_value(json.loads(json.dumps(encode_value(row), allow_nan=False)))
    assert math.isnan(back.pop("nan"))
    row.pop("nan")
    assert back == row


# ------------------------------------------------------------------ malformed and hostile bundles
def _rewrite(bundle: Path, dest: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of ``bundle`` with some members replaced (bytes) or dropped (None)."""
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(dest, "w") as out:
        for info in src.infolist():
            if info.filename in change:
                continue
            out.writestr(info, src.read(info.filename))
        for name, data in change.items():
            if data is not None:
                out.writestr(name, data)
    return dest


def _runs_with(bundle: Path, edit) -> bytes:
    with zipfile.ZipFile(bundle) as zf:
        dump = json.loads(zf.read("runs.json"))
    edit(dump)
    return json.dumps(dump).encode()


def _drop_run_id(dump):
    del dump["runs"][0]["run_id"]


def _bad_timestamp(dump):
    dump["runs"][0]["started_at"] = "yesterday-ish"


def _fractional_step(dump):
    dump["metrics"][0]["step"] = 1.5


def _environment_without_packages(dump):
    dump["environments"] = [{"env_id": "e1", "python": "3.11"}]


def _climbing_path(dump):
    dump["data_versions"][0]["path"] = "../../.."


def _malformed_hash(dump):
    dump["data_versions"][0]["hash"] = "xxh3:../../etc/passwd"


def _named_inputs_not_a_list(dump):
    dump["named_inputs"] = 7


def _named_input_not_an_object(dump):
    dump["named_inputs"] = [7]


def _offset_beyond_64_bits(dump):
    dump["runs"][0]["spool_offset"] = 2**70


def _pid_an_object(dump):
    dump["runs"][0]["pid"] = {"a": 1}


def _dirty_a_path(dump):
    dump["runs"][0]["git_dirty"] = "../../etc/passwd"


def _packages_not_json(dump):
    dump["environments"][0]["packages"] = "{not json"


def _param_value_not_json(dump):
    dump["params"][0]["value"] = "0.1.2"


def _ended_before_it_started(dump):
    run = next(r for r in dump["runs"] if r.get("ended_at"))
    run["ended_at"] = "2001-01-01T00:00:00"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    parent_id, _ = record_sweep_like_runs(make_store(folder), folder)
    bundle = folder / "good.zip"
    done = run_cli("export", parent_id, "-o", str(bundle), cwd=folder)
    assert done.returncode == 0, done.stderr
    return bundle


MALFORMED = {
    "manifest not JSON": ({"nbtrack-bundle.json": b"{not json"}, "not valid JSON"),
    "manifest a list": ({"nbtrack-bundle.json": b"[1, 2]"}, "not an nbtrack bundle"),
    "version abc": (
        {"nbtrack-bundle.json": b'{"format": "nbtrack-bundle", "version": "abc"}'},
        "version 'abc' is not a number",
    ),
    "runs.json missing": ({"runs.json": None}, "no runs.json"),
    "runs.json not JSON": ({"runs.json": b"\x00\x01 nope"}, "runs.json is not valid JSON"),
    "row without run_id": (_drop_run_id, "lacks run_id"),
    "bad timestamp": (_bad_timestamp, "started_at must be an ISO timestamp"),
    "non-integer step": (_fractional_step, "step must be an integer"),
    "environment missing keys": (_environment_without_packages, "lacks platform, packages"),
    "data path ../../..": (_climbing_path, "without '..'"),
    "malformed hash": (_malformed_hash, "hash must be a content hash"),
    # Found by fuzzing: a TypeError or OverflowError traceback, or the store named as
    # the culprit ("runs.duckdb: Conversion Error ...")
    "named_inputs not a list": (_named_inputs_not_a_list, "'named_inputs' must be a list"),
    "named input not an object": (_named_input_not_an_object, "named_inputs row 1 is not"),
    "offset beyond 64 bits": (_offset_beyond_64_bits, "spool_offset must be an integer"),
    "pid an object": (_pid_an_object, "pid must be an integer or null"),
    "git_dirty a path": (_dirty_a_path, "git_dirty must be true, false or null"),
    # ... and these were imported, then every `show` of the run was a JSONDecodeError
    "packages not JSON": (_packages_not_json, "packages must be JSON text"),
    "param value not JSON": (_param_value_not_json, "value must be JSON text"),
    # ... and this one listed a negative duration
    "ended before it started": (_ended_before_it_started, "is before started_at"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_bundle_is_one_line_and_imports_nothing(exported, tmp_path, case):
    change, message = MALFORMED[case]
    if callable(change):
        change = {"runs.json": _runs_with(exported, change)}
    bad = _rewrite(exported, tmp_path / "bad.zip", change)
    before = bad.read_bytes()
    target = make_store(tmp_path / "t")
    done = run_cli("import", str(bad), cwd=tmp_path / "t")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr
    assert target.list_runs().total == 0
    assert not list(target.cache.iter_blobs())
    assert bad.read_bytes() == before


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = tmp_path / "bomb.zip"
    manifest = {"format": "nbtrack-bundle", "version": 1, "runs": [], "blobs": []}
    chunk = b"\0" * (64 << 20)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("nbtrack-bundle.json", json.dumps(manifest))
        zf.writestr("runs.json", "{}")
        with zf.open("blobs/xxh3/" + "ab" * 16, "w", force_zip64=True) as member:
            for _ in range(32):  # 2 GiB of zeros, about 2 MB compressed
                member.write(chunk)
    assert bomb.stat().st_size < 4 << 20
    target = make_store(tmp_path / "t")
    done = run_cli("import", str(bomb), cwd=tmp_path / "t")
    assert done.returncode == 2 and "refused before writing anything" in done.stderr
    assert done.stderr.count("\n") == 1
    assert sum(f.stat().st_size for f in (tmp_path / "t").rglob("*") if f.is_file()) < 1 << 20
    assert target.list_runs().total == 0
