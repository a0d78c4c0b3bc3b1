"""Refresh tokens: rotated on every use, and a replay revokes the whole family.

The grant row holds the jti of the family's newest refresh token. Using a token
swaps in its successor's jti only if the presented one is still the newest;
when it is not, an older (already used) token is being replayed: whoever holds
the family may be an attacker, so the grant ends for everyone (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from stb_origin.accounts.devices import is_device_active
from stb_origin.auth.tokens import InvalidToken, TokenSigner
from stb_origin.oauth.errors import invalid_grant, invalid_scope
from stb_origin.oauth.issuance import TokenSet, mint, record_access
from stb_origin.oauth.models import Grant, OAuthClient
from stb_origin.oauth.scopes import parse_scopes


class EndGrant(Exception):
    """The grant must be revoked (in a transaction of its own) and the request refused."""

    def __init__(self, grant_id: str, description: str) -> None:
        super().__init__(description)
        self.grant_id = grant_id
        self.description = description


def rotate(session: Session, signer: TokenSigner, client: OAuthClient, token: str,
           scope: str | None, now: float) -> TokenSet:
    try:
        claims = signer.verify_refresh(token)
    except InvalidToken:
        raise invalid_grant("the refresh token is invalid or expired") from None
    if claims.client_id != client.id:
        raise invalid_grant("the refresh token was issued to another client")
    grant = session.get(Grant, claims.family)
    if grant is None or grant.revoked_at is not None or grant.user_id != claims.subject:
        raise invalid_grant("the refresh token has been revoked")
    granted = frozenset(grant.scopes.split())
    scopes = _narrowed(granted, scope)
    if not is_device_active(session, grant.device_id):
        raise EndGrant(grant.id, "the device has been removed from the account")
    minted = mint(signer, grant.id, client.id, grant.user_id, grant.device_id, granted, scopes)
    rotated = session.execute(
        update(Grant)
        .where(Grant.id == grant.id, Grant.refresh_jti == claims.token_id,
               Grant.revoked_at.is_(None))
        .values(refresh_jti=minted.refresh_jti, rotated_at=int(now))
        .execution_options(synchronize_session=False))
    if getattr(rotated, "rowcount", 0) != 1:
        raise EndGrant(grant.id, "the refresh token was used already")
    record_access(session, grant.id, minted, now)
    return minted.tokens


def _narrowed(granted: frozenset[str], scope: str | None) -> frozenset[str]:
    if scope is None:
        return granted
    try:
        asked = parse_scopes(scope)
    except ValueError as exc:
        raise invalid_scope(str(exc)) from None
    if not asked <= granted:
        raise invalid_scope("a refresh cannot widen the grant's scope")
    return asked or granted
