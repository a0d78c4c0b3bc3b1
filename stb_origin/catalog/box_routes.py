"""GET /v1/titles and /v1/titles/{id}: the catalog as a box sees it (``catalog.browse``).

Answers depend on the account (its entitlements) and the box (what it plays),
so they are ``private``: a box's own cache may keep them briefly, a shared one
never. Each carries a strong ETag of its body; a box that sends it back in
If-None-Match gets a 304 without the body.
"""

from __future__ import annotations

import hashlib
import json
import re

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, run_as_caller
from stb_origin.catalog import browse
from stb_origin.catalog.browse import Criteria, Viewer
from stb_origin.catalog.routes import cursor_param, list_filters
from stb_origin.catalog.titles import MAX_AGE_LIMIT, SLUG
from stb_origin.catalog.view import box_json
from stb_origin.db.types import utcnow
from stb_origin.origin.conditional import parse_etags
from stb_origin.web.errors import ApiError
from stb_origin.web.http import Json, path_id, services_of
from stb_origin.web.paging import page_body, page_params

PATH = "/v1/titles"
# Long enough to spare a box that pages back and forth, short enough that a new
# entitlement or title shows within it.
MAX_AGE_S = 30
PRIVATE = {"Cache-Control": f"private, max-age={MAX_AGE_S}", "Vary": "Authorization"}


def _viewer(session: Session, caller: Caller) -> Viewer:
    try:
        return browse.viewer_of(session, caller, utcnow())
    except browse.NoDevice:
        raise ApiError(403, "no_device", "browsing needs a token bound to a device") from None


def _criteria(request: Request) -> Criteria:
    kind, series, search = list_filters(request)
    genre = request.query_params.get("genre") or None
    if genre is not None and not SLUG.fullmatch(genre):
        raise ApiError(400, "bad_request", "genre: a genre slug")
    raw_age = request.query_params.get("max_age") or None
    max_age = None
    if raw_age is not None:
        if not re.fullmatch(r"[0-9]{1,2}", raw_age) or int(raw_age) > MAX_AGE_LIMIT:
            raise ApiError(400, "bad_request", f"max_age: an integer from 0 to {MAX_AGE_LIMIT}")
        max_age = int(raw_age)
    return Criteria(kind=kind, genre=genre, series=series, search=search, max_age=max_age)


def private_json(request: Request, body: Json) -> Response:
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
    headers = {**PRIVATE, "ETag": etag}
    tags = parse_etags(request.headers.get("if-none-match", "")) or []
    if "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags):
        return Response(status_code=304, headers=headers)
    return Response(encoded, media_type="application/json", headers=headers)


async def list_titles(request: Request) -> Response:
    claims = await claims_with(request, scopes.PLAYBACK)
    limit, after = page_params(request)
    after = cursor_param(after)
    criteria = _criteria(request)
    base_url = services_of(request).settings.public_base_url

    def work(session: Session, caller: Caller) -> list[Json]:
        found, playable = browse.page(session, _viewer(session, caller), criteria, limit, after)
        return box_json(session, found, base_url, playable)

    items = await run_as_caller(request, claims, work)
    max_age = None if criteria.max_age is None else str(criteria.max_age)
    return private_json(request, page_body(items, limit, PATH, "id", {
        "kind": criteria.kind, "genre": criteria.genre, "series": criteria.series,
        "q": criteria.search, "max_age": max_age}))


async def get_title(request: Request) -> Response:
    claims = await claims_with(request, scopes.PLAYBACK)
    title_id = path_id(request, "title_id", "title")
    base_url = services_of(request).settings.public_base_url

    def work(session: Session, caller: Caller) -> Json | None:
        found = browse.one(session, _viewer(session, caller), title_id)
        if found is None:
            return None
        title, assets = found
        return box_json(session, [title], base_url, {title.id: assets})[0]

    body = await run_as_caller(request, claims, work)
    if body is None:
        # The same answer as for no title at all: a box learns nothing of what it may not see.
        raise ApiError(404, "not_found", "no such title")
    return private_json(request, body)


ROUTES = [
    Route(PATH, list_titles, methods=["GET"]),
    Route(PATH + "/{title_id:str}", get_title, methods=["GET"]),
]
