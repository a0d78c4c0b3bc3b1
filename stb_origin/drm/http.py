"""The HTTP edge shared by /keys and /v1/playback: private answers, credentialed
CORS for the web players of STB_CORS_ORIGINS, the playback token, refusals."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stb_origin.auth.http import require_scope
from stb_origin.auth.tokens import Claims
from stb_origin.drm.access import PlaybackRefused
from stb_origin.errors import ApiError, error_response
from stb_origin.origin.cors import credentialed_headers, credentialed_preflight
from stb_origin.services import Services

NO_STORE = {"Cache-Control": "private, no-store", "Pragma": "no-cache"}
PLAYBACK_SCOPE = "playback"


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def private_headers(request: Request) -> dict[str, str]:
    """Never stored anywhere; CORS for an allowed web player."""
    allowed = services_of(request).settings.cors_origins
    return {**NO_STORE, **credentialed_headers(request.headers.get("origin"), allowed)}


def preflight(request: Request) -> Response:
    allowed = services_of(request).settings.cors_origins
    return Response(status_code=204, headers={
        **NO_STORE, **credentialed_preflight(request.headers.get("origin"), allowed)})


async def playback_claims(request: Request, headers: dict[str, str],
                          allow_query: bool = False) -> Claims:
    """The verified playback token; refusals carry ``headers`` (so a web player
    can read them)."""
    try:
        return await require_scope(request, services_of(request).signer, PLAYBACK_SCOPE,
                                   allow_query=allow_query)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.message,
                       {**(exc.headers or {}), **headers}) from None


def refused(exc: PlaybackRefused, headers: dict[str, str]) -> Response:
    return error_response(403, exc.reason.value, str(exc), headers)
