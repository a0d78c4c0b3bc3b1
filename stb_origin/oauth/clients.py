"""OAuth clients: boxes (public) and third-party services (confidential).

A confidential client's secret is shown once when it is made and stored only
as a scrypt hash, like a password.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from stb_origin.accounts import passwords
from stb_origin.accounts.errors import AlreadyExists, InvalidValue
from stb_origin.db.types import ID
from stb_origin.oauth.models import ClientKind, GrantType, OAuthClient
from stb_origin.oauth.scopes import as_text, parse_scopes

GRANTS = {
    ClientKind.PUBLIC: (GrantType.DEVICE_CODE, GrantType.REFRESH_TOKEN),
    ClientKind.CONFIDENTIAL: (GrantType.CLIENT_CREDENTIALS,),
}
_CLIENT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
# Client ids must never be read as a user id (32 hex digits) or as the
# operator: a client-credentials token's subject is its client id.
_RESERVED = re.compile(rf"{ID.pattern}|operator")
MAX_NAME = 200


def create_client(session: Session, name: str, kind: str, scopes: Iterable[str] | str,
                  client_id: str | None = None, now: float | None = None
                  ) -> tuple[OAuthClient, str | None]:
    """A new client and, for a confidential one, its secret (shown only now)."""
    if kind not in set(ClientKind):
        raise InvalidValue(f"kind: one of {', '.join(ClientKind)}")
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidValue(f"name: 1 to {MAX_NAME} characters")
    try:
        scope_set = parse_scopes(scopes if isinstance(scopes, str) else " ".join(scopes))
    except ValueError as exc:
        raise InvalidValue(f"scope: {exc}") from None
    if not scope_set:
        raise InvalidValue("scope: at least one")
    client_id = client_id or "cl-" + secrets.token_hex(10)
    if not _CLIENT_ID.fullmatch(client_id) or _RESERVED.fullmatch(client_id):
        raise InvalidValue("client id: 3 to 64 of a-z 0-9 . _ - (not a user id or 'operator')")
    if session.get(OAuthClient, client_id) is not None:
        raise AlreadyExists("a client with this id exists")
    secret = secrets.token_urlsafe(32) if kind == ClientKind.CONFIDENTIAL else None
    client = OAuthClient(
        id=client_id, name=name, kind=ClientKind(kind).value,
        secret_hash=None if secret is None else passwords.hash_password(secret),
        scopes=as_text(scope_set),
        grant_types=" ".join(g.value for g in GRANTS[ClientKind(kind)]),
        created_at=int(time.time() if now is None else now))
    session.add(client)
    session.flush()
    return client, secret


def ensure_public_client(session: Session, client_id: str, name: str,
                         scopes: Iterable[str]) -> OAuthClient:
    """The public client ``client_id``, made if missing (left as it is if present)."""
    found = session.get(OAuthClient, client_id)
    if found is not None:
        return found
    return create_client(session, name, ClientKind.PUBLIC, scopes, client_id)[0]


def get_client(session: Session, client_id: str) -> OAuthClient | None:
    return session.get(OAuthClient, client_id)


def list_clients(session: Session) -> list[OAuthClient]:
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)))


def secret_matches(client: OAuthClient, secret: str) -> bool:
    return client.secret_hash is not None and passwords.verify_password(
        secret, client.secret_hash)
