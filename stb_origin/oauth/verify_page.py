"""``/device``: where a box's owner signs in, types the box's code and approves it.

Plain HTML forms, one POST endpoint whose hidden ``action`` says which form was
sent. Every POST must carry the session's CSRF token. Sign-ins and code
entries are rate-limited in Redis, shared by every server process; every code
entry counts, so a client being blocked learns nothing from its next tries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import anyio
from redis import Redis
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stb_origin import ratelimit
from stb_origin.accounts import users
from stb_origin.accounts.errors import DeviceLimitReached, InvalidValue
from stb_origin.accounts.models import User
from stb_origin.oauth import device_flow, pages
from stb_origin.oauth.http import clock_of
from stb_origin.oauth.models import OAuthClient
from stb_origin.oauth.scopes import grantable
from stb_origin.oauth.usercode import normalize
from stb_origin.services import Services
from stb_origin.web.forms import FormError, read_form
from stb_origin.web.http import services_of
from stb_origin.web.sessions import SessionStore, WebSession

log = logging.getLogger("stb_origin.oauth")

COOKIE = "stb_device_session"
# On HTTPS the __Host- prefix makes browsers refuse the cookie unless it is
# Secure, host-only and for path /: no sibling subdomain can plant one.
SECURE_COOKIE = "__Host-stb_device_session"
WINDOW_S = 600
SIGN_IN_PER_IP = 20
SIGN_IN_PER_EMAIL = 10
CODE_ENTRIES_PER_SESSION = 5
CODE_ENTRIES_PER_USER = 10
CODE_ENTRIES_PER_IP = 20
MAX_PREFILL = 16
_RATE_PREFIX = "oauth:"
SESSION_TTL_S = 15 * 60  # idle time-out: the page is for approving a box, not for staying


def sessions(redis: Redis) -> SessionStore:
    return SessionStore(redis, "stb:oauth:web:", SESSION_TTL_S)


@dataclass(frozen=True)
class _Context:
    services: Services
    clock: Callable[[], float]
    client_ip: str
    cookie: str | None
    secure: bool

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE if self.secure else COOKIE


def _context(request: Request) -> _Context:
    services = services_of(request)
    secure = services.settings.public_base_url.startswith("https://")
    return _Context(services=services, clock=clock_of(request),
                    client_ip=request.client.host if request.client else "unknown",
                    cookie=request.cookies.get(SECURE_COOKIE if secure else COOKIE),
                    secure=secure)


async def device_get(request: Request) -> Response:
    context = _context(request)
    prefill = request.query_params.get("user_code", "")
    return await anyio.to_thread.run_sync(_show, context, prefill)


async def device_post(request: Request) -> Response:
    context = _context(request)
    try:
        form = await read_form(request)
    except FormError as exc:
        return pages.problem("page-bad-request", "Something went wrong", str(exc), 400)
    return await anyio.to_thread.run_sync(_act, context, form)


def _show(context: _Context, prefill: str) -> Response:
    redis = context.services.redis
    prefill = prefill[:MAX_PREFILL]
    session = sessions(redis).load(context.cookie)
    user = _user(context, session)
    if session is None or user is None:
        session = session or sessions(redis).new_session()
        return _with_cookie(pages.sign_in(session.csrf_token, prefill), context, session)
    # verification_uri_complete only fills the form in: the user still sends
    # the code and then confirms it (RFC 8628 §5.4).
    return pages.enter_code(session.csrf_token, user.email, prefill)


def _act(context: _Context, form: dict[str, str]) -> Response:
    session = sessions(context.services.redis).load(context.cookie)
    if session is None or not session.csrf_matches(form.get("csrf_token")):
        return pages.problem("page-forbidden", "This form has expired",
                             "This form is out of date or was not sent from this page."
                             " Start over.", 403)
    action = form.get("action")
    if action == "sign_in":
        return _sign_in(context, session, form)
    if action == "sign_out":
        sessions(context.services.redis).delete(session)
        response = RedirectResponse("/device", 303, headers=pages.HEADERS)
        response.delete_cookie(context.cookie_name, path="/", secure=context.secure,
                               httponly=True, samesite="lax")
        return response
    user = _user(context, session)
    if user is None:
        return pages.sign_in(session.csrf_token, form.get("user_code", ""),
                             "Please sign in first.", 400)
    if action == "enter_code":
        return _enter_code(context, session, user, form)
    if action == "decide":
        return _decide(context, session, user, form.get("decision"))
    return pages.problem("page-bad-request", "Something went wrong", "Unknown action.", 400)


def _sign_in(context: _Context, session: WebSession, form: dict[str, str]) -> Response:
    services = context.services
    email = form.get("email", "").strip().lower()
    user_code = form.get("user_code", "")[:MAX_PREFILL]
    email_key = "signin:email:" + hashlib.sha256(email.encode()).hexdigest()
    retry = _limited(context, [(f"signin:ip:{context.client_ip}", SIGN_IN_PER_IP),
                                (email_key, SIGN_IN_PER_EMAIL)])
    if retry is not None:
        return retry
    with services.db.session() as db:
        user = users.authenticate(db, email, form.get("password", ""))
    if user is None:
        log.info("device page sign-in refused", extra={"client_ip": context.client_ip})
        return pages.sign_in(session.csrf_token, user_code, "Wrong email or password.", 400)
    ratelimit.reset(services.redis, _RATE_PREFIX + email_key, WINDOW_S, context.clock)
    # A fresh session (and CSRF token) for the signed-in user: one planted
    # before sign-in is worth nothing afterwards.
    sessions(services.redis).delete(session)
    signed_in = sessions(services.redis).new_session(user.id)
    target = "/device" + (f"?{urlencode({'user_code': user_code})}" if user_code else "")
    return _with_cookie(RedirectResponse(target, 303, headers=pages.HEADERS), context,
                        signed_in)


def _enter_code(context: _Context, session: WebSession, user: User,
                form: dict[str, str]) -> Response:
    services = context.services
    session_key = hashlib.sha256(session.cookie.encode()).hexdigest()
    retry = _limited(context, [(f"usercode:session:{session_key}", CODE_ENTRIES_PER_SESSION),
                                (f"usercode:user:{user.id}", CODE_ENTRIES_PER_USER),
                                (f"usercode:ip:{context.client_ip}", CODE_ENTRIES_PER_IP)])
    if retry is not None:
        return retry
    typed = form.get("user_code", "")
    code = normalize(typed)
    with services.db.session() as db:
        found = device_flow.find_pending(db, code, context.clock()) if code else None
        client = db.get(OAuthClient, found.client_id) if found else None
    if found is None or client is None or code is None:
        log.info("device page code refused", extra={"user_id": user.id,
                                                    "client_ip": context.client_ip})
        return pages.enter_code(session.csrf_token, user.email, typed[:MAX_PREFILL],
                                "That code is not right, or it has expired."
                                " Check the code on your TV.", 400)
    sessions(services.redis).set_pending(session, found.id)
    return pages.confirm(session.csrf_token, user.email, code, client.name, found.device_model,
                         found.device_serial,
                         grantable(frozenset(found.scopes.split()), user.role))


def _decide(context: _Context, session: WebSession, user: User,
            decision: str | None) -> Response:
    services = context.services
    if session.pending is None or decision not in ("approve", "deny"):
        return pages.enter_code(session.csrf_token, user.email, "",
                                "Enter the code shown on your TV first.", 400)
    # One answer per confirmation screen: a second POST has nothing to decide.
    sessions(services.redis).set_pending(session, None)
    now = context.clock()
    try:
        with services.db.session() as db:
            if decision == "deny":
                device_flow.deny(db, session.pending, user, now)
                log.info("device authorization denied", extra={
                    "authorization_id": session.pending, "user_id": user.id})
                return pages.denied()
            authorization = device_flow.approve(db, session.pending, user,
                                                services.settings.max_devices_per_account, now)
    except DeviceLimitReached as exc:
        return pages.device_limit(exc.limit)
    except device_flow.NotPending:
        return pages.problem("page-expired", "This code can no longer be used",
                             "It has expired or was answered already."
                             " Start again on your TV.", 410)
    except InvalidValue as exc:  # the box's details, refused by the accounts rules
        return pages.problem("page-bad-device", "This box cannot be connected", str(exc), 400)
    except device_flow.NothingToGrant:
        return pages.problem("page-not-allowed", "Your account cannot connect this box",
                             "This app asks for access your account does not have.", 403)
    log.info("device authorization approved", extra={
        "authorization_id": authorization.id, "user_id": user.id,
        "device_id": authorization.device_id})
    return pages.approved(authorization.device_model)


def _user(context: _Context, session: WebSession | None) -> User | None:
    if session is None or session.user_id is None:
        return None
    with context.services.db.session() as db:
        return users.get_user(db, session.user_id)


def _limited(context: _Context, keys: list[tuple[str, int]]) -> Response | None:
    """The 429 page if any of the counters is over its limit (each counts this try)."""
    waits = [ratelimit.hit(context.services.redis, _RATE_PREFIX + key, limit, WINDOW_S,
                           context.clock)
             for key, limit in keys]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is None:
        return None
    return pages.problem("page-rate-limited", "Too many attempts",
                         "Too many attempts. Wait a few minutes, then try again.", 429,
                         {"Retry-After": str(max(1, round(wait)))})


def _with_cookie(response: Response, context: _Context, session: WebSession) -> Response:
    response.set_cookie(context.cookie_name, session.cookie, max_age=SESSION_TTL_S,
                        path="/", secure=context.secure, httponly=True, samesite="lax")
    return response


ROUTES = [
    Route("/device", device_get, methods=["GET"]),
    Route("/device", device_post, methods=["POST"]),
]
