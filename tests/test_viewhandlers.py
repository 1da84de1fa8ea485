"""The REST routes behind the panel's run views (server/viewhandlers.py): a run's
lineage, the images it wrote, the model registry and data drift — against a real
Jupyter server (unauthenticated access disabled) and runs recorded into a real store."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from factory import record_run
from jupyter_fixtures import _no_store_override, jp_server_config  # noqa: F401 - fixtures
from nbtrack.client import Client
from nbtrack.models import NamedInput
from nbtrack.project import Project, resolve_project
from nbtrack.registry.core import Registry

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# A 1×1 PNG and a small SVG that would run script if it were served as a page.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2"
    "2a0b0a0000000049454e44ae426082"
)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


@pytest.fixture
def project(jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = jp_root_dir / "proj"
    (root / ".nbtrack").mkdir(parents=True)
    (root / "train.ipynb").write_text("{}")
    monkeypatch.chdir(root)  # record_run's relative paths are the project's
    return resolve_project(start=root)


def cell(project: Project, name: str) -> dict[str, str]:
    return {"notebook_path": str(project.root / f"{name}.ipynb"), "cell_id": name}


@pytest.fixture
def pipeline(project: Project) -> dict[str, str]:
    """prepare writes data/train.csv; train reads it and writes a model, plots and a
    folder of figures; evaluate reads the model. The model is registered as ``clf``."""
    root = project.root
    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("x,y\n1,a\n2,b\n3,a\n")
    prepare = record_run(project, "prepare", outputs=["data/train.csv"], **cell(project, "prep"))
    (root / "models").mkdir()
    (root / "models" / "m.pkl").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    (root / "plots" / "figs").mkdir(parents=True)
    (root / "plots" / "loss.png").write_bytes(PNG)
    (root / "plots" / "shape.svg").write_bytes(SVG)
    (root / "plots" / "figs" / "roc.png").write_bytes(PNG + b"\x00")
    (root / "fake.png").write_text("<html><script>alert(3)</script></html>")
    train = record_run(
        project,
        "train",
        inputs=["data/train.csv"],
        outputs=[
            "models/m.pkl",
            "plots/loss.png",
            "plots/shape.svg",
            "plots/figs",
            "fake.png",
        ],
        **cell(project, "train"),
    )
    evaluate = record_run(project, "evaluate", inputs=["models/m.pkl"], **cell(project, "eval"))
    Registry(Client(project)).register_file(train, "models/m.pkl", "clf")
    return {"prepare": prepare, "train": train, "evaluate": evaluate}


async def call(
    jp_fetch: Any,
    *parts: str,
    params: dict[str, str] | None = None,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> HTTPResponse:
    response: HTTPResponse = await jp_fetch(
        "nbtrack",
        "api",
        *parts,
        params={"path": "proj/train.ipynb", **(params or {})},
        method=method,
        body=None if body is None else json.dumps(body),
        headers=headers,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    return response


async def api(jp_fetch: Any, *parts: str, **kwargs: Any) -> tuple[int, Any]:
    response = await call(jp_fetch, *parts, **kwargs)
    return response.code, json.loads(response.body or b"null")


def hash_of(client: Client, run_id: str, path: str) -> str:
    found = [d.hash for d in client.get_run(run_id).data if d.path == path]
    assert found and found[0], f"run {run_id} recorded no hash for {path}"
    return found[0]


# ------------------------------------------------------------------ authentication
ROUTES = [
    ("GET", ("runs", "last", "lineage")),
    ("GET", ("runs", "last", "images")),
    ("GET", ("runs", "last", "images", "xxh128:0123456789abcdef")),
    ("GET", ("models",)),
    ("GET", ("models", "clf")),
    ("PUT", ("models", "clf", "aliases", "champion")),
    ("DELETE", ("models", "clf", "aliases", "champion")),
    ("GET", ("drift",)),
]


@pytest.mark.parametrize(("method", "parts"), ROUTES)
async def test_every_view_route_refuses_a_request_without_token(
    jp_fetch: Any, pipeline: dict[str, str], method: str, parts: tuple[str, ...]
) -> None:
    status, body = await api(
        jp_fetch,
        *parts,
        method=method,
        body={"version": 1, "expected": None} if method in ("PUT", "DELETE") else None,
        headers={"Authorization": ""},
    )
    assert status == 403
    assert body["error"]["type"] == "Forbidden"
    # Nothing moved for a caller without a token.
    assert Registry(Client(resolve_project(Path("."))))._store.alias_history("clf") == []


# ------------------------------------------------------------------ lineage
async def test_lineage_shows_who_made_the_inputs_and_who_read_the_outputs(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    client = Client(project)
    status, lineage = await api(jp_fetch, "runs", pipeline["train"][:8], "lineage")
    assert status == 200
    assert lineage["run_id"] == pipeline["train"]
    runs = {r["run_id"]: r for r in lineage["runs"]}
    assert lineage["runs"][0]["run_id"] == pipeline["train"]  # the run itself first
    assert set(runs) == set(pipeline.values())
    assert runs[pipeline["prepare"]]["name"] == "prepare"
    train_csv = hash_of(client, pipeline["train"], "data/train.csv")
    rows = {(d["run_id"], d["role"], d["path"], d["hash"]) for d in lineage["data"]}
    # prepare wrote the very content train read; evaluate read the model train wrote.
    assert (pipeline["prepare"], "output", "data/train.csv", train_csv) in rows
    assert (pipeline["train"], "input", "data/train.csv", train_csv) in rows
    model_hash = hash_of(client, pipeline["train"], "models/m.pkl")
    assert (pipeline["evaluate"], "input", "models/m.pkl", model_hash) in rows
    [model] = lineage["models"]
    assert (model["name"], model["version"], model["run_id"]) == ("clf", 1, pipeline["train"])


async def test_a_run_that_wrote_the_same_bytes_later_did_not_feed_it(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    # Given the same data/train.csv written again, after train read it...
    later = record_run(project, "prepare", outputs=["data/train.csv"], **cell(project, "prep"))
    _, lineage = await api(jp_fetch, "runs", pipeline["train"], "lineage")
    writers = {d["run_id"] for d in lineage["data"] if d["path"] == "data/train.csv"}
    # ...only the run that wrote it before is upstream of train.
    assert pipeline["prepare"] in writers
    assert later not in writers
    # And from the late writer's side, train (which read the bytes earlier) is no reader.
    _, late = await api(jp_fetch, "runs", later, "lineage")
    assert {r["run_id"] for r in late["runs"]} == {later}


async def test_a_content_read_by_many_runs_shows_a_few_and_counts_the_rest(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    readers = [
        record_run(project, "read", inputs=["data/train.csv"], **cell(project, "read"))
        for _ in range(3)
    ]
    _, lineage = await api(jp_fetch, "runs", pipeline["prepare"], "lineage", params={"fanout": "2"})
    shown = {r["run_id"] for r in lineage["runs"]} - {pipeline["prepare"]}
    # train read it first, then the three readers: the first two are shown.
    assert shown == {pipeline["train"], readers[0]}
    digest = hash_of(Client(project), pipeline["prepare"], "data/train.csv")
    assert lineage["more"] == {digest: 2}


async def test_lineage_of_a_run_alone_and_bad_requests(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    loner = record_run(project, "loner", **cell(project, "loner"))
    status, lineage = await api(jp_fetch, "runs", loner, "lineage")
    assert status == 200
    assert [r["run_id"] for r in lineage["runs"]] == [loner]
    assert (lineage["data"], lineage["values"], lineage["models"]) == ([], [], [])

    status, body = await api(jp_fetch, "runs", "ffffffff", "lineage")
    assert status == 404
    status, body = await api(jp_fetch, "runs", loner, "lineage", params={"depth": "9"})
    assert status == 400
    assert "depth" in body["error"]["message"]


async def test_deeper_lineage_follows_data_two_runs_away(
    jp_fetch: Any, pipeline: dict[str, str]
) -> None:
    _, near = await api(jp_fetch, "runs", pipeline["prepare"], "lineage")
    _, far = await api(jp_fetch, "runs", pipeline["prepare"], "lineage", params={"depth": "2"})
    assert {r["run_id"] for r in near["runs"]} == {pipeline["prepare"], pipeline["train"]}
    assert {r["run_id"] for r in far["runs"]} == set(pipeline.values())


async def test_lineage_links_kernel_values_passed_between_cells(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    # Given a cell that read a DataFrame another cell's run made in the same kernel...
    frame = NamedInput("X_test", "DataFrame", producer_run_id=pipeline["train"])
    scored = record_run(project, "score", named_inputs=[frame], **cell(project, "score"))
    # ...the lineage of either run shows the value passed between them.
    _, down = await api(jp_fetch, "runs", pipeline["train"], "lineage")
    _, up = await api(jp_fetch, "runs", scored, "lineage")
    link = {"source": pipeline["train"], "target": scored, "name": "X_test"}
    assert link in down["values"] and link in up["values"]
    assert scored in {r["run_id"] for r in down["runs"]}
    assert pipeline["train"] in {r["run_id"] for r in up["runs"]}


# ------------------------------------------------------------------ images
async def test_images_a_run_wrote_are_listed_with_folders_expanded(
    jp_fetch: Any, pipeline: dict[str, str]
) -> None:
    status, body = await api(jp_fetch, "runs", pipeline["train"], "images")
    assert status == 200
    listed = {(i["path"], i["media_type"], i["cached"]) for i in body["images"]}
    assert listed == {
        ("fake.png", "image/png", True),
        ("plots/figs/roc.png", "image/png", True),
        ("plots/loss.png", "image/png", True),
        ("plots/shape.svg", "image/svg+xml", True),
    }
    assert body["total"] == 4
    _, none = await api(jp_fetch, "runs", pipeline["evaluate"], "images")
    assert none["images"] == []


async def test_an_image_is_served_with_its_type_and_a_policy_that_runs_no_script(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    client = Client(project)
    run = pipeline["train"]
    png = await call(jp_fetch, "runs", run, "images", hash_of(client, run, "plots/loss.png"))
    assert png.code == 200
    assert png.body == PNG
    assert png.headers["Content-Type"] == "image/png"
    assert png.headers["X-Content-Type-Options"] == "nosniff"

    svg = await call(jp_fetch, "runs", run, "images", hash_of(client, run, "plots/shape.svg"))
    assert svg.code == 200
    assert svg.body == SVG
    assert svg.headers["Content-Type"] == "image/svg+xml"
    policy = svg.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert "script-src" not in policy

    _, listed = await api(jp_fetch, "runs", run, "images")
    inside = next(i for i in listed["images"] if i["path"] == "plots/figs/roc.png")
    nested = await call(jp_fetch, "runs", run, "images", inside["hash"])
    assert (nested.code, nested.body) == (200, PNG + b"\x00")


async def test_only_images_of_that_run_are_served(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    client = Client(project)
    train = pipeline["train"]
    # A blob of the same run that is not an image, an image of another run, a made-up hash.
    for run, digest in (
        (train, hash_of(client, train, "models/m.pkl")),
        (pipeline["evaluate"], hash_of(client, train, "plots/loss.png")),
        (train, "xxh128:" + "0" * 32),
    ):
        status, body = await api(jp_fetch, "runs", run, "images", digest)
        assert status == 404, (run, digest, body)
        assert body["error"]["type"] == "RunNotFoundError"
    # A file named .png that is not one is refused, not handed to the browser.
    status, body = await api(jp_fetch, "runs", train, "images", hash_of(client, train, "fake.png"))
    assert status == 415
    assert "not a image/png" in body["error"]["message"]


@pytest.mark.parametrize(
    "escape", ["..%2F..%2F..%2Fetc%2Fpasswd", "xxh128:..%2F..%2Fruns.duckdb", "%2Fetc%2Fpasswd"]
)
async def test_a_path_in_place_of_a_hash_reaches_no_file(
    jp_fetch: Any, pipeline: dict[str, str], escape: str
) -> None:
    response = await jp_fetch(
        f"nbtrack/api/runs/{pipeline['train']}/images/{escape}",
        params={"path": "proj/train.ipynb"},
        raise_error=False,
    )
    assert response.code == 404
    assert b"root:" not in response.body and b"DUCK" not in response.body


async def test_an_image_whose_bytes_were_not_kept_says_so(jp_fetch: Any, project: Project) -> None:
    (project.root / "plot.png").write_bytes(PNG + b"nocache")
    run = record_run(project, "plot", outputs=["plot.png"], cache=False, **cell(project, "plot"))
    _, listed = await api(jp_fetch, "runs", run, "images")
    [image] = listed["images"]
    assert image["cached"] is False
    status, body = await api(jp_fetch, "runs", run, "images", image["hash"])
    assert status == 404
    assert body["error"]["type"] == "BlobMissingError"
    assert "--no-cache" in body["error"]["message"]


# ------------------------------------------------------------------ models
async def test_models_are_listed_with_versions_linked_to_their_run(
    jp_fetch: Any, pipeline: dict[str, str]
) -> None:
    status, body = await api(jp_fetch, "models")
    assert status == 200
    [model] = body["models"]
    assert (model["name"], model["versions"], model["latest_version"]) == ("clf", 1, 1)
    status, detail = await api(jp_fetch, "models", "clf")
    assert status == 200
    [version] = detail["versions"]
    assert (version["version"], version["run_id"], version["flavor"]) == (
        1,
        pipeline["train"],
        "pickle",
    )
    assert detail["alias_history"] == []
    status, body = await api(jp_fetch, "models", "nope")
    assert status == 404


async def test_an_alias_moves_only_from_where_the_user_saw_it(
    jp_fetch: Any, project: Project, pipeline: dict[str, str]
) -> None:
    path = ("models", "clf", "aliases", "champion")
    status, move = await api(jp_fetch, *path, method="PUT", body={"version": 1, "expected": None})
    assert status == 200
    assert (move["from_version"], move["to_version"]) == (None, 1)
    assert move["host"] and move["user"]
    # A second panel that still believes the alias unset is refused, and nothing moves.
    status, body = await api(jp_fetch, *path, method="PUT", body={"version": 1, "expected": None})
    assert status == 409
    assert body["error"]["type"] == "AliasMovedError"
    assert "now on version 1" in body["error"]["message"]
    _, detail = await api(jp_fetch, "models", "clf")
    assert [m["to_version"] for m in detail["alias_history"]] == [1]
    assert detail["versions"][0]["aliases"] == ["champion"]

    status, body = await api(jp_fetch, *path, method="PUT", body={"version": 7, "expected": 1})
    assert status == 404
    status, body = await api(jp_fetch, *path, method="PUT", body={"version": 1})
    assert status == 400
    assert "expected" in body["error"]["message"]
    status, body = await api(
        jp_fetch,
        "models",
        "clf",
        "aliases",
        "bad alias",
        method="PUT",
        body={"version": 1, "expected": None},
    )
    assert status == 400

    status, removed = await api(jp_fetch, *path, method="DELETE", body={"expected": 1})
    assert status == 200
    assert (removed["from_version"], removed["to_version"]) == (1, None)
    _, detail = await api(jp_fetch, "models", "clf")
    assert [m["to_version"] for m in detail["alias_history"]] == [1, None]


# ------------------------------------------------------------------ drift
async def test_drift_of_a_file_across_its_versions(jp_fetch: Any, project: Project) -> None:
    (project.root / "data").mkdir()
    for shift in (0, 0, 50):
        rows = "\n".join(f"{i + shift},{'ab'[i % 2]}" for i in range(200))
        (project.root / "data" / "t.csv").write_text(f"x,k\n{rows}\n")
        record_run(project, "prep", outputs=["data/t.csv"], **cell(project, "prep"))
    status, report = await api(jp_fetch, "drift", params={"file": "data/t.csv"})
    assert status == 200
    versions = report["versions"]
    assert [v["reference"] for v in versions] == [True, False]  # same content counted once
    assert versions[0]["runs"] == 2
    columns = {c["name"]: c for c in versions[1]["drift"]["columns"]}
    assert columns["x"]["drifted"] is True
    assert columns["x"]["psi"] > 0.2
    assert columns["k"]["drifted"] is False
    assert report["drifted"] is True

    status, body = await api(jp_fetch, "drift")
    assert status == 400
    status, body = await api(jp_fetch, "drift", params={"file": "nowhere.csv"})
    assert status == 400
    assert "no run recorded" in body["error"]["message"]
