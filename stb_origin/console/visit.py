"""What every console request starts from: the app's services, the session cookie,
whether the page is served over HTTPS, and whether a POST came from our own pages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from stb_origin.accounts.models import Role
from stb_origin.console import pages, static
from stb_origin.services import Services
from stb_origin.web.http import services_of
from stb_origin.web.sessions import SessionStore, WebSession

COOKIE = "stb_console"
# On HTTPS the __Host- prefix makes browsers refuse the cookie unless it is
# Secure, host-only and for path /: no sibling subdomain can plant one.
SECURE_COOKIE = "__Host-stb_console"
SESSION_PREFIX = "stb:console:session:"
ROLES = frozenset({Role.EDITOR, Role.ADMIN})  # who may use the console


@cache
def bundle() -> static.Bundle:
    return static.load()


@dataclass(frozen=True)
class Visit:
    services: Services
    sessions: SessionStore
    secure: bool
    cookie: str | None
    client_ip: str
    same_origin: bool
    page_headers: dict[str, str]

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE if self.secure else COOKIE

    def set_cookie(self, response: Response, session: WebSession) -> Response:
        # Strict: no other site can make the browser send it, not even by a link.
        response.set_cookie(self.cookie_name, session.cookie, path="/", secure=self.secure,
                            httponly=True, samesite="strict")
        return response

    def clear_cookie(self, response: Response) -> Response:
        response.delete_cookie(self.cookie_name, path="/", secure=self.secure, httponly=True,
                               samesite="strict")
        return response


def visit_of(request: Request) -> Visit:
    services = services_of(request)
    settings = services.settings
    secure = settings.public_base_url.startswith("https://")
    return Visit(
        services=services,
        sessions=SessionStore(services.redis, SESSION_PREFIX, settings.console_idle_timeout_s),
        secure=secure,
        cookie=request.cookies.get(SECURE_COOKIE if secure else COOKIE),
        client_ip=request.client.host if request.client else "unknown",
        same_origin=_same_origin(request, settings.public_base_url),
        page_headers=pages.headers(settings.public_base_url, settings.key_uri_base))


def _same_origin(request: Request, public_base_url: str) -> bool:
    """Whether the Origin header names this server: the public base URL, or the
    host the browser asked for (which a page of another site cannot choose). A
    request without Origin is refused: every browser sends it on a POST."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    public = urlsplit(public_base_url)
    ours = {f"{public.scheme}://{public.netloc}",
            f"{request.url.scheme}://{request.headers.get('host', '')}"}
    return origin in ours
