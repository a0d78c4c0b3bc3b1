"""Who is calling: the access token's subject resolved to a user, its role and account.

``sub`` is a user id, except the reserved subject ``operator`` that the CLI's
tokens carry: whoever holds the signing key is the operator, with no account.
A token bound to a device (``device_id``) is only good while that device is
active and belongs to the user's account.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from stb_origin import scopes
from stb_origin.accounts.models import Device, DeviceState, Role, User
from stb_origin.auth.tokens import Claims

OPERATOR = "operator"


class UnknownCaller(Exception):
    """The token is genuine but names a user or device that no longer counts."""


@dataclass(frozen=True)
class Caller:
    subject: str
    scopes: frozenset[str]
    user_id: str | None = None
    account_id: str | None = None
    role: Role | None = None
    device_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.user_id is None

    @property
    def is_admin(self) -> bool:
        """Admin powers need both: a token that asks for them and someone who has them."""
        return scopes.ADMIN in self.scopes and (self.is_operator or self.role == Role.ADMIN)

    def acts_for(self, account_id: str) -> bool:
        """May manage this account's own things (devices, its entitlements)."""
        return self.is_admin or (scopes.ACCOUNT in self.scopes and self.account_id == account_id)


def identify(session: Session, claims: Claims) -> Caller:
    if claims.subject == OPERATOR:
        return Caller(subject=OPERATOR, scopes=claims.scopes)
    user = session.get(User, claims.subject)
    if user is None:
        raise UnknownCaller("the token's user does not exist")
    if claims.device_id is not None:
        device = session.get(Device, claims.device_id)
        if (device is None or device.account_id != user.account_id
                or device.state != DeviceState.ACTIVE.value):
            raise UnknownCaller("the token's device is revoked or unknown")
    return Caller(subject=user.id, scopes=claims.scopes, user_id=user.id,
                  account_id=user.account_id, role=Role(user.role), device_id=claims.device_id)
