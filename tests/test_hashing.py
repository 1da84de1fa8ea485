"""Content hashes and the stat cache: same bytes, same hash; unchanged files are not re-read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash

from nbtrack.hashing import (
    CHUNK_SIZE,
    PREFIX,
    HashStream,
    StatCache,
    hash_bytes,
    hash_file,
)


def _old(path: Path) -> None:
    """Give a file an mtime far enough in the past that its stat is not racy."""
    past = time.time() - 60
    os.utime(path, (past, past))


def test_small_content_hash_is_plain_xxh3_128(tmp_path: Path) -> None:
    # given a small file, when hashed, then the hash is what `xxhsum -H2` would print
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello\n")
    assert hash_file(f) == PREFIX + xxhash.xxh3_128_hexdigest(b"hello\n")
    assert hash_bytes(b"hello\n") == hash_file(f)


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]
)
def test_file_bytes_and_stream_hashes_agree_at_chunk_edges(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    f = tmp_path / "blob"
    f.write_bytes(data)
    stream = HashStream()
    for start in range(0, size, 1_000_003):
        stream.update(data[start : start + 1_000_003])
    assert hash_file(f) == hash_bytes(data) == stream.hexdigest()


def test_one_flipped_byte_in_a_large_file_changes_the_hash(tmp_path: Path) -> None:
    data = bytearray(os.urandom(2 * CHUNK_SIZE + 5))
    before = hash_bytes(data)
    data[CHUNK_SIZE + 3] ^= 1
    assert hash_bytes(data) != before


def test_chunked_form_is_not_the_plain_hash_of_the_digests() -> None:
    # the combining step is seeded with the length, so a small file whose content is a
    # list of chunk digests cannot collide with the large file they came from
    data = os.urandom(2 * CHUNK_SIZE)
    digests = b"".join(
        xxhash.xxh3_128_digest(data[o : o + CHUNK_SIZE]) for o in range(0, len(data), CHUNK_SIZE)
    )
    assert hash_bytes(data) != hash_bytes(digests)


def test_stat_cache_does_not_reread_an_unchanged_file(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"x" * 100)
    _old(f)
    cache = StatCache()
    first = cache.hash(f)
    # make the content different while keeping the stat: only a stat-based cache keeps
    # the old answer, which proves no read happened
    st = f.stat()
    with open(f, "r+b") as fh:
        fh.write(b"y")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.hash(f).hash == first.hash


def test_stat_cache_rehashes_when_the_file_changes(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"one")
    _old(f)
    cache = StatCache()
    first = cache.hash(f).hash
    f.write_bytes(b"two")
    assert cache.hash(f).hash == hash_bytes(b"two") != first


def test_racy_fresh_file_is_hashed_but_not_remembered(tmp_path: Path) -> None:
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"just written")
    path = tmp_path / "statcache.json"
    cache = StatCache(path)
    assert cache.hash(f).hash == hash_bytes(b"just written")
    cache.save()
    assert not path.exists() or str(f.resolve()) not in path.read_text()


def test_stat_cache_persists_across_processes(tmp_path: Path) -> None:
    # given a stat cache saved by another process
    f = tmp_path / "data.bin"
    f.write_bytes(b"persisted")
    _old(f)
    store = tmp_path / "statcache.json"
    code = (
        "import sys; from nbtrack.hashing import StatCache; "
        "c = StatCache(sys.argv[1]); print(c.hash(sys.argv[2]).hash); c.save()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(store), str(f)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == hash_bytes(b"persisted")
    # when this process looks the file up, then the hash comes from the file, not a read
    st = f.stat()
    assert StatCache(store).lookup(str(f.resolve()), st) == hash_bytes(b"persisted")


def test_concurrent_processes_saving_the_stat_cache_lose_no_entry(tmp_path: Path) -> None:
    files = []
    for i in range(40):
        f = tmp_path / f"f{i}.bin"
        f.write_bytes(f"content {i}".encode())
        _old(f)
        files.append(f)
    store = tmp_path / "statcache.json"
    code = (
        "import sys; from nbtrack.hashing import StatCache\n"
        "for p in sys.argv[2:]:\n"
        "    c = StatCache(sys.argv[1]); c.hash(p); c.save()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(store), *map(str, files[i::4])])
        for i in range(4)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    fresh = StatCache(store)
    for f in files:
        assert fresh.lookup(str(f.resolve()), f.stat()) == hash_bytes(f.read_bytes())


def test_corrupt_stat_cache_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    store = tmp_path / "statcache.json"
    store.write_text("{not json")
    assert StatCache(store).hash(f).hash == hash_bytes(b"abc")


def test_hashing_still_works_in_a_forked_child(tmp_path: Path) -> None:
    # given the hashing threads started in this process
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * CHUNK_SIZE))
    expected = hash_file(big)
    # when a child is forked (as multiprocessing and some executors do), then it hashes too
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if hash_file(big) == expected else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_malformed_entries_in_the_stat_cache_are_ignored(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"abc")
    _old(f)
    store = tmp_path / "statcache.json"
    store.write_text(json.dumps({"format": 1, "entries": {str(f.resolve()): [1, 2]}}))
    assert StatCache(store).hash(f).hash == hash_bytes(b"abc")


def test_a_stat_cache_save_that_fails_keeps_what_it_learnt(tmp_path: Path) -> None:
    # given a stat cache that learnt a hash, and a file where its folder should go
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 100)
    old = time.time() - 60
    os.utime(data, (old, old))  # (not racy: remembered)
    folder = tmp_path / "store"
    cache = StatCache(folder / "statcache.json")
    first = cache.hash(data)
    folder.write_text("not a folder")
    # when saving fails, then the hash is still pending, and the next save writes it
    with pytest.raises(OSError):
        cache.save()
    folder.unlink()
    cache.save()
    again = StatCache(folder / "statcache.json")
    assert again.lookup(str(data.resolve()), os.stat(data)) == first.hash
