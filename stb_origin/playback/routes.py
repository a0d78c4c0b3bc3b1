"""GET /v1/playback/{asset_id}: where an entitled device plays an asset from.

The answer names the master playlist filtered for the device's capabilities
(``origin.masters``), signed for STB_PLAYBACK_URL_TTL_S when URL signing is on:

    {"asset": "<id>", "manifest_url": "<url>", "expires_at": "<ISO 8601>" | null}

``expires_at`` is null when URLs are not signed (they do not expire). The same
check as key delivery decides who may play (``drm.access``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stb_origin.auth.tokens import Claims
from stb_origin.db.types import ID, utcnow
from stb_origin.drm.access import PlaybackRefused, Viewer, authorize_playback
from stb_origin.drm.http import playback_claims, preflight, private_headers, refused
from stb_origin.origin.masters import Filter, canonical_name
from stb_origin.origin.urlsign import UrlSigner
from stb_origin.services import Services
from stb_origin.storage import ObjectNotFound, StorageUnavailable, layout
from stb_origin.web.errors import error_response
from stb_origin.web.http import services_of

log = logging.getLogger("stb_origin.playback")



def _device_filter(viewer: Viewer) -> Filter:
    caps = viewer.capabilities
    if caps is None:  # the operator or an admin without a device: everything
        return Filter()
    return Filter.for_device(caps.max_width, caps.max_height, caps.codecs, caps.video_ranges)


def _prepare(services: Services, claims: Claims, asset_id: str,
             now: datetime) -> PlaybackRefused | tuple[Viewer, bytes | None]:
    """In a worker thread: who plays, then the master (None when not published)."""
    with services.db.session() as session:
        try:
            viewer = authorize_playback(session, claims, asset_id, now)
        except PlaybackRefused as exc:
            return exc
    try:
        return viewer, b"".join(services.storage.read_chunks(layout.master_key(asset_id)))
    except ObjectNotFound:
        return viewer, None


async def start_playback(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight(request)
    services = services_of(request)
    settings = services.settings
    headers = private_headers(request)
    claims = await playback_claims(request, headers)
    asset_id = request.path_params["asset_id"]
    if not ID.fullmatch(asset_id):
        return error_response(404, "not_found", "no such asset", headers)
    now = utcnow()
    try:
        prepared = await anyio.to_thread.run_sync(_prepare, services, claims, asset_id, now)
    except StorageUnavailable:
        return error_response(503, "storage_unavailable", "storage is unavailable; try again",
                              {**headers, "Retry-After": "5"})
    if isinstance(prepared, PlaybackRefused):
        log.info("playback refused", extra={"asset_id": asset_id, "subject": claims.subject,
                                            "device_id": claims.device_id,
                                            "reason": prepared.reason.value})
        return refused(prepared, headers)
    viewer, master = prepared
    if master is None:
        return error_response(404, "not_found", "this asset is not published", headers)
    name = canonical_name(master, _device_filter(viewer))
    if name is None:
        return error_response(409, "not_playable",
                              "no variant of this asset suits the device's capabilities",
                              headers)
    path = f"/hls/{asset_id}/{name}"
    signer = UrlSigner(settings.url_signing_secrets)
    expires_at = None
    if signer.enabled:
        expires = int(now.timestamp()) + settings.playback_url_ttl_s
        path = signer.sign(path, expires)
        expires_at = datetime.fromtimestamp(expires, UTC)
    log.info("playback started", extra={"asset_id": asset_id, "subject": viewer.subject,
                                        "device_id": viewer.device_id, "form": name})
    return JSONResponse({
        "asset": asset_id,
        "manifest_url": settings.public_base_url.rstrip("/") + path,
        "expires_at": expires_at.isoformat() if expires_at is not None else None,
    }, headers=headers)


ROUTES = [Route("/v1/playback/{asset_id:str}", start_playback, methods=["GET", "OPTIONS"])]
