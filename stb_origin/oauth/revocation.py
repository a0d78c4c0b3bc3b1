"""Token revocation (RFC 7009): a refresh token ends its grant; an access token
goes on the deny-list until it expires. Unknown tokens are not an error."""

from __future__ import annotations

from sqlalchemy.orm import Session

from stb_origin.auth.tokens import InvalidToken, TokenSigner
from stb_origin.oauth.errors import invalid_grant
from stb_origin.oauth.issuance import Denial, revoke_grant
from stb_origin.oauth.models import OAuthClient


def revoke(session: Session, signer: TokenSigner, client: OAuthClient, token: str,
           hint: str | None, now: float) -> list[Denial]:
    """The access tokens to deny; raises for a token of another client."""
    # The hint only orders the search (RFC 7009 §2.1); an unknown one is ignored.
    kinds = ("access_token", "refresh_token") if hint == "access_token" else (
        "refresh_token", "access_token")
    for kind in kinds:
        if kind == "refresh_token":
            try:
                refresh = signer.verify_refresh(token)
            except InvalidToken:
                continue
            _same_client(client, refresh.client_id)
            return revoke_grant(session, refresh.family, now)
        try:
            access = signer.verify(token)
        except InvalidToken:
            continue  # unknown, expired or revoked already: nothing to do
        _same_client(client, access.client_id)
        return [(access.token_id, access.expires_at)]
    return []


def _same_client(client: OAuthClient, issued_to: str | None) -> None:
    if issued_to != client.id:
        # RFC 7009 §2.1: only the client a token was issued to may revoke it.
        raise invalid_grant("the token was issued to another client")
