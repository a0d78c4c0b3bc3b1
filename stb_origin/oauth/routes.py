"""The OAuth endpoints over HTTP: device authorization, token, revocation, metadata, JWKS.

Requests are form-encoded (RFC 6749 §3.2); every answer is JSON and, except
the JWKS, never cached. The work runs in a worker thread (database, scrypt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stb_origin import scopes
from stb_origin.oauth import service, verify_page
from stb_origin.oauth.client_auth import credentials_from
from stb_origin.oauth.errors import NO_STORE, OAuthError, invalid_request
from stb_origin.oauth.http import clock_of
from stb_origin.oauth.models import GrantType
from stb_origin.services import Services
from stb_origin.web.forms import FormError, read_form
from stb_origin.web.http import services_of

JWKS_CACHE = {"Cache-Control": "public, max-age=300"}
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

Work = Callable[[Services, Any, dict[str, str], float], Any]


async def _run(request: Request, work: Work) -> Any:
    """Parse the form and the client's credentials, then do ``work`` in a thread."""
    try:
        form = await read_form(request)
    except FormError as exc:
        raise invalid_request(str(exc)) from None
    credentials = credentials_from(form, request.headers.get("authorization"))
    now = clock_of(request)()
    return await anyio.to_thread.run_sync(work, services_of(request), credentials, form, now)


def _oauth(handler: Callable[[Request], Awaitable[Response]]
           ) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except OAuthError as exc:
            return exc.response()
    return answer


@_oauth
async def device_authorization(request: Request) -> Response:
    body = await _run(request, service.authorize_device)
    return JSONResponse(body, headers=NO_STORE)


@_oauth
async def token(request: Request) -> Response:
    tokens = await _run(request, service.exchange)
    return JSONResponse(tokens.to_json(), headers=NO_STORE)


@_oauth
async def revoke(request: Request) -> Response:
    await _run(request, service.revoke)
    return Response(status_code=200, headers=NO_STORE)


async def metadata(request: Request) -> Response:
    """RFC 8414; the issuer is the URL this document is served under."""
    base = services_of(request).settings.public_base_url.rstrip("/")
    body = {
        "issuer": services_of(request).settings.issuer,
        "token_endpoint": f"{base}/oauth/token",
        "device_authorization_endpoint": f"{base}/oauth/device_authorization",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [g.value for g in GrantType],
        "response_types_supported": [],  # no authorization endpoint
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "scopes_supported": sorted(scopes.ALL),
    }
    return JSONResponse(body, headers=NO_STORE)


async def jwks(request: Request) -> Response:
    # Short caching: a key published ahead of its use reaches verifiers in time.
    keys = await anyio.to_thread.run_sync(services_of(request).signer.jwks)
    return JSONResponse(keys, headers=JWKS_CACHE)


ROUTES = [
    Route("/oauth/device_authorization", device_authorization, methods=["POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    *verify_page.ROUTES,
]
