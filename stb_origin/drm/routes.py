"""Key delivery: the 16-byte AES key, only to an entitled holder of a playback token.

Every request answered after the token was verified is audited (``drm.audit``,
in batches: ``drm.auditwriter``) and counted against its device's rate limit;
``drm.delivery`` does the checks. ``GET /v1/key-audit`` lists the audit for admins.

Key fetches skip the router: ``KeyShortcut`` hands them to ``get_key`` straight
from the access log (see there why). The route stays in the table for what only
the router does: a 405 naming the allowed methods, and the OpenAPI check.
"""

from __future__ import annotations

import logging
import math
import re

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stb_origin import scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, require_admin, run_as_caller
from stb_origin.db.types import ID
from stb_origin.drm import audit, streams
from stb_origin.drm.delivery import NOT_FOUND, RATE_LIMITED, TOO_MANY_STREAMS, KeyDelivery, Origin
from stb_origin.drm.http import preflight, private_headers, refused
from stb_origin.observability import metrics
from stb_origin.web.bearer import bearer_token, missing_token
from stb_origin.web.errors import ApiError, error_response
from stb_origin.web.http import Json, services_of
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.keys")

_DEVICE_FILTER = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Metric reasons for a token refused before anything else (503: the deny-list is down).
_TOKEN_REFUSALS = {401: "unauthorized", 403: "forbidden"}


def delivery_of(request: Request) -> KeyDelivery:
    """This process's key delivery: its cached copies and audit writer live with the app."""
    delivery: KeyDelivery = request.app.state.key_delivery
    return delivery


def _origin(request: Request) -> Origin:
    forwarded = request.headers.getlist("x-forwarded-for")
    return Origin(client_address=request.client.host if request.client else None,
                  forwarded_for=", ".join(forwarded) if forwarded else None,
                  request_id=getattr(request.state, "request_id", None))


async def get_key(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight(request)
    services = services_of(request)
    headers = private_headers(request)
    asset_id, key_id = request.path_params["asset_id"], request.path_params["key_id"]
    try:
        # ?token= too: some players cannot set headers on key requests.
        token = bearer_token(request, allow_query=True)
        if token is None:
            raise missing_token()
        # In the event loop, with a hop to a worker thread only when a cached
        # copy must be read again from the database (drm.delivery).
        outcome = await delivery_of(request).fetch(
            token, asset_id, key_id, _origin(request), services.settings.key_requests_per_minute)
    except ApiError as exc:
        metrics.KEY_REFUSALS.labels(_TOKEN_REFUSALS.get(exc.status, "unavailable")).inc()
        # Refusals carry the private headers too (so a web player can read them).
        raise ApiError(exc.status, exc.code, exc.message,
                       {**(exc.headers or {}), **headers}) from None
    claims = outcome.claims
    fields = {"asset_id": asset_id[:32], "key_id": key_id[:64],
              "subject": claims.subject, "device_id": claims.device_id}
    if outcome.key is not None:
        metrics.KEY_DELIVERIES.inc()
        # Debug only: every delivery is in the audit table and the access log already,
        # and a third JSON line per fetch costs more than the checks themselves.
        log.debug("key delivered", extra=fields)
        return Response(outcome.key, media_type="application/octet-stream", headers=headers)
    metrics.KEY_REFUSALS.labels(outcome.name).inc()
    log.info("key refused", extra={**fields, "reason": outcome.name})
    if outcome.refusal is not None:
        return refused(outcome.refusal, headers)
    if outcome.name == TOO_MANY_STREAMS:
        # 403, not 429: waiting does not help until another box of the account stops.
        return error_response(403, TOO_MANY_STREAMS,
                              streams.too_many_message(delivery_of(request).streams), headers)
    if outcome.name == RATE_LIMITED:
        return error_response(429, RATE_LIMITED, "too many key requests; slow down", {
            **headers, "Retry-After": str(max(1, math.ceil(outcome.retry_after_s)))})
    return error_response(404, NOT_FOUND, "no such key", headers)


async def list_key_audit(request: Request) -> JSONResponse:
    claims = await claims_with(request, scopes.ADMIN)
    limit, after = page_params(request)
    asset = request.query_params.get("asset") or None
    device = request.query_params.get("device") or None
    if asset is not None and not ID.fullmatch(asset):
        raise ApiError(400, "bad_request", "asset: an asset id")
    if device is not None and not _DEVICE_FILTER.match(device):
        raise ApiError(400, "bad_request", "device: a device id")

    def work(session: Session, caller: Caller) -> list[Json]:
        require_admin(caller)
        return [row.to_json() for row in audit.page(session, limit + 1, after, asset, device)]

    # This process's rows still waiting for their batch are listed too; other
    # processes' rows appear within their writer's flush interval.
    await anyio.to_thread.run_sync(delivery_of(request).audit.flush)

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/key-audit", "id", {"asset": asset, "device": device})


_KEY_ROUTE = Route("/keys/{asset_id:str}/{key_id:str}", get_key, methods=["GET", "OPTIONS"])


class KeyShortcut:
    """Key fetches straight to ``get_key``, past Starlette's exception layer,
    router and endpoint wrappers: a box fetches a key at every start and key
    rotation, and those layers took about a fifth of the event loop's time
    (bench/key_delivery.py: without them one core serves ~20 % more fetches,
    with a lower p99). The key route's own path and methods (HEAD included)
    decide what is taken; the answers are the same: ``get_key``'s own, or its
    ApiError as the exception handlers would write it. Other methods go on to
    the router (its 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in (_KEY_ROUTE.methods or ()) and (
                match := _KEY_ROUTE.path_regex.match(scope["path"])):
            scope["path_params"] = match.groupdict()
            try:
                response = await get_key(Request(scope, receive))
            except ApiError as exc:
                response = error_response(exc.status, exc.code, exc.message, exc.headers)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


ROUTES = [
    _KEY_ROUTE,
    Route("/v1/key-audit", list_key_audit, methods=["GET"]),
]
