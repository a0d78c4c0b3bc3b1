"""Who may play an asset: the one check behind key delivery and playback sessions.

A playback token opens an asset for:

- the operator (the CLI's tokens), for operators and tests;
- an admin user whose token also carries the ``admin`` scope;
- a user whose token is bound to an active device of their account, while the
  account is entitled to the asset;
- an editor previewing in the console: a token the console minted for the
  assets named in it (``client_id`` PREVIEW_CLIENT, no device), so that the
  content team can check what they uploaded before any package holds it. Its
  key fetches are audited like any other, under that client id.

Whoever it is, a token restricted to some assets (``Claims.assets``) opens only
those. A client-credentials token names a client, not a user: it opens nothing.

``decide`` holds these rules over plain rows, so that the key path can apply
them to its cached copies (``drm.viewcache``) and playback sessions to rows
read in their transaction, and both follow the same rules.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from stb_origin import scopes
from stb_origin.accounts.caller import OPERATOR
from stb_origin.accounts.devices import (
    TOUCH_GRANULARITY,
    Capabilities,
    DeviceRow,
    read_device,
    touch_device,
)
from stb_origin.accounts.entitlements import is_entitled
from stb_origin.accounts.models import Role
from stb_origin.accounts.users import UserRow, read_user
from stb_origin.auth.tokens import Claims

# The client id of the console's preview tokens (oauth client ids start "cl-").
PREVIEW_CLIENT = "console-preview"


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


def check_claims(claims: Claims, asset_id: str) -> None:
    """The refusals the token alone decides, before anything is looked up."""
    if claims.assets is not None and asset_id not in claims.assets:
        raise PlaybackRefused(Refusal.WRONG_ASSET)
    if claims.client_id is not None and claims.subject == claims.client_id:
        raise PlaybackRefused(Refusal.NOT_A_USER)  # client credentials (RFC 6749 4.4)


def decide(claims: Claims, asset_id: str, user: UserRow | None, device: DeviceRow | None,
           entitled: Callable[[str], bool]) -> Viewer:
    """The viewer, or PlaybackRefused. ``user`` and ``device`` are the rows the token
    names (None: no such row); ``entitled(account_id)`` says whether the account may
    play the asset now."""
    check_claims(claims, asset_id)
    account_id = device_id = None
    if claims.subject != OPERATOR:  # the operator has no user, account or device
        if user is None:
            raise PlaybackRefused(Refusal.UNKNOWN_USER)
        account_id = user.account_id
        if claims.device_id is not None and (
                device is None or device.account_id != account_id or not device.active):
            raise PlaybackRefused(Refusal.DEVICE_REVOKED)
        device_id = claims.device_id
        # Admin powers need both: a token that asks for them and a user who has them.
        if not (scopes.ADMIN in claims.scopes and user.role == Role.ADMIN
                or is_editor_preview(claims, user.role)):
            if device_id is None:
                raise PlaybackRefused(Refusal.NO_DEVICE, account_id)
            if not entitled(account_id):
                raise PlaybackRefused(Refusal.NOT_ENTITLED, account_id)
    return Viewer(subject=claims.subject, account_id=account_id, device_id=device_id,
                  capabilities=device.capabilities if device is not None else None)


def is_editor_preview(claims: Claims, role: Role) -> bool:
    """A console preview token of an editor or admin: limited to the assets it names
    (check_claims holds it to them) and to no device."""
    return (claims.client_id == PREVIEW_CLIENT and claims.assets is not None
            and claims.device_id is None and role in (Role.EDITOR, Role.ADMIN))


def needs_touch(last_seen_at: datetime | None, at: datetime) -> bool:
    """Whether a device last seen then should be recorded as seen at ``at``: last_seen_at
    is kept to TOUCH_GRANULARITY, so that a check on every request is not a write."""
    return last_seen_at is None or last_seen_at < at - TOUCH_GRANULARITY


def authorize_playback(session: Session, claims: Claims, asset_id: str, at: datetime) -> Viewer:
    """The viewer, or PlaybackRefused, from the rows as they are in this transaction.
    Records that the device was seen."""
    check_claims(claims, asset_id)
    conn = session.connection()
    user = read_user(conn, claims.subject) if claims.subject != OPERATOR else None
    device = read_device(conn, claims.device_id) if claims.device_id is not None else None
    viewer = decide(claims, asset_id, user, device,
                    lambda account_id: is_entitled(session, account_id, asset_id, at))
    if device is not None and claims.device_id is not None and needs_touch(device.last_seen_at, at):
        touch_device(session, claims.device_id, at)
    return viewer
