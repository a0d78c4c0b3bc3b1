"""POST /console/token: a short-lived access token for the console's pages.

The pages hold it in memory only (never in storage a script of another page
could read) and call the REST API, the event stream and tus with it like any
client. Minting needs the session cookie, the session's CSRF token in
``X-CSRF-Token`` and an Origin of our own: a page of another site can neither
send all three nor read the answer. With ``{"asset": id}`` the token is a
preview token for that one asset (``drm.access``: editors fetch its keys).
"""

from __future__ import annotations

from dataclasses import replace

import anyio
from starlette.requests import Request
from starlette.responses import Response

from stb_origin import scopes
from stb_origin.accounts import users
from stb_origin.accounts.models import Role
from stb_origin.console.visit import ROLES, Visit, visit_of
from stb_origin.db.types import ID
from stb_origin.drm.access import PREVIEW_CLIENT
from stb_origin.web.errors import ApiError
from stb_origin.web.http import Json, json_response
from stb_origin.web.jsonbody import read_object

CSRF_HEADER = "x-csrf-token"
ROLE_SCOPES = {Role.EDITOR: scopes.EDITOR, Role.ADMIN: scopes.ALL}
# Tokens remembered per session for sign-out to deny; the oldest go first (a
# page renews every few minutes, so these cover hours of use).
MAX_REMEMBERED = 64


async def mint(request: Request) -> Response:
    visit = visit_of(request)
    if not visit.same_origin:
        raise ApiError(403, "cross_origin", "this endpoint serves the console's own pages only")
    # No body asks for the page's token; {"asset": id} for a preview token.
    asset = None
    if "content-type" in request.headers:
        fields = await read_object(request, ["asset"])
        asset = fields.optional_text("asset")
        if asset is not None and not ID.fullmatch(asset):
            raise ApiError(400, "bad_request", "asset: an asset id (32 hex digits)")
    csrf = request.headers.get(CSRF_HEADER)
    body = await anyio.to_thread.run_sync(_mint, visit, csrf, asset)
    return json_response(body)


def _mint(visit: Visit, csrf: str | None, asset: str | None) -> Json:
    session = visit.sessions.load(visit.cookie)
    if session is None or session.user_id is None:
        raise ApiError(401, "signed_out", "sign in to the console again")
    if not session.csrf_matches(csrf):
        raise ApiError(403, "csrf_failed", "the X-CSRF-Token header is missing or wrong")
    with visit.services.db.session() as db:
        user = users.get_user(db, session.user_id)
        role = Role(user.role) if user is not None else None
        email = user.email if user is not None else ""
    if role not in ROLES:
        visit.sessions.delete(session)
        raise ApiError(401, "signed_out", "this account can no longer use the console")
    signer = visit.services.signer
    ttl = visit.services.settings.console_token_ttl_s
    if asset is None:
        granted = ROLE_SCOPES[role]
        token = signer.issue(granted, subject=session.user_id, ttl_s=ttl)
    else:
        granted = frozenset({scopes.PLAYBACK})
        token = signer.issue(granted, subject=session.user_id, ttl_s=ttl,
                             client_id=PREVIEW_CLIENT, assets=[asset])
    claims = signer.verify(token, check_denied=False)
    remembered = (*session.tokens, (claims.token_id, claims.expires_at))[-MAX_REMEMBERED:]
    visit.sessions.save(replace(session, tokens=remembered))
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
            "scope": " ".join(sorted(granted)),
            "user": {"id": session.user_id, "email": email, "role": role.value}}
