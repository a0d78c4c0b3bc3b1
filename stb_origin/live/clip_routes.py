"""POST /v1/channels/{channel_id}/clips: live-to-VOD for the content team.

The answer is the new asset (``queued``; follow it at /v1/assets/{id} like an
upload) with the window it was cut to: the segments overlapping the asked one.
"""

from __future__ import annotations

import logging

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.db.types import utcnow
from stb_origin.live import clips
from stb_origin.pipeline import queue_run
from stb_origin.web.bearer import require_scope
from stb_origin.web.errors import ApiError
from stb_origin.web.http import Json, json_response, path_id, services_of
from stb_origin.web.jsonbody import read_object

log = logging.getLogger("stb_origin.live")

MAX_TITLE = 500


async def create_clip(request: Request) -> Response:
    services = services_of(request)
    claims = await require_scope(request, services.signer, scopes.ASSETS_WRITE)
    channel_id = path_id(request, "channel_id", "channel")
    body = await read_object(request, {"start", "end", "title"})
    start, end = body.optional_time("start"), body.optional_time("end")
    if start is None or end is None:
        raise ApiError(400, "bad_request", "start and end are required: ISO 8601 times with"
                                           " an offset, e.g. 2026-12-07T20:00:00Z")
    title = body.text("title").strip()
    if not title or len(title) > MAX_TITLE:
        raise ApiError(400, "bad_request", f"title: 1 to {MAX_TITLE} characters")

    def create() -> Json:
        with services.db.session() as session:
            asset, clip = clips.create(session, channel_id, start, end, title, utcnow())
            return {**asset.to_json(), "clip": clip.to_json()}

    try:
        answer = await anyio.to_thread.run_sync(create)
    except LookupError:
        raise ApiError(404, "not_found", "no such channel") from None
    except clips.ClipError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    await anyio.to_thread.run_sync(queue_run, services, answer["id"])
    log.info("clip requested", extra={"asset_id": answer["id"], "channel_id": channel_id,
                                      "subject": claims.subject})
    return json_response(answer, 202, f"/v1/assets/{answer['id']}")


ROUTES = [Route("/v1/channels/{channel_id:str}/clips", create_clip, methods=["POST"])]
