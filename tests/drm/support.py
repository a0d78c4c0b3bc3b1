"""Households with boxes, assets and entitlements, made through the domain functions,
for the key delivery and playback tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from stb_origin.accounts import devices, entitlements, packages, users
from stb_origin.accounts.devices import Capabilities
from stb_origin.accounts.models import Role
from stb_origin.assets.records import Asset
from stb_origin.db.types import new_id
from stb_origin.drm import keystore
from stb_origin.drm.keys import ContentKey, generate_key
from stb_origin.services import Services


@dataclass(frozen=True)
class Box:
    user_id: str
    account_id: str
    device_id: str
    token: str  # a playback token bound to the box

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


ANY_BOX = Capabilities()


def household(services: Services, capabilities: Capabilities = ANY_BOX,
              role: Role = Role.SUBSCRIBER, scopes: tuple[str, ...] = ("playback",)) -> Box:
    """A new account with one user and one registered box."""
    with services.db.session() as session:
        user = users.create_user(session, f"{secrets.token_hex(4)}@example.com", role=role)
        device = devices.register_device(session, user.account_id, "SN-1", "Box",
                                         capabilities, max_devices=5)
    token = services.signer.issue(scopes, subject=user.id, device_id=device.id)
    return Box(user.id, user.account_id, device.id, token)


def new_asset(services: Services) -> tuple[str, ContentKey]:
    """An asset record with one content key stored."""
    asset_id, key = new_id(), generate_key()
    with services.db.session() as session:
        session.add(Asset(id=asset_id, title="film", source_key=f"sources/{asset_id}/s.mp4"))
        session.flush()
        keystore.store(session, asset_id, [key], services.envelope)
    return asset_id, key


def entitle(services: Services, account_id: str, asset_id: str,
            valid_from: datetime | None = None, valid_until: datetime | None = None) -> None:
    """The account entitled to a package of its own holding the asset."""
    name = f"pkg-{secrets.token_hex(4)}"
    with services.db.session() as session:
        packages.create_package(session, name)
        packages.add_asset(session, name, asset_id)
        entitlements.grant(session, account_id, name, valid_from, valid_until)


def revoke(services: Services, device_id: str) -> None:
    """Revoked in the database only, as if the deny-list entry were gone: what
    the device lookup itself must catch."""
    with services.db.session() as session:
        devices.revoke_device(session, device_id)
