"""Bearer-token checks at the HTTP edge."""

from __future__ import annotations

from collections.abc import Collection

import anyio
from redis.exceptions import RedisError
from starlette.requests import Request

from stb_origin.auth.tokens import Claims, InvalidToken, TokenSigner
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="stb-origin"', **NO_STORE}


def bearer_token(request: Request, allow_query: bool = False) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return value.strip()
    if allow_query:
        return request.query_params.get("token")
    return None


async def require_scope(request: Request, signer: TokenSigner, *scopes: str,
                        allow_query: bool = False) -> Claims:
    """The verified token, which must carry at least one of ``scopes``: 401 when
    there is no valid token, 403 when it lacks every one of them."""
    token = bearer_token(request, allow_query=allow_query)
    if token is None:
        raise missing_token()
    # In a worker thread: the deny-list is a Redis call (and the key ring is
    # reread from the database now and then), which must never hold up the
    # event loop that every segment request shares.
    return await anyio.to_thread.run_sync(check_token, signer, token, scopes)


def check_token(signer: TokenSigner, token: str, scopes: Collection[str],
                check_denied: bool = True) -> Claims:
    """require_scope's checks, in the caller's thread (it may wait on Redis and
    the database); check_denied=False leaves the deny-list to the caller."""
    try:
        claims = signer.verify(token, check_denied=check_denied)
    except RedisError:
        raise revocations_unavailable() from None
    except InvalidToken as exc:
        raise invalid_token(str(exc)) from None
    if claims.scopes.isdisjoint(scopes):
        wanted = " ".join(scopes)
        raise ApiError(403, "insufficient_scope",
                       f"this needs the {' or '.join(repr(s) for s in scopes)} scope", {
                           "WWW-Authenticate": f'Bearer error="insufficient_scope",'
                                               f' scope="{wanted}"', **NO_STORE})
    return claims


def missing_token() -> ApiError:
    return ApiError(401, "unauthorized", "a bearer token is required", _CHALLENGE)


def invalid_token(message: str) -> ApiError:
    return ApiError(401, "invalid_token", message, {
        "WWW-Authenticate": 'Bearer realm="stb-origin", error="invalid_token"', **NO_STORE})


def revocations_unavailable() -> ApiError:
    # The deny-list cannot be read: refusing for a moment beats honouring a revoked token.
    return ApiError(503, "unavailable", "token revocation cannot be checked; retry shortly",
                    {"Retry-After": "5", **NO_STORE})
