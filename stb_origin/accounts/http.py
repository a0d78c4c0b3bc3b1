"""The accounts API's edge: who calls, what they may touch, pages and JSON answers.

Handlers verify the token here, then run their database work through
``run_as_caller``: one worker thread, one transaction, the caller identified
from the token, and domain refusals turned into JSON errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse

from stb_origin.accounts.caller import ADMIN_SCOPE, Caller, UnknownCaller, identify
from stb_origin.accounts.errors import AlreadyExists, DeviceLimitReached, InvalidValue, NotFound
from stb_origin.auth.http import require_scope
from stb_origin.auth.tokens import Claims
from stb_origin.errors import ApiError
from stb_origin.services import Services

T = TypeVar("T")
_ID = re.compile(r"[0-9a-f]{32}")
NO_STORE = {"Cache-Control": "no-store"}
Json = dict[str, Any]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def claims_with(request: Request, *scopes: str) -> Claims:
    """The verified token, which must carry at least one of ``scopes``."""
    return await require_scope(request, services_of(request).signer, *scopes)


async def run_as_caller(request: Request, claims: Claims,
                        work: Callable[[Session, Caller], T]) -> T:
    """``work`` in a worker thread, in one transaction, for the identified caller;
    domain refusals become JSON errors here."""
    services = services_of(request)

    def run() -> T:
        with services.db.session() as session:
            return work(session, identify(session, claims))

    try:
        return await anyio.to_thread.run_sync(run)
    except UnknownCaller as exc:
        raise ApiError(401, "invalid_token", str(exc), {
            "WWW-Authenticate": 'Bearer realm="stb-origin", error="invalid_token"',
            **NO_STORE}) from None
    except InvalidValue as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except AlreadyExists as exc:
        raise ApiError(409, "already_exists", str(exc)) from None
    except DeviceLimitReached as exc:
        raise ApiError(409, "device_limit_reached", str(exc)) from None


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message, NO_STORE)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise forbidden("this needs an admin")


async def admin_claims(request: Request) -> Claims:
    """The token of an admin, checked before a body is read: a refused caller
    learns nothing from our validation messages."""
    claims = await claims_with(request, ADMIN_SCOPE)
    await run_as_caller(request, claims, lambda _session, caller: require_admin(caller))
    return claims


def require_access(caller: Caller, account_id: str) -> None:
    if not caller.acts_for(account_id):
        raise forbidden("this belongs to another account")


def account_filter(caller: Caller, requested: str | None) -> str | None:
    """Which account a listing covers: any (None) or the one asked for, for an
    admin; the caller's own otherwise."""
    if caller.is_admin:
        return requested
    target = requested or caller.account_id
    if target is None:
        raise forbidden("this token has no account")
    require_access(caller, target)
    return target


def path_id(request: Request, name: str, what: str) -> str:
    value: str = request.path_params[name]
    if not _ID.fullmatch(value):
        raise ApiError(404, "not_found", f"no such {what}")
    return value


def paged(items: list[Json], limit: int, path: str, cursor: str,
           filters: dict[str, str | None] | None = None) -> JSONResponse:
    """``items`` holds up to limit + 1 entries: the extra one says there is more."""
    more = len(items) > limit
    items = items[:limit]
    next_url = None
    if more:
        query = {k: v for k, v in (filters or {}).items() if v is not None}
        query.update(limit=str(limit), after=str(items[-1][cursor]))
        next_url = f"{path}?{urlencode(query)}"
    return JSONResponse({"items": items, "next": next_url}, headers=NO_STORE)


def json_response(body: Json, status: int = 200, location: str | None = None) -> JSONResponse:
    headers = dict(NO_STORE)
    if location is not None:
        headers["Location"] = location
    return JSONResponse(body, status_code=status, headers=headers)
