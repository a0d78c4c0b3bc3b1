"""GET /v1/sync: one page of a box's offline copy (the protocol: ``sync.pages``)."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, forbidden, run_as_caller
from stb_origin.catalog import browse
from stb_origin.db.types import utcnow
from stb_origin.sync import pages
from stb_origin.sync.cursor import BadCursor, Cursor, open_cursor, seal
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import Json, services_of

DEFAULT_LIMIT = 500
MAX_LIMIT = 2000
# Pages are JSON of many similar items: gzip makes them about a tenth (bench/sync.py).
GZIP_ABOVE = 1024


def _limit(request: Request) -> int:
    value = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit: an integer from 1 to {MAX_LIMIT}")
    return int(value)


async def get_sync(request: Request) -> Response:
    claims = await claims_with(request, scopes.PLAYBACK, scopes.ACCOUNT)
    services = services_of(request)
    limit = _limit(request)
    text = request.query_params.get("cursor")
    keep = timedelta(days=services.settings.sync_cursor_days)

    def work(session: Session, caller: Caller) -> Json:
        if caller.account_id is None:
            raise forbidden("sync is for an account's boxes; this token has no account")
        try:
            viewer = browse.viewer_of(session, caller, utcnow())
        except browse.NoDevice:
            raise forbidden("sync is for boxes: this token is bound to no device") from None
        cursor: Cursor | None = None
        if text is not None:
            try:
                cursor = open_cursor(services.envelope, caller.account_id, text)
            except BadCursor as exc:
                raise ApiError(400, "bad_cursor", str(exc)) from None
        box = pages.Box(caller.account_id, viewer, services.settings.public_base_url)
        page = pages.next_page(session, box, cursor, limit, keep)
        return {
            "reset": page.reset,
            "phase": page.cursor.phase,
            "upserts": [item.to_json() for item in page.items if item.data is not None],
            "deletes": [item.to_json() for item in page.items if item.data is None],
            "cursor": seal(services.envelope, caller.account_id, page.cursor),
            "more": page.more,
        }

    body = json.dumps(await run_as_caller(request, claims, work),
                      separators=(",", ":"), ensure_ascii=False).encode()
    headers = {**NO_STORE, "Vary": "Accept-Encoding"}
    if len(body) > GZIP_ABOVE and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


ROUTES = [Route("/v1/sync", get_sync, methods=["GET"])]
