"""GET /console (the sign-in form or the app's shell), POST /console/sign-in and
POST /console/sign-out: plain HTML forms, each POST with the session's CSRF token
and an Origin of our own. Sign-ins are rate-limited in Redis like /device's."""

from __future__ import annotations

import hashlib
import logging

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stb_origin import ratelimit
from stb_origin.accounts import users
from stb_origin.accounts.models import User
from stb_origin.auth import denylist
from stb_origin.console import pages
from stb_origin.console.visit import ROLES, Visit, bundle, visit_of
from stb_origin.web.forms import FormError, read_form
from stb_origin.web.sessions import WebSession

log = logging.getLogger("stb_origin.console")

WINDOW_S = 600
SIGN_IN_PER_IP = 20
SIGN_IN_PER_EMAIL = 10
_RATE_PREFIX = "console:"


async def console_page(request: Request) -> Response:
    return await anyio.to_thread.run_sync(_show, visit_of(request))


async def sign_in(request: Request) -> Response:
    visit = visit_of(request)
    form = await _form(request)
    if form is None:
        return _expired(visit)
    return await anyio.to_thread.run_sync(_sign_in, visit, form)


async def sign_out(request: Request) -> Response:
    visit = visit_of(request)
    form = await _form(request)
    if form is None:
        return _expired(visit)
    return await anyio.to_thread.run_sync(_sign_out, visit, form)


async def _form(request: Request) -> dict[str, str] | None:
    try:
        return await read_form(request)
    except FormError:
        return None


def _show(visit: Visit) -> Response:
    session = visit.sessions.load(visit.cookie)
    user = _user(visit, session)
    if session is None or user is None:
        session = session or visit.sessions.new_session()
        return visit.set_cookie(pages.sign_in(bundle(), visit.page_headers, session.csrf_token),
                                session)
    return pages.shell(bundle(), visit.page_headers, session.csrf_token, user.email, user.role)


def _checked(visit: Visit, form: dict[str, str]) -> WebSession | None:
    """The session, if the form came from our page of this session."""
    session = visit.sessions.load(visit.cookie)
    if not visit.same_origin or session is None or not session.csrf_matches(
            form.get("csrf_token")):
        return None
    return session


def _sign_in(visit: Visit, form: dict[str, str]) -> Response:
    session = _checked(visit, form)
    if session is None:
        return _expired(visit)
    email = form.get("email", "").strip().lower()
    email_key = "signin:email:" + hashlib.sha256(email.encode()).hexdigest()
    retry = _limited(visit, [(f"signin:ip:{visit.client_ip}", SIGN_IN_PER_IP),
                             (email_key, SIGN_IN_PER_EMAIL)])
    if retry is not None:
        return retry
    with visit.services.db.session() as db:
        user = users.authenticate(db, email, form.get("password", ""))
        role = user.role if user is not None else None
    if user is None:
        log.info("console sign-in refused", extra={"client_ip": visit.client_ip})
        return pages.sign_in(bundle(), visit.page_headers, session.csrf_token,
                             "Wrong email or password.", 400)
    if role not in ROLES:
        log.info("console sign-in refused: role", extra={"user_id": user.id})
        return pages.sign_in(bundle(), visit.page_headers, session.csrf_token,
                             "This account cannot use the console: it is for editors and"
                             " admins.", 403)
    ratelimit.reset(visit.services.redis, _RATE_PREFIX + email_key, WINDOW_S)
    # A fresh session (and CSRF token) for the signed-in user: one planted
    # before sign-in is worth nothing afterwards.
    visit.sessions.delete(session)
    signed_in = visit.sessions.new_session(user.id)
    log.info("console sign-in", extra={"user_id": user.id})
    return visit.set_cookie(RedirectResponse("/console", 303, headers=visit.page_headers),
                            signed_in)


def _sign_out(visit: Visit, form: dict[str, str]) -> Response:
    session = _checked(visit, form)
    if session is None:
        return _expired(visit)
    visit.sessions.delete(session)
    # The pages' tokens end with the session, not minutes later.
    for token_id, expires_at in session.tokens:
        denylist.deny_token(visit.services.redis, token_id, expires_at)
    log.info("console sign-out", extra={"user_id": session.user_id})
    return visit.clear_cookie(RedirectResponse("/console", 303, headers=visit.page_headers))


def _user(visit: Visit, session: WebSession | None) -> User | None:
    if session is None or session.user_id is None:
        return None
    with visit.services.db.session() as db:
        user = users.get_user(db, session.user_id)
        # A user whose role was taken away since signing in is out.
        return user if user is not None and user.role in ROLES else None


def _limited(visit: Visit, keys: list[tuple[str, int]]) -> Response | None:
    """The 429 page if any of the counters is over its limit (each counts this try)."""
    waits = [ratelimit.hit(visit.services.redis, _RATE_PREFIX + key, limit, WINDOW_S)
             for key, limit in keys]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is None:
        return None
    return pages.problem(bundle(), visit.page_headers, "Too many attempts",
                         "Too many attempts. Wait a few minutes, then try again.", 429,
                         {"Retry-After": str(max(1, round(wait)))})


def _expired(visit: Visit) -> Response:
    return pages.problem(bundle(), visit.page_headers, "This form has expired",
                         "This form is out of date or was not sent from this page. Start over.",
                         403)


ROUTES = [
    Route("/console", console_page, methods=["GET"]),
    Route("/console/sign-in", sign_in, methods=["POST"]),
    Route("/console/sign-out", sign_out, methods=["POST"]),
]

