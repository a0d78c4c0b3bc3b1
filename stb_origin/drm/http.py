"""The HTTP edge shared by /keys and /v1/playback: private answers, credentialed
CORS for the web players of STB_CORS_ORIGINS, the playback token, refusals."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from stb_origin import scopes
from stb_origin.auth.tokens import Claims
from stb_origin.drm.access import PlaybackRefused
from stb_origin.web.bearer import require_scope
from stb_origin.web.cors import credentialed_headers, credentialed_preflight
from stb_origin.web.errors import ApiError, error_response
from stb_origin.web.headers import NO_STORE_PRIVATE
from stb_origin.web.http import services_of


def private_headers(request: Request) -> dict[str, str]:
    """Never stored anywhere; CORS for an allowed web player."""
    allowed = services_of(request).settings.cors_origins
    return {**NO_STORE_PRIVATE, **credentialed_headers(request.headers.get("origin"), allowed)}


def preflight(request: Request) -> Response:
    allowed = services_of(request).settings.cors_origins
    return Response(status_code=204, headers={
        **NO_STORE_PRIVATE, **credentialed_preflight(request.headers.get("origin"), allowed)})


async def playback_claims(request: Request, headers: dict[str, str],
                          allow_query: bool = False) -> Claims:
    """The verified playback token; refusals carry ``headers`` (so a web player
    can read them)."""
    try:
        return await require_scope(request, services_of(request).signer, scopes.PLAYBACK,
                                   allow_query=allow_query)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.message,
                       {**(exc.headers or {}), **headers}) from None


def refused(exc: PlaybackRefused, headers: dict[str, str]) -> Response:
    return error_response(403, exc.reason.value, str(exc), headers)
