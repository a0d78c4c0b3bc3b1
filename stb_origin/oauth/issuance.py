"""Token responses: access tokens, refresh tokens, and the grants that tie them together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jwt
from redis import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from stb_origin.auth import denylist
from stb_origin.auth.tokens import LEEWAY_S, TokenSigner
from stb_origin.oauth.models import Grant, GrantAccessToken, OAuthClient
from stb_origin.oauth.scopes import as_text


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    expires_in: int
    scopes: frozenset[str]
    refresh_token: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"access_token": self.access_token, "token_type": "Bearer",
                                "expires_in": self.expires_in, "scope": as_text(self.scopes)}
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


# A token stays deniable while verifiers may still accept it: its exp plus their leeway.
Denial = tuple[str, int]


@dataclass(frozen=True)
class Minted:
    """Signed tokens of a grant, not yet recorded.

    Tokens are signed before the transaction writes anything: signing may load
    (on a first start, create) the signing keys through a connection of its
    own, which on SQLite would wait forever behind our write lock.
    """

    tokens: TokenSet
    access_jti: str
    access_expires_at: int
    refresh_jti: str


def mint(signer: TokenSigner, grant_id: str, client_id: str, user_id: str, device_id: str,
         grant_scopes: frozenset[str], scopes: frozenset[str]) -> Minted:
    """An access token for ``scopes`` and the grant's next refresh token, which
    keeps the whole grant's scopes (RFC 6749 §6)."""
    refresh, refresh_jti = signer.issue_refresh(user_id, grant_id, grant_scopes, client_id,
                                                device_id)
    access = signer.issue(scopes, subject=user_id, device_id=device_id, client_id=client_id)
    claims = _own_claims(access)
    expires_in = int(claims["exp"]) - int(claims["iat"])
    return Minted(TokenSet(access, expires_in, scopes, refresh), claims["jti"],
                  int(claims["exp"]), refresh_jti)


def open_grant(session: Session, minted: Minted, grant_id: str, client_id: str, user_id: str,
               device_id: str, scopes: frozenset[str], now: float) -> Grant:
    """Record a new grant (refresh-token family) and its first tokens."""
    grant = Grant(id=grant_id, client_id=client_id, user_id=user_id, device_id=device_id,
                  scopes=as_text(scopes), refresh_jti=minted.refresh_jti, created_at=int(now))
    session.add(grant)
    session.flush()
    record_access(session, grant_id, minted, now)
    return grant


def record_access(session: Session, grant_id: str, minted: Minted, now: float) -> None:
    """Keep the access token's jti, so that revoking the grant can deny it."""
    # Rows of tokens past any verifier's leeway are of no more use: keep each
    # grant's list short instead of sweeping the table elsewhere.
    session.execute(delete(GrantAccessToken).where(
        GrantAccessToken.grant_id == grant_id,
        GrantAccessToken.expires_at < int(now) - LEEWAY_S))
    session.add(GrantAccessToken(jti=minted.access_jti, grant_id=grant_id,
                                 expires_at=minted.access_expires_at))
    session.flush()


def for_client(signer: TokenSigner, client: OAuthClient, scopes: frozenset[str]) -> TokenSet:
    """Client credentials: the client acts for itself; nothing to refresh (RFC 6749 §4.4.3)."""
    token = signer.issue(scopes, subject=client.id, client_id=client.id)
    claims = _own_claims(token)
    return TokenSet(token, int(claims["exp"]) - int(claims["iat"]), scopes)


def revoke_grant(session: Session, grant_id: str, now: float) -> list[Denial]:
    """Revoke the grant (its every refresh token) and list its live access tokens.

    The UPDATE comes first: it waits for a rotation holding the grant's row, so
    the access token that rotation issued is in the list that follows.
    """
    session.execute(update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None))
                    .values(revoked_at=int(now)))
    rows = session.execute(select(GrantAccessToken.jti, GrantAccessToken.expires_at).where(
        GrantAccessToken.grant_id == grant_id,
        GrantAccessToken.expires_at >= int(now) - LEEWAY_S))
    return [(jti, expires_at) for jti, expires_at in rows]


def deny(redis: Redis, denials: list[Denial]) -> None:
    for jti, expires_at in denials:
        denylist.deny_token(redis, jti, expires_at)


def _own_claims(token: str) -> dict[str, Any]:
    # Our own token, signed a moment ago: reading it back needs no verification.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
