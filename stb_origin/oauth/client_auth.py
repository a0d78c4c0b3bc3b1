"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3).

Confidential clients send their secret in HTTP Basic (client_secret_basic) or
in the body (client_secret_post); public clients only name themselves with
``client_id`` (RFC 8628 §3.1). One method per request.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from sqlalchemy.orm import Session

from stb_origin.oauth import clients
from stb_origin.oauth.errors import invalid_client, invalid_request
from stb_origin.oauth.models import ClientKind, OAuthClient


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str | None = field(default=None, repr=False)
    via_header: bool = False


def credentials_from(form: dict[str, str], authorization: str | None) -> Credentials:
    if authorization is not None:
        client_id, secret = _basic(authorization)
        if "client_secret" in form:
            raise invalid_request("use one client authentication method, not two")
        if form.get("client_id", client_id) != client_id:
            raise invalid_request("client_id differs from the authenticated client")
        return Credentials(client_id, secret, via_header=True)
    named = form.get("client_id")
    if named is None:
        raise invalid_client("client authentication is required (client_id)", False)
    return Credentials(named, form.get("client_secret"))


def authenticate(session: Session, credentials: Credentials) -> OAuthClient:
    def refuse() -> Exception:
        # One answer for every failure: which part was wrong is nobody's business.
        return invalid_client("client authentication failed", credentials.via_header)

    client = clients.get_client(session, credentials.client_id)
    if client is None:
        raise refuse()
    if client.kind == ClientKind.PUBLIC:
        if credentials.secret is not None:
            raise refuse()
    elif credentials.secret is None or not clients.secret_matches(client, credentials.secret):
        raise refuse()
    return client


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client("only HTTP Basic client authentication is accepted", True)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("malformed Basic credentials", True) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise invalid_client("malformed Basic credentials", True)
    # RFC 6749 §2.3.1: both parts are form-encoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)
