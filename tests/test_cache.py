"""The blob cache: blobs always match their names, writes are atomic, corruption is caught."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nbtrack.cache import Cache, ManifestEntry
from nbtrack.exceptions import BlobCorruptError, BlobMissingError
from nbtrack.hashing import CHUNK_SIZE, hash_bytes, hash_file


def _every_blob_matches_its_name(cache: Cache) -> list[str]:
    names = []
    for digest, _size, _mtime in cache.iter_blobs():
        cache.verify(digest)  # raises on a mismatch
        names.append(digest)
    return names


def test_add_file_stores_bytes_under_their_hash(tmp_path: Path) -> None:
    src = tmp_path / "input.bin"
    data = os.urandom(2 * CHUNK_SIZE + 123)
    src.write_bytes(data)
    cache = Cache(tmp_path / "cache")
    digest, size = cache.add_file(src)
    assert (digest, size) == (hash_bytes(data), len(data))
    assert cache.read_bytes(digest) == data
    # blobs are read-only so nobody edits them in place by accident
    assert cache.path_for(digest).stat().st_mode & 0o222 == 0


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    for i in range(5):
        f = tmp_path / f"copy{i}.bin"
        f.write_bytes(b"same bytes" * 1000)
        cache.add_file(f)
    assert len(list(cache.iter_blobs())) == 1


def test_put_file_refuses_a_file_that_no_longer_has_that_hash(tmp_path: Path) -> None:
    f = tmp_path / "changing.txt"
    f.write_bytes(b"version 1")
    old = hash_file(f)
    f.write_bytes(b"version 2")
    cache = Cache(tmp_path / "cache")
    assert cache.put_file(f, old) is False
    assert not cache.has(old)
    assert list(cache.iter_blobs()) == []


def test_blob_of_wrong_size_is_replaced_on_the_next_put(tmp_path: Path) -> None:
    # given a torn blob (e.g. zero bytes after a power loss) under the right name
    f = tmp_path / "data.bin"
    f.write_bytes(b"important" * 100)
    cache = Cache(tmp_path / "cache")
    digest, _ = cache.add_file(f)
    blob = cache.path_for(digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"")
    # when the same file is put again, then the blob is repaired
    assert cache.put_file(f, digest)
    assert cache.read_bytes(digest) == f.read_bytes()


def test_flipped_byte_is_detected_and_the_blob_moved_aside(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"abcdef" * 1000)
    cache = Cache(tmp_path / "cache")
    digest, _ = cache.add_file(f)
    blob = cache.path_for(digest)
    os.chmod(blob, 0o644)
    raw = bytearray(blob.read_bytes())
    raw[10] ^= 0xFF
    blob.write_bytes(bytes(raw))
    out = tmp_path / "restored.bin"
    fd = os.open(out, os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(BlobCorruptError):
            cache.copy_out(digest, fd)
    finally:
        os.close(fd)
    assert not cache.has(digest)
    # the next put of the original brings back a good blob
    assert cache.put_file(f, digest)
    cache.verify(digest)


def test_missing_blob_is_reported_as_missing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(BlobMissingError):
        cache.read_bytes(hash_bytes(b"never stored"))


def test_manifest_round_trip_and_folder_hash_suffix(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entries = [
        ManifestEntry("b/y.txt", hash_bytes(b"y"), 1),
        ManifestEntry("a.txt", hash_bytes(b"x"), 1),
    ]
    digest = cache.put_manifest(entries)
    assert digest.endswith(".dir")
    assert [e.path for e in cache.read_manifest(digest)] == ["a.txt", "b/y.txt"]
    # order of the input does not matter: the manifest is canonical
    assert cache.put_manifest(list(reversed(entries))) == digest


def test_put_stream_keeps_matching_bytes_and_rejects_others(tmp_path: Path) -> None:
    import io

    cache = Cache(tmp_path / "cache")
    good = b"streamed" * 10_000
    assert cache.put_stream(io.BytesIO(good), hash_bytes(good))
    assert cache.read_bytes(hash_bytes(good)) == good
    wrong_name = hash_bytes(b"something else")
    assert cache.put_stream(io.BytesIO(b"tampered"), wrong_name) is False
    assert not cache.has(wrong_name)


def test_gc_removes_old_orphans_and_keeps_referenced_and_young_blobs(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    keep = cache.put_bytes(b"kept")
    old_orphan = cache.put_bytes(b"old orphan")
    young_orphan = cache.put_bytes(b"young orphan")
    dropped = cache.put_bytes(b"of a dropped run")
    past = time.time() - 3600
    for d in (keep, old_orphan, dropped):
        os.utime(cache.path_for(d), (past, past))
    preview = cache.collect_garbage([keep], dropped=[dropped], dry_run=True)
    assert sorted(d for d, _ in preview.removed) == sorted([old_orphan, dropped])
    assert all(cache.has(d) for d in (keep, old_orphan, young_orphan, dropped))
    result = cache.collect_garbage([keep], dropped=[dropped])
    assert result.removed_bytes == len(b"old orphan") + len(b"of a dropped run")
    assert cache.has(keep) and cache.has(young_orphan)
    assert not cache.has(old_orphan) and not cache.has(dropped)


def test_gc_keeps_the_files_of_a_kept_folder_version(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    inner = cache.put_bytes(b"file in folder")
    folder = cache.put_manifest([ManifestEntry("f.txt", inner, 14)])
    past = time.time() - 3600
    for d in (inner, folder):
        os.utime(cache.path_for(d), (past, past))
    assert cache.collect_garbage([folder]).removed == []
    assert cache.has(inner)


# Caches a file, its copy stalled for good two chunks in (says "stalled" then): the
# kill lands mid-copy however fast or busy the machine. No reflink: a clone is one step.
KILLED_WRITER = """
import os, sys, threading
import nbtrack.copying
nbtrack.copying.try_reflink = lambda src_fd, dst_fd: False
real_pwrite = os.pwrite
chunks = threading.Semaphore(2)
said = threading.Lock()  # the copy's threads stall together: one says so, whole
def stalling_pwrite(fd, data, offset):
    if not chunks.acquire(blocking=False):
        if said.acquire(blocking=False):
            print("stalled", flush=True)
        threading.Event().wait()
    return real_pwrite(fd, data, offset)
os.pwrite = stalling_pwrite
from nbtrack.cache import Cache
print("copying", flush=True)
Cache(sys.argv[1]).add_file(sys.argv[2])
print("done", flush=True)
"""


def test_a_copy_killed_midway_leaves_no_wrong_blob_and_the_next_put_repairs(
    tmp_path: Path,
) -> None:
    # given a big file and a real process caching it
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        for _ in range(16):
            fh.write(os.urandom(CHUNK_SIZE))
    root = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), str(big)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "copying"
    # when it is SIGKILLed while the temporary blob is being written (two chunks in)
    tmp_dir = root / "tmp"
    assert proc.stdout.readline().strip() == "stalled"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # then no blob exists under the file's name, and every blob there is matches its name
    cache = Cache(root)
    digest = hash_file(big)
    assert not cache.has(digest)
    assert _every_blob_matches_its_name(cache) == []
    assert any(tmp_dir.iterdir()), "the partial copy stays a temporary file"
    # and the next put stores a good blob
    assert cache.add_file(big)[0] == digest
    cache.verify(digest)
    # and gc sweeps the temporary file of the dead writer once it is stale
    for leftover in tmp_dir.iterdir():
        os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    cache.collect_garbage([digest])
    assert list(tmp_dir.iterdir()) == []


def test_gc_counts_notebook_snapshots_and_keeps_running_runs(project_dir: Path) -> None:
    from nbtrack.client import Client
    from nbtrack.project import resolve_project
    from nbtrack.tracking import RunWriter

    (project_dir / ".nbtrack").mkdir()
    client = Client(resolve_project(project_dir))
    old_snapshot = client.cache.put_bytes(b'{"cells": ["old"]}')
    new_snapshot = client.cache.put_bytes(b'{"cells": ["new"]}')
    live_snapshot = client.cache.put_bytes(b'{"cells": ["still running"]}')
    running = RunWriter.start(client.project, kind="notebook", notebook_hash=live_snapshot)
    running.wait()
    for snapshot in (old_snapshot, new_snapshot):
        w = RunWriter.start(client.project, kind="notebook", notebook_hash=snapshot)
        w.finish()
        w.wait()
    result = client.gc(keep_last=1)
    assert [d for d, _ in result.removed] == [old_snapshot]
    assert client.cache.has(new_snapshot) and client.cache.has(live_snapshot)
    running.finish()
    running.wait()


# Writes an output file, caches it as a run's data version, then dies (SIGKILL) before
# anything reaches the store; with "live" it stays alive instead, its run ended but not
# yet ingested.
DIES_BEFORE_INGESTION = """
import os, signal, sys, time
from pathlib import Path
from nbtrack.client import Client
from nbtrack.hashing import StatCache
from nbtrack.project import resolve_project
from nbtrack.tracking import RunWriter
from nbtrack.versioning import version_path

project = resolve_project()
client = Client(project)
Path(sys.argv[1]).write_text("model weights " + sys.argv[1])
w = RunWriter.start(project, kind="cell", name=sys.argv[1])
w.log_data([version_path(project, sys.argv[1], "output", cache=client.cache,
                         stat_cache=StatCache())])
if sys.argv[2] == "live":
    w.finish("finished")
    print("ended", flush=True)
    time.sleep(120)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_gc_push_and_export_first_bring_in_runs_that_never_reached_the_store(
    project_dir: Path, tmp_path: Path
) -> None:
    from conftest import run_cli
    from nbtrack.client import Client
    from nbtrack.project import resolve_project

    # Given: a run whose process died before its run was ingested, and one whose
    # process lives on with its run ended but not ingested; both cached an output,
    # and those blobs are older than gc's grace period
    (project_dir / ".nbtrack").mkdir()
    subprocess.run([sys.executable, "-c", DIES_BEFORE_INGESTION, "dead.bin", "die"], check=False)
    live = subprocess.Popen(
        [sys.executable, "-c", DIES_BEFORE_INGESTION, "live.bin", "live"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ended"
        client = Client(resolve_project(project_dir))
        blobs = list(client.cache.iter_blobs())
        assert len(blobs) == 2
        for digest, _, _ in blobs:
            old = time.time() - 7200
            os.utime(client.cache.path_for(digest), (old, old))

        # When: the user runs gc with no options (documented as keeping every run)
        done = run_cli("gc", cwd=project_dir)
        assert done.returncode == 0, done.stderr

        # Then: both blobs stay, and both runs are in the store, the dead one crashed
        assert sorted(d for d, _, _ in client.cache.iter_blobs()) == sorted(d for d, _, _ in blobs)
        _, rows = client.sql("SELECT name, status FROM runs ORDER BY name")
        assert rows == [("dead.bin", "crashed"), ("live.bin", "finished")]
        # ... checkout brings the dead run's file back
        (project_dir / "dead.bin").unlink()
        _, ids = client.sql("SELECT run_id FROM runs WHERE name = 'dead.bin'")
        done = run_cli("checkout", ids[0][0], cwd=project_dir)
        assert (project_dir / "dead.bin").read_text() == "model weights dead.bin", done.stderr
        # ... and push takes both runs along
        remote = tmp_path / "remote"
        done = run_cli("push", f"file://{remote}", cwd=project_dir)
        assert done.returncode == 0, done.stderr
        assert len(list((remote / "runs").glob("*.json"))) == 2
    finally:
        live.kill()
        live.communicate()
