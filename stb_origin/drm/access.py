"""Who may play an asset: the one check behind key delivery and playback sessions.

A playback token opens an asset for:

- the operator (the CLI's tokens), for operators and tests;
- an admin user whose token also carries the ``admin`` scope;
- a user whose token is bound to an active device of their account, while the
  account is entitled to the asset.

Whoever it is, a token restricted to some assets (``Claims.assets``) opens only
those. A client-credentials token names a client, not a user: it opens nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from stb_origin.accounts.caller import UnknownCaller, identify
from stb_origin.accounts.devices import (
    Capabilities,
    capabilities_of,
    get_device,
    seen_recently,
    touch_device,
)
from stb_origin.accounts.entitlements import is_entitled
from stb_origin.accounts.users import get_user
from stb_origin.auth.tokens import Claims


class Refusal(enum.StrEnum):
    WRONG_ASSET = "wrong_asset"
    NOT_A_USER = "not_a_user"
    UNKNOWN_USER = "unknown_user"
    DEVICE_REVOKED = "device_revoked"
    NO_DEVICE = "no_device"
    NOT_ENTITLED = "not_entitled"


_MESSAGES = {
    Refusal.WRONG_ASSET: "this token is not valid for this asset",
    Refusal.NOT_A_USER: "a client's own token cannot play; sign in a user on a device",
    Refusal.UNKNOWN_USER: "this token does not name a user",
    Refusal.DEVICE_REVOKED: "this token's device is revoked or unknown",
    Refusal.NO_DEVICE: "playback needs a token bound to a device",
    Refusal.NOT_ENTITLED: "the account is not entitled to this asset",
}


class PlaybackRefused(Exception):
    def __init__(self, reason: Refusal, account_id: str | None = None) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.account_id = account_id  # when the caller is a known user


@dataclass(frozen=True)
class Viewer:
    """Who was let in; capabilities of their device (None: no device, play everything)."""

    subject: str
    account_id: str | None
    device_id: str | None
    capabilities: Capabilities | None


def authorize_playback(session: Session, claims: Claims, asset_id: str, at: datetime) -> Viewer:
    """The viewer, or PlaybackRefused. Records that the device was seen."""
    if claims.assets is not None and asset_id not in claims.assets:
        raise PlaybackRefused(Refusal.WRONG_ASSET)
    if claims.client_id is not None and claims.subject == claims.client_id:
        raise PlaybackRefused(Refusal.NOT_A_USER)  # client credentials (RFC 6749 4.4)
    # Loaded first and held: identify() then finds it in the session's (weakly
    # referencing) identity map instead of querying it again.
    device = get_device(session, claims.device_id) if claims.device_id is not None else None
    try:
        caller = identify(session, claims)
    except UnknownCaller:
        # identify() refuses a missing user and a revoked device alike; the
        # audit and the metrics want to tell them apart.
        missing = get_user(session, claims.subject) is None
        raise PlaybackRefused(Refusal.UNKNOWN_USER if missing
                              else Refusal.DEVICE_REVOKED) from None
    if not (caller.is_operator or caller.is_admin):
        account_id = caller.account_id
        assert account_id is not None  # a user, not the operator
        if caller.device_id is None:
            raise PlaybackRefused(Refusal.NO_DEVICE, account_id)
        if not is_entitled(session, account_id, asset_id, at):
            raise PlaybackRefused(Refusal.NOT_ENTITLED, account_id)
    capabilities = None
    if device is not None:  # identify() checked it is active and the user's
        capabilities = capabilities_of(device)
        if not seen_recently(device, at):
            touch_device(session, device.id, at)
    return Viewer(subject=caller.subject, account_id=caller.account_id,
                  device_id=caller.device_id, capabilities=capabilities)
