"""Which scopes a request gets: within the client's, and within what the user may grant."""

from __future__ import annotations

from stb_origin import scopes as known
from stb_origin.accounts.models import Role
from stb_origin.oauth.errors import invalid_scope
from stb_origin.oauth.models import OAuthClient

# A user can only hand a device the powers they have: a subscriber approving a
# box must not mint an upload token because the box's client may ask for one.
ROLE_SCOPES = {
    Role.SUBSCRIBER: known.SUBSCRIBER,
    Role.EDITOR: known.EDITOR,
    Role.ADMIN: known.ALL,
}


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes named in ``text`` (space-separated); ValueError for unknown ones."""
    scopes = frozenset(text.split())
    unknown = scopes - known.ALL
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
    return scopes


def requested(client: OAuthClient, text: str | None) -> frozenset[str]:
    """The scopes asked for, or all the client's when none are (RFC 6749 §3.3)."""
    if text is None:
        return client.scope_set
    try:
        scopes = parse_scopes(text)
    except ValueError as exc:
        raise invalid_scope(str(exc)) from None
    if not scopes:
        return client.scope_set
    beyond = scopes - client.scope_set
    if beyond:
        raise invalid_scope(f"this client may not ask for {', '.join(sorted(beyond))}")
    return scopes


def grantable(scopes: frozenset[str], role: str) -> frozenset[str]:
    return scopes & ROLE_SCOPES.get(Role(role), frozenset())


def as_text(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))
