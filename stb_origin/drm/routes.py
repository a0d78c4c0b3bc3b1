"""Key delivery: the 16-byte AES key, only to a holder of a valid playback token."""

from __future__ import annotations

import logging
import re

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stb_origin import metrics
from stb_origin.auth.http import require_scope
from stb_origin.drm import keystore
from stb_origin.errors import ApiError
from stb_origin.services import Services

log = logging.getLogger("stb_origin.keys")

_ID = re.compile(r"^[0-9a-f]{32}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NO_STORE = {"Cache-Control": "private, no-store", "Pragma": "no-cache"}


async def get_key(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        claims = require_scope(request, services.signer, "playback", allow_query=True)
    except ApiError as exc:
        metrics.KEY_REFUSALS.labels("forbidden" if exc.status == 403 else "unauthorized").inc()
        raise
    asset_id = request.path_params["asset_id"]
    key_id = request.path_params["key_id"]
    if not _ID.match(asset_id) or not _KEY_ID.match(key_id):
        raise _not_found()

    def load() -> bytes | None:
        with services.db.session() as session:
            return keystore.load(session, asset_id, key_id, services.envelope)

    key = await anyio.to_thread.run_sync(load)
    if key is None:
        raise _not_found()
    metrics.KEY_DELIVERIES.inc()
    log.info("key delivered", extra={"asset_id": asset_id, "key_id": key_id,
                                     "subject": claims.subject, "device_id": claims.device_id})
    return Response(key, media_type="application/octet-stream", headers=NO_STORE)


def _not_found() -> ApiError:
    metrics.KEY_REFUSALS.labels("not_found").inc()
    return ApiError(404, "not_found", "no such key", NO_STORE)


ROUTES = [Route("/keys/{asset_id:str}/{key_id:str}", get_key, methods=["GET"])]
