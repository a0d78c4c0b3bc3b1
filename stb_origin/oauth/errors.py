"""OAuth error responses (RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1).

These answer in the protocol's own shape, ``{"error", "error_description"}``,
not the API's ``{"error": {"code", "message"}}``: OAuth client libraries parse them.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from stb_origin.web import headers as web_headers

# Token responses must never be cached (RFC 6749 §5.1); the errors neither.
# RFC 6749 §5.1: token answers carry no-store, and Pragma for HTTP/1.0 caches.
NO_STORE = {**web_headers.NO_STORE, "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "error_description": self.description},
                            status_code=self.status, headers={**NO_STORE, **self.headers})


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str, via_header: bool) -> OAuthError:
    # RFC 6749 §5.2: 401 and a challenge when the client used the Authorization header.
    if via_header:
        return OAuthError("invalid_client", description, 401,
                          {"WWW-Authenticate": 'Basic realm="stb-origin"'})
    return OAuthError("invalid_client", description)


def invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", description)


def unauthorized_client(description: str) -> OAuthError:
    return OAuthError("unauthorized_client", description)
