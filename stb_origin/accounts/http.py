"""The accounts API's edge: who calls, what they may touch, pages and JSON answers.

Handlers verify the token here, then run their database work through
``run_as_caller``: one worker thread, one transaction, the caller identified
from the token, and domain refusals turned into JSON errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy.orm import Session
from starlette.requests import Request

from stb_origin import scopes
from stb_origin.accounts.caller import Caller, UnknownCaller, identify
from stb_origin.accounts.errors import AlreadyExists, DeviceLimitReached, InvalidValue, NotFound
from stb_origin.auth.tokens import Claims
from stb_origin.web.bearer import require_scope
from stb_origin.web.errors import ApiError
from stb_origin.web.headers import NO_STORE
from stb_origin.web.http import services_of

T = TypeVar("T")


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
    claims = await claims_with(request, scopes.ADMIN)
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
