"""REST handlers behind the panel's run views: lineage, image previews, the model
registry (list, versions, alias moves) and data drift. Thin doors into the client,
the registry and the drift reports, on the base handler of ``handlers``."""

from __future__ import annotations

import json
from typing import Any

import tornado.web

from nbtrack.exceptions import UsageError
from nbtrack.models import json_value
from nbtrack.server.handlers import NbtrackHandler

#: What an image response may do in a browser: show itself, nothing else. An SVG opened
#: on its own runs no script and loads nothing (``sandbox`` makes it a unique origin).
IMAGE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
#: How many runs per data version a lineage request may ask for.
MAX_FANOUT = 100


class RunLineageHandler(NbtrackHandler):
    """``GET runs/{ref}/lineage?depth=1``: a run's neighbours by data, values and models."""

    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        depth = self.int_arg("depth", 1, 1, 5)
        fanout = self.int_arg("fanout", 20, 1, MAX_FANOUT)
        client = self.client()
        self.reply(
            await self.in_thread(lambda: client.run_lineage(ref, depth=depth, fanout=fanout))
        )


class RunImagesHandler(NbtrackHandler):
    """``GET runs/{ref}/images``: the images a run wrote (path, hash, type, kept or not)."""

    @tornado.web.authenticated
    async def get(self, ref: str) -> None:
        from nbtrack.runimages import run_images

        client = self.client()

        def load() -> dict[str, Any]:
            images, total = run_images(client, ref)
            return {
                "run_id": client.resolve(ref),
                "images": [i.to_dict() for i in images],
                "total": total,
            }

        self.reply(await self.in_thread(load))


class RunImageHandler(NbtrackHandler):
    """``GET runs/{ref}/images/{hash}``: the bytes of one image the run wrote.

    Only a hash the run recorded as an image output is served, with its media type, a
    Content-Security-Policy that lets no script run (SVG) and ``nosniff``.
    """

    @tornado.web.authenticated
    async def get(self, ref: str, digest: str) -> None:
        from nbtrack.runimages import image_file

        client = self.client()
        path, image = await self.in_thread(image_file, client, ref, digest)
        data = await self.in_thread(path.read_bytes)
        self.set_header("Content-Security-Policy", IMAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        # Content-addressed: the bytes behind a hash never change.
        self.set_header("Cache-Control", "private, max-age=31536000, immutable")
        self.finish(data, set_content_type=image.media_type)


class ModelsHandler(NbtrackHandler):
    """``GET models``: every registered model with its version count and aliases."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from nbtrack.registry.core import Registry

        client = self.client()
        models = await self.in_thread(lambda: Registry(client).models())
        self.reply({"models": [m.to_dict() for m in models]})


class ModelHandler(NbtrackHandler):
    """``GET models/{name}``: one model, its versions (newest first) and alias history."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        from nbtrack.registry.core import Registry

        client = self.client()

        def load() -> dict[str, Any]:
            registry = Registry(client)
            return {
                "model": registry.model(name).to_dict(),
                "versions": [v.to_dict() for v in reversed(registry.versions(name))],
                "alias_history": [m.to_dict() for m in registry.history(name)],
            }

        self.reply(json_value(await self.in_thread(load)))


class ModelAliasHandler(NbtrackHandler):
    """``PUT models/{name}/aliases/{alias}`` with ``{"version": N, "expected": M|null}``
    moves an alias; ``DELETE`` removes it. ``expected`` is the version the user saw the
    alias on: when the alias moved since, nothing changes and the answer is 409."""

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except (ValueError, RecursionError):  # (a body nested 100,000 deep: 500 before)
            raise UsageError('the body must be JSON: {"version": N}') from None
        if not isinstance(body, dict):
            raise UsageError('the body must be a JSON object: {"version": N}')
        return body

    @tornado.web.authenticated
    async def put(self, name: str, alias: str) -> None:
        body = self._body()
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise UsageError('version must be a version number, e.g. {"version": 3}')
        await self._move(name, alias, version, body)

    @tornado.web.authenticated
    async def delete(self, name: str, alias: str) -> None:
        await self._move(name, alias, None, self._body())

    async def _move(self, name: str, alias: str, version: int | None, body: dict[str, Any]) -> None:
        from nbtrack.registry.core import Registry

        client = self.client()
        if "expected" not in body:
            raise UsageError(
                'say which version the alias is on now: "expected": N, or null when it is not set'
            )
        expected = body["expected"]
        if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
            raise UsageError("expected must be a version number or null")

        def move() -> dict[str, Any]:
            return Registry(client).move_alias_from(name, alias, expected, version).to_dict()

        self.reply(await self.in_thread(move))


class DriftHandler(NbtrackHandler):
    """``GET drift?file=PATH[&ref=RUN|HASH]``: every recorded version of a tabular file
    (or folder of tables) against a reference version, per column."""

    @tornado.web.authenticated
    async def get(self) -> None:
        from nbtrack.driftreport import drift_path

        file = self.str_arg("file")
        if file is None:
            raise UsageError("drift needs a data path: ?file=data/train.csv")
        ref = self.str_arg("ref")
        client = self.client()
        report = await self.in_thread(lambda: drift_path(client, file, ref=ref))
        # A statistic of an empty column is NaN: sent as "NaN", as every float here.
        self.reply(json_value(report.to_dict()))
