"""checkout: a run's data comes back byte for byte, or checkout says why it cannot."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_cli
from factory import record_run
from nbtrack.checkout import (
    CORRUPT,
    MISSING,
    MODIFIED,
    NOT_CACHED,
    OUTSIDE,
    RESTORED,
    UNWRITABLE,
    checkout,
)
from nbtrack.client import Client
from nbtrack.exceptions import UsageError
from nbtrack.hashing import StatCache
from nbtrack.models import DataVersion
from nbtrack.project import resolve_project
from nbtrack.versioning import version_path


@pytest.fixture
def client(project_dir: Path) -> Client:
    (project_dir / ".nbtrack").mkdir()
    return Client(resolve_project(project_dir))


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {item.path: item.status for item in report.items}


def test_inputs_come_back_byte_for_byte_after_change_and_deletion(client: Client) -> None:
    root = client.project.root
    (root / "train.csv").write_bytes(b"x,y\n1,2\n")
    (root / "params.bin").write_bytes(os.urandom(9 << 20))
    original = (root / "params.bin").read_bytes()
    run = record_run(client, inputs=["train.csv", "params.bin"])
    # the user edits one file (as a later run would) and deletes the other
    later = record_run(client)
    del later
    (root / "train.csv").write_bytes(b"x,y\n1,2\n3,4\n")
    record_run(client, inputs=["train.csv"])  # the edit is itself a recorded version
    (root / "params.bin").unlink()
    report = checkout(client, run)
    assert report.ok, report.to_dict()
    assert _statuses(report) == {"train.csv": RESTORED, "params.bin": RESTORED}
    assert (root / "train.csv").read_bytes() == b"x,y\n1,2\n"
    assert (root / "params.bin").read_bytes() == original


def test_a_file_matching_no_recorded_version_is_kept_unless_forced(client: Client) -> None:
    root = client.project.root
    (root / "notes.txt").write_text("recorded")
    run = record_run(client, inputs=["notes.txt"])
    (root / "notes.txt").write_text("my unsaved work")
    report = checkout(client, run)
    assert not report.ok and _statuses(report) == {"notes.txt": MODIFIED}
    assert (root / "notes.txt").read_text() == "my unsaved work"
    forced = checkout(client, run, force=True)
    assert forced.ok and (root / "notes.txt").read_text() == "recorded"


def test_a_folder_version_is_restored_file_by_file(client: Client) -> None:
    root = client.project.root
    (root / "imgs" / "sub").mkdir(parents=True)
    (root / "imgs" / "a.png").write_bytes(b"A")
    (root / "imgs" / "sub" / "b.png").write_bytes(b"B")
    run = record_run(client, inputs=["imgs"])
    (root / "imgs" / "sub" / "b.png").unlink()
    (root / "imgs" / "a.png").write_bytes(b"A2")
    record_run(client, inputs=["imgs"])
    report = checkout(client, run)
    assert report.ok, report.to_dict()
    assert (root / "imgs" / "a.png").read_bytes() == b"A"
    assert (root / "imgs" / "sub" / "b.png").read_bytes() == b"B"
    # one file of a folder version can be asked for by its path
    (root / "imgs" / "a.png").unlink()
    only = checkout(client, run, ["imgs/a.png"])
    assert [i.path for i in only.items] == ["imgs/a.png"]
    assert (root / "imgs" / "a.png").read_bytes() == b"A"


def test_flipped_bytes_in_a_blob_are_reported_never_restored(client: Client) -> None:
    root = client.project.root
    (root / "model.bin").write_bytes(b"weights" * 100)
    run = record_run(client, outputs=["model.bin"])
    (root / "model.bin").unlink()
    blob = client.cache.path_for(client.get_run(run).data[0].hash or "")
    os.chmod(blob, 0o644)
    raw = bytearray(blob.read_bytes())
    raw[3] ^= 0x01
    blob.write_bytes(bytes(raw))
    report = checkout(client, run)
    assert not report.ok and _statuses(report) == {"model.bin": CORRUPT}
    assert not (root / "model.bin").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".nbtrack-restore")] == []


def test_uncached_and_pruned_versions_are_reported(client: Client) -> None:
    root = client.project.root
    (root / "big.bin").write_bytes(b"b" * 100)
    (root / "small.txt").write_text("small")
    uncached = record_run(client, inputs=["big.bin"], cache=False)
    pruned = record_run(client, inputs=["small.txt"])
    record_run(client)
    (root / "big.bin").unlink()
    (root / "small.txt").unlink()
    result = client.gc(keep_last=1)
    assert result.removed_bytes == len("small")
    assert _statuses(checkout(client, uncached)) == {"big.bin": NOT_CACHED}
    assert _statuses(checkout(client, pruned)) == {"small.txt": MISSING}


def test_paths_outside_the_project_are_only_written_with_to(
    client: Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("shared") / "ref.txt"
    outside.write_text("reference data")
    run = record_run(client, inputs=[outside])
    outside.write_text("changed")
    report = checkout(client, run)
    assert _statuses(report) == {str(outside.resolve()): OUTSIDE}
    assert outside.read_text() == "changed"
    dest = tmp_path_factory.mktemp("restore")
    restored = checkout(client, run, to=dest)
    assert restored.ok
    copy = dest / str(outside.resolve()).lstrip("/")
    assert copy.read_text() == "reference data"


def test_a_place_that_takes_no_file_is_reported_per_file_or_in_one_line(
    client: Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = client.project.root / "data.csv"
    data.write_text("1,2\n")
    run = record_run(client, inputs=[data])
    # a folder on a read-only mount: the file is reported, not a traceback
    dest = tmp_path_factory.mktemp("ro")
    subprocess.run(["mount", "--bind", str(dest), str(dest)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(dest)], check=True)
        report = checkout(client, run, to=dest)
    finally:
        subprocess.run(["umount", "-l", str(dest)], check=True)
    [item] = report.items
    assert (item.status, report.ok) == (UNWRITABLE, False)
    assert "Read-only file system" in item.detail
    # a folder that cannot be made: one line naming it (a FileNotFoundError traceback)
    done = run_cli("checkout", run, "--to", "/proc/nbtrack-restore", cwd=client.project.root)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "cannot make the folder /proc/nbtrack-restore" in done.stderr


def test_dotdot_and_absolute_recorded_paths_are_refused(client: Client) -> None:
    # a store pulled from elsewhere could hold hostile paths; checkout never follows them
    root = client.project.root
    (root / "ok.txt").write_text("fine")
    good = version_path(
        client.project, "ok.txt", "input", cache=client.cache, stat_cache=StatCache()
    )
    hostile = [
        DataVersion("../escape.txt", "input", good.hash, good.size, "file", True, True, None),
        DataVersion("/etc/evil.txt", "output", good.hash, good.size, "file", True, True, None),
    ]
    run = record_run(client, data=hostile)
    report = checkout(client, run)
    assert {i.status for i in report.items} == {OUTSIDE}
    assert not (root.parent / "escape.txt").exists()


def test_a_symlink_leading_out_of_the_project_is_not_written_through(
    client: Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = client.project.root
    (root / "data").mkdir()
    (root / "data" / "x.txt").write_text("inside")
    run = record_run(client, inputs=["data/x.txt"])
    # the folder is later replaced by a symlink to somewhere else
    target = tmp_path_factory.mktemp("victim")
    (root / "data" / "x.txt").unlink()
    (root / "data").rmdir()
    (root / "data").symlink_to(target, target_is_directory=True)
    report = checkout(client, run)
    assert _statuses(report) == {"data/x.txt": OUTSIDE}
    assert list(target.iterdir()) == []


def test_inputs_outputs_and_unknown_paths(client: Client) -> None:
    root = client.project.root
    (root / "in.txt").write_text("in")
    (root / "out.txt").write_text("out")
    run = record_run(client, inputs=["in.txt"], outputs=["out.txt"])
    (root / "in.txt").unlink()
    (root / "out.txt").unlink()
    report = checkout(client, run, role="input")
    assert _statuses(report) == {"in.txt": RESTORED}
    assert not (root / "out.txt").exists()
    with pytest.raises(UsageError, match="not a data version of this run"):
        checkout(client, run, ["other.txt"])


def test_a_tracked_cell_in_a_real_kernel_can_be_checked_out(kernel, project_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from conftest import run_cli

    # given a cell tracked with a folder input and a file output
    (project_dir / "data").mkdir()
    for i in range(3):
        (project_dir / "data" / f"part{i}.csv").write_text(f"v\n{i}\n")
    kernel.ok(
        "%%track -i data -o summary.txt\n"
        "import os\n"
        "open('summary.txt', 'w').write(','.join(sorted(os.listdir('data'))))\n"
    )
    # when the data and the output change afterwards
    (project_dir / "data" / "part0.csv").write_text("v\nchanged\n")
    (project_dir / "data" / "part2.csv").unlink()
    (project_dir / "summary.txt").unlink()
    kernel.ok("%%track -i data\nlen(os.listdir('data'))")
    # then checking out the first run brings back both, byte for byte
    first = run_cli("ls", "--json", "--sort", "started_at", "--ascending", cwd=project_dir)
    run_id = json.loads(first.stdout)["runs"][0]["run_id"]
    out = run_cli("checkout", run_id, cwd=project_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (project_dir / "data" / "part0.csv").read_text() == "v\n0\n"
    assert (project_dir / "data" / "part2.csv").read_text() == "v\n2\n"
    assert (project_dir / "summary.txt").read_text() == "part0.csv,part1.csv,part2.csv"
