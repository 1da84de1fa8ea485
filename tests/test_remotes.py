"""push / pull: runs and their data travel through any fsspec URL and come back intact."""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest

from factory import record_run
from nbtrack.checkout import checkout
from nbtrack.client import Client
from nbtrack.exceptions import RemoteError, UsageError
from nbtrack.project import resolve_project
from nbtrack.remotes import pull, push


def _client(root: Path) -> Client:
    (root / ".nbtrack").mkdir(parents=True)
    return Client(resolve_project(root))


@pytest.fixture
def alice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.delenv("NBTRACK_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    return _client(tmp_path / "alice")


@pytest.fixture
def bob(tmp_path: Path) -> Client:
    return _client(tmp_path / "bob")


def _run_with_data(client: Client) -> str:
    """A run that read a csv file and a folder of images, all cached."""
    root = client.project.root
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,2\n")
    (root / "data" / "images").mkdir()
    (root / "data" / "images" / "1.png").write_bytes(b"\x89PNG one")
    return record_run(
        client,
        "train",
        params={"lr": 0.1},
        metrics={"acc": 0.9},
        inputs=[root / "data" / "train.csv", root / "data" / "images"],
    )


@pytest.mark.parametrize("kind", ["folder", "memory"])
def test_push_then_pull_round_trip_restores_runs_and_bytes(
    alice: Client, bob: Client, tmp_path: Path, kind: str
) -> None:
    url = str(tmp_path / "remote") if kind == "folder" else f"memory://nbtrack-{uuid.uuid4().hex}"
    run_id = _run_with_data(alice)
    pushed = push(alice, url)
    # the csv, the folder manifest and the image in it
    assert len(pushed.blobs_copied) == 3 and pushed.runs == [run_id]
    # pushing again sends nothing new
    assert push(alice, url).blobs_copied == []
    pulled = pull(bob, url)
    assert pulled.ok and pulled.runs == [run_id] and len(pulled.blobs_copied) == 3
    run = bob.get_run(run_id)
    assert run.params == {"lr": 0.1} and run.metrics == {"acc": 0.9}
    report = checkout(bob, run_id)
    assert report.ok, report.to_dict()
    assert (bob.project.root / "data" / "train.csv").read_text() == "x,y\n1,2\n"
    assert (bob.project.root / "data" / "images" / "1.png").read_bytes() == b"\x89PNG one"
    # pulling twice adds nothing
    again = pull(bob, url)
    assert again.runs == [] and again.blobs_copied == []


def test_a_tampered_remote_blob_is_reported_and_not_kept(alice: Client, bob: Client) -> None:
    url = f"memory://nbtrack-{uuid.uuid4().hex}"
    run_id = _run_with_data(alice)
    push(alice, url)
    fs, root = fsspec.core.url_to_fs(url)
    csv_hash = next(d.hash for d in alice.get_run(run_id).data if d.path.endswith(".csv"))
    algo, _, hexd = (csv_hash or "").partition(":")
    fs.pipe_file(f"{root}/blobs/{algo}/{hexd[:2]}/{hexd[2:]}", b"not the data")
    pulled = pull(bob, url)
    assert pulled.blobs_corrupt == [csv_hash] and not pulled.ok
    assert not bob.cache.has(csv_hash or "")


def test_pull_one_run_by_prefix_and_unknown_remotes(
    alice: Client, bob: Client, tmp_path: Path
) -> None:
    url = str(tmp_path / "remote")
    first = _run_with_data(alice)
    record_run(alice, "other")
    push(alice, url)
    assert pull(bob, url, [first[:8]]).runs == [first]
    with pytest.raises(UsageError, match="no run"):
        pull(bob, url, ["ffffffff"])
    with pytest.raises(RemoteError, match="not an nbtrack remote"):
        pull(bob, str(tmp_path / "empty"))


def test_a_remote_run_file_that_is_not_json_is_one_line_and_pulls_nothing(
    alice: Client, bob: Client, tmp_path: Path
) -> None:
    from conftest import run_cli

    url = str(tmp_path / "remote")
    run_id = _run_with_data(alice)
    push(alice, url)
    run_file = tmp_path / "remote" / "runs" / f"{run_id}.json"
    run_file.write_bytes(b"\x00 definitely not json")
    done = run_cli("pull", url, cwd=bob.project.root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and f"runs/{run_id}.json is not a run file" in done.stderr
    assert bob.list_runs().total == 0 and not list(bob.cache.iter_blobs())
    assert run_file.read_bytes() == b"\x00 definitely not json"
