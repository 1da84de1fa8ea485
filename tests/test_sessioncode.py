"""The session code a run records: the same manifest however the session grew, made
from what changed since the last run rather than from the whole session again."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbtrack import sessioncode
from nbtrack.cache import Cache, ManifestEntry
from nbtrack.hashing import hash_bytes
from nbtrack.sessioncode import SessionCell, read_code, session_cells, store_code


def _canonical(cache: Cache, cells: list[SessionCell]) -> str:
    """The manifest hash as the cache writes any folder manifest (sorted, whole)."""
    entries = [
        ManifestEntry(
            f"cell-{i:06d}{'.raised' if c.raised else ''}.py",
            hash_bytes(c.source.encode()),
            len(c.source.encode()),
        )
        for i, c in enumerate(cells, start=1)
    ]
    return cache.manifest_hash(cache.manifest_bytes(entries))


def test_a_growing_session_records_the_same_code_as_stored_whole(tmp_path: Path) -> None:
    # given a session whose cells run one by one (one raises after it was recorded
    # running, one is run again, one holds non-ASCII text and a quote)
    cache = Cache(tmp_path / "cache")
    history = [""]
    raised: set[int] = set()
    sources = ["a = 1", 'print("é")', "b = a * 2", "a = 1", "1 / 0", "c = b", "a = 1"]
    for n, source in enumerate(sources, start=1):
        # when each run records the session code up to and including its own cell
        cells = session_cells(list(history), source, set(raised))
        code_hash = store_code(cache, cells)
        # then it is the manifest of exactly those cells, readable back in order
        assert cells == [
            SessionCell(s, i in raised) for i, s in enumerate([*sources[: n - 1], source], 1)
        ]
        assert code_hash == _canonical(cache, cells)
        assert read_code(cache, code_hash) == cells
        history.append(source)
        if source == "1 / 0":
            raised.add(n)  # seen raising after its run began


def test_a_history_that_does_not_continue_the_last_one_is_made_whole(tmp_path: Path) -> None:
    # given the code of one session recorded
    cache = Cache(tmp_path / "cache")
    store_code(cache, session_cells(["", "x = 1", "y = 2"], "z = 3", set()))
    # when another history is recorded (a new session in the same process, an
    # earlier cell now known to have raised)
    other = session_cells(["", "x = 1", "q = 0"], "z = 3", {1})
    code_hash = store_code(cache, other)
    # then its code is its own cells, none taken from the first session
    assert other == [SessionCell("x = 1", True), SessionCell("q = 0"), SessionCell("z = 3")]
    assert code_hash == _canonical(cache, other)
    assert read_code(cache, code_hash) == other


def test_blobs_not_touched_for_long_are_stored_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a session's code recorded, then its cell blobs removed (gc, after they
    # went unreferenced for longer than it keeps them)
    cache = Cache(tmp_path / "cache")
    cells = session_cells(["", "x = 1"], "y = 2", set())
    store_code(cache, cells)
    for c in cells:
        cache.path_for(hash_bytes(c.source.encode())).unlink()
    # when the next run records the code after longer than REFRESH_SECONDS (0 here)
    monkeypatch.setattr(sessioncode, "REFRESH_SECONDS", 0.0)
    code_hash = store_code(cache, [*cells, SessionCell("z = 3")])
    # then every cell is in the cache again
    assert [c.source for c in read_code(cache, code_hash)] == ["x = 1", "y = 2", "z = 3"]
