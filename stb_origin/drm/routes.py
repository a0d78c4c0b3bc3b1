"""Key delivery: the 16-byte AES key, only to an entitled holder of a playback token.

Every request answered after the token was verified is audited (``drm.audit``)
and counted against its device's rate limit. ``GET /v1/key-audit`` lists the
audit for admins.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import anyio
from redis.exceptions import RedisError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stb_origin import ratelimit, scopes
from stb_origin.accounts.caller import Caller
from stb_origin.accounts.http import claims_with, require_admin, run_as_caller
from stb_origin.auth.tokens import Claims
from stb_origin.db.types import ID, utcnow
from stb_origin.drm import audit, keystore
from stb_origin.drm.access import PlaybackRefused, authorize_playback
from stb_origin.drm.http import playback_claims, preflight, private_headers, refused
from stb_origin.drm.keys import KEY_ID
from stb_origin.observability import metrics
from stb_origin.services import Services
from stb_origin.web.errors import ApiError, error_response
from stb_origin.web.http import Json, services_of
from stb_origin.web.paging import page_params, paged

log = logging.getLogger("stb_origin.keys")

_DEVICE_FILTER = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
RATE_WINDOW_S = 60
NOT_FOUND = "not_found"
RATE_LIMITED = "rate_limited"
# Metric reasons for a token refused before anything else (503: the deny-list is down).
_TOKEN_REFUSALS = {401: "unauthorized", 403: "forbidden"}


@dataclass(frozen=True)
class _Outcome:
    name: str  # audit.DELIVERED, a Refusal, NOT_FOUND or RATE_LIMITED
    key: bytes | None = None
    refusal: PlaybackRefused | None = None
    retry_after_s: float = 0.0


def _key_request(request: Request, claims: Claims) -> audit.KeyRequest:
    forwarded = request.headers.getlist("x-forwarded-for")
    return audit.KeyRequest(
        subject=claims.subject, device_id=claims.device_id, client_id=claims.client_id,
        # Path values as sent, cut to the columns: a malformed id is audited too.
        asset_id=request.path_params["asset_id"][:32],
        key_id=request.path_params["key_id"][:64],
        client_address=request.client.host if request.client else None,
        forwarded_for=", ".join(forwarded) if forwarded else None,
        request_id=getattr(request.state, "request_id", None))


def _rate_key(claims: Claims) -> str:
    # Per device; a token bound to none (the operator, an admin) counts per subject.
    return f"device:{claims.device_id}" if claims.device_id else f"subject:{claims.subject}"


def _rate_limited(services: Services, claims: Claims) -> float | None:
    """Seconds to wait, or None. With Redis down, keys keep flowing: refusing
    would stop every box at once."""
    try:
        return ratelimit.hit(services.redis, f"keys:{_rate_key(claims)}",
                             services.settings.key_requests_per_minute, RATE_WINDOW_S)
    except RedisError as exc:
        log.warning("key rate limit unavailable", extra={"error": str(exc)})
        return None


def _first_refusal_in_window(services: Services, claims: Claims) -> bool:
    # A box over its limit is audited once a window, not once a request: a
    # flood must not turn into a flood of audit rows.
    try:
        return ratelimit.hit(services.redis, f"keys-audited:{_rate_key(claims)}", 1,
                             RATE_WINDOW_S) is None
    except RedisError:
        return True


def _deliver(services: Services, claims: Claims, asset_id: str, key_id: str,
             wanted: audit.KeyRequest) -> _Outcome:
    """In a worker thread: rate limit, authorization, key and audit, one session."""
    now = utcnow()
    retry = _rate_limited(services, claims)
    if retry is not None:
        if _first_refusal_in_window(services, claims):
            with services.db.session() as session:
                audit.record(session, wanted, RATE_LIMITED, now)
        return _Outcome(RATE_LIMITED, retry_after_s=retry)
    with services.db.session() as session:
        try:
            viewer = authorize_playback(session, claims, asset_id, now)
        except PlaybackRefused as exc:
            audit.record(session, wanted, exc.reason, now, exc.account_id)
            return _Outcome(exc.reason, refusal=exc)
        key = None
        if ID.fullmatch(asset_id) and KEY_ID.fullmatch(key_id):
            key = keystore.load(session, asset_id, key_id, services.envelope)
        outcome = audit.DELIVERED if key is not None else NOT_FOUND
        audit.record(session, wanted, outcome, now, viewer.account_id)
        return _Outcome(outcome, key=key)


async def get_key(request: Request) -> Response:
    if request.method == "OPTIONS":
        return preflight(request)
    services = services_of(request)
    headers = private_headers(request)
    try:
        # ?token= too: some players cannot set headers on key requests.
        claims = await playback_claims(request, headers, allow_query=True)
    except ApiError as exc:
        metrics.KEY_REFUSALS.labels(_TOKEN_REFUSALS.get(exc.status, "unavailable")).inc()
        raise
    asset_id, key_id = request.path_params["asset_id"], request.path_params["key_id"]
    wanted = _key_request(request, claims)
    outcome = await anyio.to_thread.run_sync(_deliver, services, claims, asset_id, key_id,
                                             wanted)
    fields = {"asset_id": wanted.asset_id, "key_id": wanted.key_id,
              "subject": claims.subject, "device_id": claims.device_id}
    if outcome.key is not None:
        metrics.KEY_DELIVERIES.inc()
        log.info("key delivered", extra=fields)
        return Response(outcome.key, media_type="application/octet-stream", headers=headers)
    metrics.KEY_REFUSALS.labels(outcome.name).inc()
    log.info("key refused", extra={**fields, "reason": outcome.name})
    if outcome.refusal is not None:
        return refused(outcome.refusal, headers)
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

    items = await run_as_caller(request, claims, work)
    return paged(items, limit, "/v1/key-audit", "id", {"asset": asset, "device": device})


ROUTES = [
    Route("/keys/{asset_id:str}/{key_id:str}", get_key, methods=["GET", "OPTIONS"]),
    Route("/v1/key-audit", list_key_audit, methods=["GET"]),
]
